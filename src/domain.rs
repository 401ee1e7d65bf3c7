//! The plain types of the monitor and the rules that hold for them.
//!
//! Nothing here touches the network or the database: a [`WebsiteSpec`] is
//! validated once, at the edge, and every layer behind it can trust it.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

/// Longest website name, in characters, after trimming.
pub const MAX_NAME_CHARS: usize = 100;
/// Longest URL, in bytes, as typed.
pub const MAX_URL_LEN: usize = 2048;
/// Shortest check interval.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest check timeout.
pub const MIN_TIMEOUT: Duration = Duration::from_millis(100);
/// Availability (percent) from which a day counts as yellow rather than red.
pub const YELLOW_FROM_PERCENT: f64 = 99.0;

pub type WebsiteId = i64;

/// What a user got wrong, and in which field, so forms and the API can point at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

impl ValidationError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

/// Interval and timeout a website gets when its creator names none.
#[derive(Debug, Clone, Copy)]
pub struct CheckDefaults {
    pub interval: Duration,
    pub timeout: Duration,
}

impl Default for CheckDefaults {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }
}

/// A duration as people write it in forms (`30s`, `5m`, `1h 30m`); empty means
/// "not given". The range is checked with the rest of the website.
pub fn written_duration(
    field: &'static str,
    raw: &str,
) -> Result<Option<Duration>, ValidationError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    humantime::parse_duration(raw).map(Some).map_err(|_| {
        ValidationError::new(
            field,
            format!("{raw:?} is not a duration; write it like 30s, 5m or 1h"),
        )
    })
}

/// A duration as the API sends it, in seconds; negative, NaN or too large numbers
/// are rejected. The range is checked with the rest of the website.
pub fn duration_seconds(
    field: &'static str,
    seconds: Option<f64>,
) -> Result<Option<Duration>, ValidationError> {
    seconds
        .map(|s| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| ValidationError::new(field, "must be a positive number of seconds"))
        })
        .transpose()
}

/// A website's name: trimmed, 1 to 100 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebsiteName(String);

impl WebsiteName {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(ValidationError::new("name", "name must not be empty"));
        }
        let chars = name.chars().count();
        if chars > MAX_NAME_CHARS {
            return Err(ValidationError::new(
                "name",
                format!("name is {chars} characters long; at most {MAX_NAME_CHARS} are allowed"),
            ));
        }
        if name.chars().any(char::is_control) {
            return Err(ValidationError::new(
                "name",
                "name must not contain control characters",
            ));
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A website's URL: absolute `http` or `https` with a host, at most 2048 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteUrl(Url);

impl WebsiteUrl {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err(ValidationError::new("url", "URL must not be empty"));
        }
        if raw.len() > MAX_URL_LEN {
            return Err(ValidationError::new(
                "url",
                format!(
                    "URL is {} bytes long; at most {MAX_URL_LEN} are allowed",
                    raw.len()
                ),
            ));
        }
        let url = Url::parse(raw).map_err(|e| {
            let hint = if e == url::ParseError::RelativeUrlWithoutBase {
                " (it needs a scheme, e.g. https://example.com)"
            } else {
                ""
            };
            ValidationError::new("url", format!("not a valid URL: {e}{hint}"))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ValidationError::new(
                "url",
                format!("scheme must be http or https, not {}", url.scheme()),
            ));
        }
        match url.host_str() {
            Some(host) if !host.is_empty() => {}
            _ => return Err(ValidationError::new("url", "URL must name a host")),
        }
        if url.as_str().len() > MAX_URL_LEN {
            return Err(ValidationError::new(
                "url",
                format!("URL is longer than {MAX_URL_LEN} bytes once normalised"),
            ));
        }
        Ok(Self(url))
    }

    pub fn as_url(&self) -> &Url {
        &self.0
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// Everything needed to create or replace a website, already validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebsiteSpec {
    pub name: WebsiteName,
    pub url: WebsiteUrl,
    pub interval: Duration,
    pub timeout: Duration,
    pub paused: bool,
}

/// A new website as a user typed it; [`NewWebsite::parse`] turns it into a [`WebsiteSpec`].
#[derive(Debug, Clone, Default)]
pub struct NewWebsite<'a> {
    pub name: &'a str,
    pub url: &'a str,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
}

impl NewWebsite<'_> {
    /// Validates every field. A timeout that was not given is fitted below the interval,
    /// so a one-second interval works without naming a timeout.
    pub fn parse(&self, defaults: CheckDefaults) -> Result<WebsiteSpec, ValidationError> {
        let name = WebsiteName::parse(self.name)?;
        let url = WebsiteUrl::parse(self.url)?;
        let interval = self.interval.unwrap_or(defaults.interval);
        let timeout = match self.timeout {
            Some(timeout) => timeout,
            None => defaults.timeout.min(interval.mul_f64(0.9)).max(MIN_TIMEOUT),
        };
        check_timing(interval, timeout)?;
        Ok(WebsiteSpec {
            name,
            url,
            interval,
            timeout,
            paused: false,
        })
    }
}

