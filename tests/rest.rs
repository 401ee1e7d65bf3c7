//! The REST endpoints of the original system, with its JSON shapes, on both databases.

#[macro_use]
mod common;

use std::time::Duration;

use common::TestDb;
use common::app::{ADMIN, ADMIN_PASSWORD, App, Auth};
use common::targets::Target;
use reqwest::StatusCode;
use reqwest::header;
use serde_json::Value;

both_databases!(websites_and_their_state_in_the_original_shapes);

async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

async fn websites_and_their_state_in_the_original_shapes(db: TestDb) {
    let target = Target::start().await;
    let app = App::start(db, |c| c.check_interval = Duration::from_secs(1)).await;
    let admin = Auth::Basic(ADMIN.into(), ADMIN_PASSWORD.into());

    // JSON and form bodies both work, and both answer with a redirect to the list.
    let response = app
        .request(reqwest::Method::POST, "/api/website", &admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body(format!(r#"{{"Name":"Up","URL":"{}"}}"#, target.url("/ok")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
    let down_url = target.url("/status/503");
    let response = app
        .post_form(
            "/api/website",
            &[("Name", "Down"), ("URL", &down_url)],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    let list = json(app.get("/api", &Auth::None).await).await;
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(keys(&list[0]), ["ID", "Name", "URL"]);
    let down = list.iter().find(|w| w["Name"] == "Down").unwrap();
    assert_eq!(down["URL"], down_url.as_str());
    let id = down["ID"].as_i64().unwrap();

    let path = format!("/api/website/{id}/state");
    let checks = common::eventually(20, "three checks of the website", || async {
        let checks = json(app.get(&path, &Auth::None).await).await;
        (checks.as_array()?.len() >= 3).then_some(checks)
    })
    .await;
    let checks = checks.as_array().unwrap();
    assert_eq!(
        keys(&checks[0]),
        [
            "CreatedAt",
            "DeletedAt",
            "ID",
            "UpdatedAt",
            "request_date",
            "response_time_ms",
            "return_code",
            "up",
            "website"
        ]
    );
    assert_eq!(checks[0]["website"], id);
    assert_eq!(checks[0]["up"], false);
    assert_eq!(checks[0]["return_code"], 503);
    assert!(checks[0]["DeletedAt"].is_null());
    let newest = checks[0]["request_date"].as_str().unwrap();
    let older = checks[1]["request_date"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(newest).unwrap()
            > chrono::DateTime::parse_from_rfc3339(older).unwrap(),
        "newest first"
    );
    let limited = json(app.get(&format!("{path}?limit=2"), &Auth::None).await).await;
    assert_eq!(limited.as_array().unwrap().len(), 2);

    let response = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/website/{id}"),
            &admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let deleted = json(response).await;
    assert_eq!(deleted["ID"], id);
    assert_eq!(deleted["Name"], "Down");
    let list = json(app.get("/api", &Auth::None).await).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let response = app.get(&path, &Auth::None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
