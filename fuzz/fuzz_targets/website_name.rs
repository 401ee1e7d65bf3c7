//! Any text as a website name: never a panic; an accepted name is trimmed, 1 to
//! 100 characters without control characters, and parses to itself again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sitepulse::domain::WebsiteName;

fuzz_target!(|raw: &str| {
    if let Ok(name) = WebsiteName::parse(raw) {
        let s = name.as_str();
        assert_eq!(s, s.trim());
        let chars = s.chars().count();
        assert!((1..=100).contains(&chars), "{chars} characters");
        assert!(!s.chars().any(char::is_control));
        assert_eq!(WebsiteName::parse(s).unwrap(), name);
    }
});