/// Changes to an existing website; fields left `None` keep their value.
#[derive(Debug, Clone, Default)]
pub struct WebsitePatch<'a> {
    pub name: Option<&'a str>,
    pub url: Option<&'a str>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub paused: Option<bool>,
}

impl WebsitePatch<'_> {
    /// The website as it would be after the change, validated as a whole.
    pub fn apply(&self, current: &Website) -> Result<WebsiteSpec, ValidationError> {
        let name = WebsiteName::parse(self.name.unwrap_or(&current.name))?;
        let url = WebsiteUrl::parse(self.url.unwrap_or(&current.url))?;
        let interval = self.interval.unwrap_or(current.interval);
        let timeout = self.timeout.unwrap_or(current.timeout);
        check_timing(interval, timeout)?;
        Ok(WebsiteSpec {
            name,
            url,
            interval,
            timeout,
            paused: self.paused.unwrap_or(current.paused),
        })
    }
}

fn check_timing(interval: Duration, timeout: Duration) -> Result<(), ValidationError> {
    if interval < MIN_INTERVAL {
        return Err(ValidationError::new(
            "interval",
            format!(
                "interval must be at least 1s, not {}",
                humantime::format_duration(interval)
            ),
        ));
    }
    if interval > Duration::from_secs(24 * 3600) {
        return Err(ValidationError::new(
            "interval",
            "interval must be at most 24h",
        ));
    }
    if timeout < MIN_TIMEOUT {
        return Err(ValidationError::new(
            "timeout",
            format!(
                "timeout must be at least 100ms, not {}",
                humantime::format_duration(timeout)
            ),
        ));
    }
    if timeout >= interval {
        return Err(ValidationError::new(
            "timeout",
            format!(
                "timeout ({}) must be shorter than the interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
    Ok(())
}

/// The current state of a website as the list shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Up,
    Down,
    /// Not checked yet.
    Pending,
}

impl Status {
    pub fn from_last_up(up: Option<bool>) -> Self {
        match up {
            Some(true) => Status::Up,
            Some(false) => Status::Down,
            None => Status::Pending,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Up => "UP",
            Status::Down => "DOWN",
            Status::Pending => "PENDING",
        })
    }
}

/// A registered website with its current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Website {
    pub id: WebsiteId,
    pub name: String,
    pub url: String,
    pub interval: Duration,
    pub timeout: Duration,
    pub paused: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_check: Option<Check>,
    /// When the current status began (the first check of the current run of ups or downs).
    pub status_since: Option<DateTime<Utc>>,
}

impl Website {
    pub fn status(&self) -> Status {
        Status::from_last_up(self.last_check.as_ref().map(|c| c.up))
    }

    /// Takes in a stored check of this website: it becomes the last check unless it
    /// is older, and a change between up and down starts a new status period.
    pub fn observe(&mut self, check: &Check) {
        if self
            .last_check
            .as_ref()
            .is_some_and(|last| last.slot > check.slot)
        {
            return;
        }
        if self.last_check.as_ref().map(|c| c.up) != Some(check.up) {
            self.status_since = Some(check.checked_at);
        }
        self.last_check = Some(check.clone());
    }

    /// Takes `changed` as this website's definition, keeping the last check known
    /// here when it is newer than the one `changed` was read with.
    pub fn redefine(&mut self, changed: &Website) {
        let keep = match (&self.last_check, &changed.last_check) {
            (Some(mine), Some(theirs)) => mine.slot > theirs.slot,
            (Some(_), None) => true,
            (None, _) => false,
        };
        let last_check = self.last_check.take();
        let status_since = self.status_since;
        *self = changed.clone();
        if keep {
            self.last_check = last_check;
            self.status_since = status_since;
        }
    }
}

/// Why a check failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorKind {
    Dns,
    Connect,
    Tls,
    Timeout,
    /// A response arrived but was not usable (garbage, redirect loop) or the status was 400 or above.
    Http,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Dns => "dns",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Http => "http",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Some(match raw {
            "dns" => ErrorKind::Dns,
            "connect" => ErrorKind::Connect,
            "tls" => ErrorKind::Tls,
            "timeout" => ErrorKind::Timeout,
            "http" => ErrorKind::Http,
            _ => return None,
        })
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckError {
    pub kind: ErrorKind,
    pub message: String,
}

/// One check of one website in one slot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub website_id: WebsiteId,
    /// The scheduled time this check belongs to; at most one check per website and slot.
    pub slot: DateTime<Utc>,
    /// When the request started.
    pub checked_at: DateTime<Utc>,
    pub up: bool,
    pub status_code: Option<u16>,
    /// From the start of the request to the end of the response headers, or to the failure.
    pub response_time_ms: u32,
    pub error: Option<CheckError>,
}

/// One calendar day of a website's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DayStat {
    pub date: NaiveDate,
    pub checks: u32,
    pub up_checks: u32,
    /// Mean over the checks that received a response; `None` when none did.
    pub avg_response_time_ms: Option<f64>,
}

impl DayStat {
    /// Availability in percent, 0 to 100.
    pub fn availability(&self) -> f64 {
        availability(self.up_checks as u64, self.checks as u64).unwrap_or(0.0)
    }

