//! The response-time chart of a website's page, drawn as SVG on the server: a line
//! of the average response time per five minutes over the last 24 hours, broken
//! where nothing was measured, with the periods that had failed checks marked below.

use std::fmt::Write as _;
use std::time::Duration;

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use maud::{Markup, PreEscaped, html};

use crate::domain::Tally;

/// Width of one point of the chart.
pub const BUCKET: Duration = Duration::from_secs(300);

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 22.0;
const TOP: f64 = 8.0;
const SPAN_SECS: f64 = 24.0 * 3600.0;

/// A round upper end for the vertical axis: 1, 2 or 5 times a power of ten.
fn axis_max(max: f64) -> f64 {
    let max = max.max(10.0);
    let power = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|v| *v >= max)
        .unwrap_or(10.0 * power)
}

pub fn response_time(since: DateTime<Utc>, points: &[(DateTime<Utc>, Tally)], tz: Tz) -> Markup {
    let measured: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|(start, tally)| {
            let avg = tally.avg_response_time_ms()?;
            Some((offset(since, *start), avg))
        })
        .collect();
    if points.is_empty() {
        return html! { p.empty { "No checks in the last 24 hours." } };
    }
    let highest = measured.iter().map(|(_, ms)| *ms).fold(0.0, f64::max);
    let top = axis_max(highest);
    let plot_w = WIDTH - LEFT;
    let plot_h = HEIGHT - BOTTOM - TOP;
    let x = |secs: f64| LEFT + secs / SPAN_SECS * plot_w;
    let y = |ms: f64| TOP + plot_h - ms / top * plot_h;
    let bucket = BUCKET.as_secs_f64();

    // One path, with a new segment wherever a bucket without responses lies
    // between; a lone point is drawn across its bucket so it stays visible.
    let mut runs: Vec<Vec<(f64, f64)>> = Vec::new();
    for &(secs, ms) in &measured {
        match runs.last_mut() {
            Some(run) if run.last().is_some_and(|(p, _)| secs - p <= bucket * 1.5) => {
                run.push((secs, ms));
            }
            _ => runs.push(vec![(secs, ms)]),
        }
    }
    let mut line = String::new();
    for run in &runs {
        if let [(secs, ms)] = run.as_slice() {
            let _ = write!(
                line,
                "M{:.1} {:.1}L{:.1} {:.1}",
                x(*secs),
                y(*ms),
                x(secs + bucket),
                y(*ms)
            );
            continue;
        }
        for (i, (secs, ms)) in run.iter().enumerate() {
            let command = if i == 0 { 'M' } else { 'L' };
            let _ = write!(line, "{command}{:.1} {:.1}", x(secs + bucket / 2.0), y(*ms));
        }
    }
    let mut failures = String::new();
    let width = bucket / SPAN_SECS * plot_w;
    for (start, tally) in points {
        if tally.up_checks < tally.checks {
            let _ = write!(
                failures,
                r#"<rect class="fail" x="{:.1}" y="{:.1}" width="{:.1}" height="6"><title>{} checks failed</title></rect>"#,
                x(offset(since, *start)),
                HEIGHT - BOTTOM + 2.0,
                width.max(1.5),
                tally.checks - tally.up_checks
            );
        }
    }
    let failed: u64 = points.iter().map(|(_, t)| t.checks - t.up_checks).sum();
    let average = {
        let mut all = Tally::default();
        for (_, t) in points {
            all.response_ms_sum += t.response_ms_sum;
            all.responses += t.responses;
        }
        all.avg_response_time_ms()
    };
    let label = format!(
        "Response time over the last 24 hours: average {}, highest five-minute average {}, {} failed checks",
        super::fmt::avg_ms(average),
        super::fmt::avg_ms((!measured.is_empty()).then_some(highest)),
        failed
    );
    // Hour marks every six hours of local time.
    let mut ticks = Vec::new();
    let first = since.with_timezone(&tz);
    for hour in 1..=24 {
        let t = first + chrono::Duration::hours(hour);
        let t = t.with_minute(0).and_then(|t| t.with_second(0)).unwrap_or(t);
        if t.hour().is_multiple_of(6) && t.with_timezone(&Utc) > since {
            let secs = offset(since, t.with_timezone(&Utc));
            if secs <= SPAN_SECS {
                ticks.push((x(secs), t.format("%H:%M").to_string()));
            }
        }
    }
    html! {
        figure.chart {
            svg viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img" aria-label=(label) {
                title { (label) }
                @for fraction in [0.0, 0.5, 1.0] {
                    @let at = y(top * fraction);
                    line.grid x1=(LEFT) x2=(WIDTH) y1=(format!("{at:.1}")) y2=(format!("{at:.1}")) {}
                    text.axis x=(LEFT - 4.0) y=(format!("{:.1}", at + 4.0)) text-anchor="end" {
                        (format!("{:.0}", top * fraction)) " ms"
                    }
                }
                @for (at, text) in &ticks {
                    text.axis x=(format!("{at:.1}")) y=(HEIGHT - 4.0) text-anchor="middle" { (text) }
                }
                path.line d=(line) {}
                (PreEscaped(failures))
            }
            figcaption { (label) "." }
        }
    }
}

fn offset(since: DateTime<Utc>, t: DateTime<Utc>) -> f64 {
    (t - since).num_milliseconds() as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_ends_are_round() {
        assert_eq!(axis_max(0.0), 10.0);
        assert_eq!(axis_max(83.0), 100.0);
        assert_eq!(axis_max(120.0), 200.0);
        assert_eq!(axis_max(2100.0), 5000.0);
    }

    #[test]
    fn gaps_break_the_line_and_failures_are_marked() {
        let since = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let at = |minutes: i64| since + chrono::Duration::minutes(minutes);
        let up = Tally {
            checks: 5,
            up_checks: 5,
            response_ms_sum: 500,
            responses: 5,
        };
        let down = Tally {
            checks: 5,
            up_checks: 3,
            response_ms_sum: 300,
            responses: 3,
        };
        let svg = response_time(
            since,
            &[(at(0), up), (at(5), up), (at(60), down)],
            chrono_tz::UTC,
        )
        .into_string();
        let path = svg.split("d=\"").nth(1).unwrap().split('"').next().unwrap();
        assert_eq!(path.matches('M').count(), 2, "{path}");
        // Two joined points, then a lone one drawn across its bucket.
        assert_eq!(path.matches('L').count(), 2, "{path}");
        assert_eq!(svg.matches("class=\"fail\"").count(), 1);
        assert!(svg.contains("2 failed checks"), "{svg}");
    }
}
