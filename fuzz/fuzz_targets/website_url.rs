//! Any text as a website URL: never a panic; an accepted URL is http or https with
//! a host, at most 2048 bytes, and parses to itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitepulse::domain::WebsiteUrl;

fuzz_target!(|raw: &str| {
    if let Ok(url) = WebsiteUrl::parse(raw) {
        let parsed = url.as_url();
        assert!(matches!(parsed.scheme(), "http" | "https"));
        assert!(parsed.host_str().is_some_and(|h| !h.is_empty()));
        assert!(url.as_str().len() <= 2048);
        assert_eq!(WebsiteUrl::parse(url.as_str()).unwrap(), url);
    }
});
