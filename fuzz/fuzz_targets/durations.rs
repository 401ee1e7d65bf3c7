//! Durations as they arrive at the edge, written (`90s`, `1m 30s` in forms) or as
//! seconds (the API), with a valid name and URL: never a panic, and an accepted
//! website has an interval of at least 1 s and a timeout of at least 100 ms below it.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sitepulse::domain::{CheckDefaults, NewWebsite, duration_seconds, written_duration};

fuzz_target!(|input: (&str, &str, Option<f64>, Option<f64>)| {
    let (interval, timeout, interval_s, timeout_s) = input;
    let candidates = [
        (
            written_duration("interval", interval),
            written_duration("timeout", timeout),
        ),
        (
            duration_seconds("intervalSeconds", interval_s),
            duration_seconds("timeoutSeconds", timeout_s),
        ),
    ];
    for (interval, timeout) in candidates {
        let (Ok(interval), Ok(timeout)) = (interval, timeout) else {
            continue;
        };
        let website = NewWebsite {
            name: "fuzz",
            url: "https://example.com/",
            interval,
            timeout,
        };
        if let Ok(spec) = website.parse(CheckDefaults::default()) {
            assert!(spec.interval >= Duration::from_secs(1));
            assert!(spec.timeout >= Duration::from_millis(100));
            assert!(spec.timeout < spec.interval);
        }
    }
});
