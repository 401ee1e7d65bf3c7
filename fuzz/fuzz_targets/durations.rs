//! Durations as they arrive at the edge, written (`90s`, `1m 30s` in forms and on
//! the command line) or as seconds (the API), with a valid name and URL: never a
//! panic, and an accepted website has an interval of at least 1 s and a timeout of
//! at least 100 ms below it.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use sitepulse::domain::{CheckDefaults, NewWebsite};

fn written(raw: &str) -> Option<Duration> {
    humantime::parse_duration(raw.trim()).ok()
}

fuzz_target!(|input: (&str, &str, f64, f64)| {
    let (interval, timeout, interval_s, timeout_s) = input;
    let candidates = [
        (written(interval), written(timeout)),
        (
            Duration::try_from_secs_f64(interval_s).ok(),
            Duration::try_from_secs_f64(timeout_s).ok(),
        ),
    ];
    for (interval, timeout) in candidates {
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
