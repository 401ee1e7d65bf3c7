//! `/metrics` as Prometheus scrapes it: checks by result with their duration, HTTP
//! requests by route, open live connections, leadership, websites by status.

#[macro_use]
mod common;

use std::time::Duration;

use common::TestDb;
use common::app::{App, Auth};
use common::targets::Target;

async fn scrape(app: &App) -> String {
    let response = app.get("/metrics", &Auth::None).await;
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    response.text().await.unwrap()
}

/// The value of the sample named exactly `series` (name and labels).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_checks_requests_and_connections() {
    let target = Target::start().await;
    let app = App::start(TestDb::sqlite(), |c| {
        c.check_interval = Duration::from_secs(1)
    })
    .await;
    let admin = app.admin().await;
    for (name, path) in [("up", "/ok"), ("down", "/status/500")] {
        let response = app
            .post_form(
                "/websites/new",
                &[("name", name), ("url", &target.url(path))],
                &admin,
            )
            .await;
        assert_eq!(response.status(), 303);
    }
    let live = app.get("/live", &admin).await;
    assert_eq!(live.status(), 200);
    let text = common::eventually(20, "checks of both results", || async {
        let text = scrape(&app).await;
        (value(&text, "sitepulse_checks_total{result=\"up\",error=\"\"}").unwrap_or(0.0) >= 2.0
            && value(
                &text,
                "sitepulse_checks_total{result=\"down\",error=\"http\"}",
            )
            .unwrap_or(0.0)
                >= 2.0)
            .then_some(text)
    })
    .await;
    assert!(text.ends_with("# EOF\n"));
    assert!(value(&text, "sitepulse_check_duration_seconds_count").unwrap() >= 4.0);
    assert!(
        text.lines().any(|l| l.starts_with("sitepulse_leader{")
            && l.contains("mode=\"none\"")
            && l.ends_with(" 1")),
        "{text}"
    );
    assert_eq!(value(&text, "sitepulse_websites{status=\"up\"}"), Some(1.0));
    assert_eq!(
        value(&text, "sitepulse_websites{status=\"down\"}"),
        Some(1.0)
    );
    // With the database up, at most the results of the batch being gathered wait.
    assert!(value(&text, "sitepulse_buffered_results").unwrap() <= 2.0);
    assert_eq!(
        value(&text, "sitepulse_open_connections{kind=\"live_events\"}"),
        Some(1.0)
    );
    assert!(
        value(
            &text,
            "sitepulse_http_requests_total{route=\"/websites/new\",method=\"POST\",status=\"303\"}"
        )
        .unwrap()
            >= 2.0
    );
    drop(live);
    common::eventually(10, "the closed stream no longer counted", || async {
        let text = scrape(&app).await;
        (value(&text, "sitepulse_open_connections{kind=\"live_events\"}") == Some(0.0))
            .then_some(())
    })
    .await;
    app.stop().await;
}