    pub fn colour(&self) -> Colour {
        Colour::of(self.availability())
    }
}

/// Counts over a window, from which uptime is computed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub checks: u64,
    pub up_checks: u64,
    pub response_ms_sum: u64,
    pub responses: u64,
}

impl Tally {
    /// Uptime in percent, or `None` when nothing was checked in the window.
    pub fn uptime(&self) -> Option<f64> {
        availability(self.up_checks, self.checks)
    }

    pub fn avg_response_time_ms(&self) -> Option<f64> {
        (self.responses > 0).then(|| self.response_ms_sum as f64 / self.responses as f64)
    }

    pub fn add(&mut self, check: &Check) {
        self.checks += 1;
        self.up_checks += u64::from(check.up);
        if check.status_code.is_some() {
            self.responses += 1;
            self.response_ms_sum += u64::from(check.response_time_ms);
        }
    }
}

fn availability(up: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| up as f64 * 100.0 / total as f64)
}

/// How a day of history is coloured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// 100 %.
    Green,
    /// From 99 % to below 100 %.
    Yellow,
    /// Below 99 %.
    Red,
}

impl Colour {
    pub fn of(availability_percent: f64) -> Self {
        if availability_percent >= 100.0 {
            Colour::Green
        } else if availability_percent >= YELLOW_FROM_PERCENT {
            Colour::Yellow
        } else {
            Colour::Red
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, url: &str) -> Result<WebsiteSpec, ValidationError> {
        NewWebsite {
            name,
            url,
            ..Default::default()
        }
        .parse(CheckDefaults::default())
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(
            spec("  Shop  ", "https://shop.example")
                .unwrap()
                .name
                .as_str(),
            "Shop"
        );
        assert_eq!(spec("   ", "https://a.example").unwrap_err().field, "name");
        assert!(spec(&"é".repeat(100), "https://a.example").is_ok());
        let err = spec(&"é".repeat(101), "https://a.example").unwrap_err();
        assert!(err.message.contains("101 characters"), "{err}");
        assert_eq!(
            spec("a\u{7}b", "https://a.example").unwrap_err().field,
            "name"
        );
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        for bad in [
            "",
            "example.com",
            "ftp://example.com",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "http://",
            "http://exa mple.com",
        ] {
            let err = spec("x", bad).unwrap_err();
            assert_eq!(err.field, "url", "{bad:?} gave {err}");
        }
        let long = format!("https://example.com/{}", "a".repeat(2048));
        assert!(
            spec("x", &long)
                .unwrap_err()
                .message
                .contains("at most 2048")
        );
        assert!(
            spec("x", "example.com")
                .unwrap_err()
                .message
                .contains("scheme")
        );
        let ok = spec("x", "HTTPS://Example.COM/a?b=c").unwrap();
        assert_eq!(ok.url.as_str(), "https://example.com/a?b=c");
    }

    #[test]
    fn timing_rules() {
        let defaults = CheckDefaults::default();
        let with = |interval: u64, timeout: Option<u64>| {
            NewWebsite {
                name: "x",
                url: "http://x.example",
                interval: Some(Duration::from_millis(interval)),
                timeout: timeout.map(Duration::from_millis),
            }
            .parse(defaults)
        };
        assert_eq!(with(500, None).unwrap_err().field, "interval");
        assert_eq!(with(25 * 3600 * 1000, None).unwrap_err().field, "interval");
        // A one-second interval gets a timeout that fits inside it.
        assert_eq!(
            with(1000, None).unwrap().timeout,
            Duration::from_millis(900)
        );
        assert_eq!(with(60_000, None).unwrap().timeout, Duration::from_secs(10));
        assert_eq!(with(60_000, Some(50)).unwrap_err().field, "timeout");
        assert_eq!(with(5_000, Some(5_000)).unwrap_err().field, "timeout");
        assert!(with(5_000, Some(4_999)).is_ok());
    }

    #[test]
    fn durations_at_the_edge() {
        assert_eq!(written_duration("interval", "  "), Ok(None));
        assert_eq!(
            written_duration("interval", " 1m 30s "),
            Ok(Some(Duration::from_secs(90)))
        );
        let wrong = written_duration("timeout", "soon").unwrap_err();
        assert_eq!(wrong.field, "timeout");
        assert!(wrong.message.contains("\"soon\" is not a duration"));
        assert_eq!(duration_seconds("intervalSeconds", None), Ok(None));
        assert_eq!(
            duration_seconds("intervalSeconds", Some(1.5)),
            Ok(Some(Duration::from_millis(1500)))
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e300] {
            let err = duration_seconds("timeoutSeconds", Some(bad)).unwrap_err();
            assert_eq!(err.field, "timeoutSeconds", "{bad}");
        }
    }

    #[test]
    fn colours_follow_the_thresholds() {
        assert_eq!(Colour::of(100.0), Colour::Green);
        assert_eq!(Colour::of(99.999), Colour::Yellow);
        assert_eq!(Colour::of(99.0), Colour::Yellow);
        assert_eq!(Colour::of(98.99), Colour::Red);
        assert_eq!(Colour::of(0.0), Colour::Red);
    }
}
