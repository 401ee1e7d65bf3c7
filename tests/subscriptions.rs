//! GraphQL subscriptions with a real WebSocket client, over both sub-protocols.

#[macro_use]
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::TestDb;
use common::app::{ADMIN, ADMIN_PASSWORD, App, Auth};
use common::targets::Target;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

both_databases!(checks_and_status_changes_arrive_live);

struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pings: usize,
}

impl Ws {
    async fn connect(app: &App, protocol: &str, cookie: Option<&str>) -> Self {
        let mut request = format!("ws://{}/graphql/ws", app.server.addr())
            .into_client_request()
            .unwrap();
        request
            .headers_mut()
            .insert("sec-websocket-protocol", protocol.parse().unwrap());
        if let Some(token) = cookie {
            request.headers_mut().insert(
                "cookie",
                format!("sitepulse_session={token}").parse().unwrap(),
            );
        }
        let (stream, response) = tokio_tungstenite::connect_async(request).await.unwrap();
        assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
        Self { stream, pings: 0 }
    }

    async fn send(&mut self, message: Value) {
        self.stream
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    /// The next JSON message; `None` when the server closed the connection.
    async fn next(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(20), self.stream.next())
                .await
                .expect("a message within 20 s")?;
            match message {
                Ok(Message::Text(text)) => return Some(serde_json::from_str(&text).unwrap()),
                Ok(Message::Ping(_)) => self.pings += 1,
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Skips messages until one satisfies `wanted`, for at most 30 s.
    async fn until(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        let mut seen = Vec::new();
        let waiting = async {
            loop {
                let Some(message) = self.next().await else {
                    panic!("closed while waiting for {what}");
                };
                if wanted(&message) {
                    return message;
                }
                if seen.len() < 5 {
                    seen.push(message);
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(30), waiting).await {
            Ok(message) => message,
            Err(_) => panic!("no {what} within 30 s"),
        }
    }
}

async fn token(app: &App) -> String {
    let data = app
        .gql_ok(
            &Auth::None,
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token } }",
            json!({ "u": ADMIN, "p": ADMIN_PASSWORD }),
        )
        .await;
    data["login"]["token"].as_str().unwrap().to_owned()
}

async fn create_website(app: &App, auth: &Auth, url: &str) -> String {
    let data = app
        .gql_ok(
            auth,
            "mutation($url: String!) { createWebsite(input: { name: \"live\", url: $url, intervalSeconds: 1, timeoutSeconds: 0.5 }) { id } }",
            json!({ "url": url }),
        )
        .await;
    data["createWebsite"]["id"].as_str().unwrap().to_owned()
}

fn is(kind: &'static str, id: &'static str) -> impl Fn(&Value) -> bool {
    move |m| m["type"] == kind && m["id"] == id
}

async fn checks_and_status_changes_arrive_live(db: TestDb) {
    let target = Target::start().await;
    let app = App::start(db, |c| {
        c.public_read = false;
        c.ws_keepalive = Duration::from_millis(500);
    })
    .await;
    let token = token(&app).await;
    let admin = Auth::Bearer(token.clone());
    let website = create_website(&app, &admin, &target.url("/switch")).await;

    let mut ws = Ws::connect(&app, "graphql-transport-ws", None).await;
    ws.send(json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {token}") } }))
        .await;
    assert_eq!(ws.next().await.unwrap()["type"], "connection_ack");
    ws.send(json!({ "id": "c", "type": "subscribe", "payload": {
        "query": "subscription($w: ID) { checkCompleted(websiteId: $w) { websiteId up statusCode } }",
        "variables": { "w": website } } }))
        .await;
    ws.send(json!({ "id": "s", "type": "subscribe", "payload": {
        "query": "subscription($w: ID) { statusChanged(websiteId: $w) { websiteId previous current check { up statusCode } } }",
        "variables": { "w": website } } }))
        .await;

    let next = ws.until("a check", is("next", "c")).await;
    assert_eq!(
        next["payload"]["data"]["checkCompleted"]["websiteId"],
        website.as_str()
    );
    assert_eq!(next["payload"]["data"]["checkCompleted"]["up"], true);

    target.set_healthy(false);
    let change = ws
        .until("UP to DOWN", |m| {
            is("next", "s")(m) && m["payload"]["data"]["statusChanged"]["current"] == "DOWN"
        })
        .await;
    let change = &change["payload"]["data"]["statusChanged"];
    assert_eq!(change["previous"], "UP");
    assert_eq!(change["check"], json!({ "up": false, "statusCode": 503 }));
    target.set_healthy(true);
    let change = ws
        .until("DOWN to UP", |m| {
            is("next", "s")(m) && m["payload"]["data"]["statusChanged"]["current"] == "UP"
        })
        .await;
    assert_eq!(
        change["payload"]["data"]["statusChanged"]["previous"],
        "DOWN"
    );

    // Deleting the website ends its subscriptions cleanly.
    app.gql_ok(
        &admin,
        "mutation($id: ID!) { deleteWebsite(id: $id) { id } }",
        json!({ "id": website }),
    )
    .await;
    let mut completed = Vec::new();
    while completed.len() < 2 {
        let done = ws
            .until("both subscriptions to complete", |m| {
                m["type"] == "complete"
            })
            .await;
        completed.push(done["id"].as_str().unwrap().to_owned());
    }
    completed.sort();
    assert_eq!(completed, ["c", "s"]);
    assert!(ws.pings > 0, "keep-alive pings arrive");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_legacy_protocol_works_too() {
    let target = Target::start().await;
    let app = App::start(TestDb::sqlite(), |c| {
        c.ws_keepalive = Duration::from_millis(300)
    })
    .await;
    let admin = Auth::Bearer(token(&app).await);

    let mut ws = Ws::connect(&app, "graphql-ws", None).await;
    ws.send(json!({ "type": "connection_init", "payload": {} }))
        .await;
    assert_eq!(ws.next().await.unwrap()["type"], "connection_ack");
    ws.send(json!({ "id": "w", "type": "start", "payload": {
        "query": "subscription { websiteChanged { kind website { name } } }" } }))
        .await;
    ws.send(json!({ "id": "c", "type": "start", "payload": {
        "query": "subscription { checkCompleted { websiteId up } }" } }))
        .await;
    ws.until("a keep-alive", |m| m["type"] == "ka").await;

    let website = create_website(&app, &admin, &target.url("/ok")).await;
    let created = ws.until("the new website", is("data", "w")).await;
    assert_eq!(
        created["payload"]["data"]["websiteChanged"],
        json!({ "kind": "CREATED", "website": { "name": "live" } })
    );
    let check = ws.until("a check", is("data", "c")).await;
    assert_eq!(
        check["payload"]["data"]["checkCompleted"],
        json!({ "websiteId": website, "up": true })
    );
    ws.send(json!({ "id": "c", "type": "stop" })).await;
    ws.until("the stop to be confirmed", is("complete", "c"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_follow_the_same_rules_as_queries() {
    let app = App::start(TestDb::sqlite(), |c| c.public_read = false).await;
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { checkCompleted { up } }" } });

    // Anonymous, with public read off: refused with the code queries get.
    let mut ws = Ws::connect(&app, "graphql-transport-ws", None).await;
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(ws.next().await.unwrap()["type"], "connection_ack");
    ws.send(subscribe.clone()).await;
    let error = ws.until("an error", is("next", "1")).await;
    assert_eq!(
        error["payload"]["errors"][0]["extensions"]["code"],
        "UNAUTHENTICATED"
    );
    ws.until("the end of the refused subscription", is("complete", "1"))
        .await;

    // A forged token in connection_init closes the connection without an ack.
    let mut ws = Ws::connect(&app, "graphql-transport-ws", None).await;
    ws.send(
        json!({ "type": "connection_init", "payload": { "Authorization": "Bearer sp360_forged" } }),
    )
    .await;
    let answer = ws.next().await;
    assert!(
        answer
            .as_ref()
            .is_none_or(|m| m["type"] != "connection_ack"),
        "{answer:?}"
    );

    // The session cookie authenticates the connection too.
    let session = app.login(ADMIN, ADMIN_PASSWORD).await.unwrap();
    let mut ws = Ws::connect(&app, "graphql-transport-ws", Some(&session)).await;
    ws.send(json!({ "type": "connection_init" })).await;
    assert_eq!(ws.next().await.unwrap()["type"], "connection_ack");
    ws.send(json!({ "id": "2", "type": "subscribe", "payload": {
        "query": "subscription { websiteChanged { kind } }" } }))
        .await;
    ws.send(json!({ "id": "3", "type": "subscribe", "payload": {
        "query": "subscription { statusChanged(websiteId: \"424242\") { current } }" } }))
        .await;
    let error = ws.until("an error", is("next", "3")).await;
    assert_eq!(
        error["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
    let admin = Auth::Cookie(session);
    create_website(&app, &admin, "http://127.0.0.1:9/").await;
    let changed = ws.until("a change", is("next", "2")).await;
    assert_eq!(
        changed["payload"]["data"]["websiteChanged"]["kind"],
        "CREATED"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_told_what_it_missed_and_slows_no_one() {
    use sitepulse::domain::Check;
    use sitepulse::events::Event;
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let mut slow = Ws::connect(&app, "graphql-transport-ws", None).await;
    slow.send(json!({ "type": "connection_init" })).await;
    assert_eq!(slow.next().await.unwrap()["type"], "connection_ack");
    slow.send(json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription { checkCompleted { websiteId responseTimeMs } }" } }))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Far more events than the subscriber's queue and the socket's buffers hold,
    // published while it reads nothing: publishing never waits for it.
    let events = app.server.state().events.clone();
    let started = std::time::Instant::now();
    for i in 0..200_000u32 {
        events.publish(Event::CheckCompleted(Arc::new(Check {
            website_id: 1,
            slot: chrono::Utc::now(),
            checked_at: chrono::Utc::now(),
            up: true,
            status_code: Some(200),
            response_time_ms: i,
            error: None,
        })));
    }
    let publishing = started.elapsed();
    assert!(
        publishing < Duration::from_secs(10),
        "publishing took {publishing:?}"
    );

    let missed = slow
        .until("the notice of missed events", |m| {
            is("next", "1")(m) && m["payload"]["errors"][0]["extensions"]["code"] == "EVENTS_MISSED"
        })
        .await;
    assert!(
        missed["payload"]["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("missed")
    );
    // And the subscription carries on with what came after.
    let after = slow
        .until("an event after the gap", |m| {
            is("next", "1")(m) && m["payload"]["data"].is_object()
        })
        .await;
    assert!(
        after["payload"]["data"]["checkCompleted"]["responseTimeMs"]
            .as_i64()
            .unwrap()
            > 0
    );
}
