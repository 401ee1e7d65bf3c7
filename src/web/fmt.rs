//! How values look on the pages: times in the configured zone, durations,
//! percentages, and status badges that say their state in words and symbols, not
//! in colour alone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{Markup, html};

use crate::domain::{Check, Status};

pub fn status_word(status: Status) -> &'static str {
    match status {
        Status::Up => "up",
        Status::Down => "down",
        Status::Pending => "pending",
    }
}

/// A symbol for each state, so the state is not told by colour alone.
pub fn mark(status: Status) -> &'static str {
    match status {
        Status::Up => "▲",
        Status::Down => "▼",
        Status::Pending => "●",
    }
}

pub fn badge(status: Status) -> Markup {
    html! {
        span class={ "badge status " (status_word(status)) } {
            span aria-hidden="true" { (mark(status)) } " " (status)
        }
    }
}

pub fn ms(ms: u32) -> String {
    format!("{ms} ms")
}

pub fn avg_ms(ms: Option<f64>) -> String {
    ms.map_or_else(|| "–".to_owned(), |ms| format!("{:.0} ms", ms))
}

/// Two decimals, cut rather than rounded, so 99.999 % never shows as 100 %.
pub fn percent(value: Option<f64>) -> String {
    match value {
        None => "–".to_owned(),
        Some(v) if v >= 100.0 => "100 %".to_owned(),
        Some(v) => format!("{:.2} %", (v * 100.0).floor() / 100.0),
    }
}

pub fn time(t: DateTime<Utc>, timezone: Tz) -> String {
    t.with_timezone(&timezone)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// What a bar of the checks strip says on hover: time, result, response time.
pub fn check_summary(check: &Check, timezone: Tz) -> String {
    let at = check.checked_at.with_timezone(&timezone).format("%H:%M:%S");
    match (&check.error, check.status_code) {
        (_, Some(code)) if check.up => format!("{at} {code}, {} ms", check.response_time_ms),
        (_, Some(code)) => format!("{at} down {code}, {} ms", check.response_time_ms),
        (Some(error), None) => format!(
            "{at} down {}, {} ms",
            error.kind.as_str(),
            check.response_time_ms
        ),
        (None, None) => format!("{at} {}", if check.up { "up" } else { "down" }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_never_round_up_to_full() {
        assert_eq!(percent(Some(100.0)), "100 %");
        assert_eq!(percent(Some(99.999)), "99.99 %");
        assert_eq!(percent(Some(98.5)), "98.50 %");
        assert_eq!(percent(None), "–");
    }
}
