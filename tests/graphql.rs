//! The GraphQL API over HTTP: every query and mutation, signed in and not, on both
//! databases; errors and limits; the playground; the committed schema.

#[macro_use]
mod common;

use common::TestDb;
use common::app::{ADMIN, ADMIN_PASSWORD, App, Auth};
use common::targets::Target;
use reqwest::StatusCode;
use serde_json::{Value, json};

both_databases!(queries_and_mutations, accounts_through_graphql);

fn code(body: &Value) -> &str {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("no error code in {body}"))
}

async fn login(app: &App, username: &str, password: &str) -> Auth {
    let data = app
        .gql_ok(
            &Auth::None,
            "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { token user { username role } } }",
            json!({ "u": username, "p": password }),
        )
        .await;
    Auth::Bearer(data["login"]["token"].as_str().unwrap().to_owned())
}

const CREATE: &str = "mutation($input: CreateWebsiteInput!) { createWebsite(input: $input) { id name url status intervalSeconds timeoutSeconds paused } }";

async fn queries_and_mutations(db: TestDb) {
    let target = Target::start().await;
    let app = App::start(db, |_| {}).await;
    let admin = login(&app, ADMIN, ADMIN_PASSWORD).await;

    let data = app
        .gql_ok(
            &Auth::None,
            "{ me { username } websites { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data, json!({ "me": null, "websites": [] }));
    let data = app
        .gql_ok(&admin, "{ me { username role } }", json!({}))
        .await;
    assert_eq!(data["me"], json!({ "username": "admin", "role": "ADMIN" }));

    // Changes need a signed-in admin; bad input names its field.
    let input = json!({ "input": { "name": "Example", "url": target.url("/ok") } });
    let (status, body) = app.gql(&Auth::None, CREATE, input.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let bad = json!({ "input": { "name": "Bad", "url": "ftp://example.com/" } });
    let (_, body) = app.gql(&admin, CREATE, bad).await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "url");
    let bad =
        json!({ "input": { "name": "Bad", "url": target.url("/ok"), "intervalSeconds": -1.0 } });
    let (_, body) = app.gql(&admin, CREATE, bad).await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "intervalSeconds");

    let created = app.gql_ok(&admin, CREATE, input).await["createWebsite"].clone();
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["intervalSeconds"], 60.0);
    let id = created["id"].as_str().unwrap().to_owned();
    for name in ["Beta", "gamma"] {
        let input = json!({ "input": { "name": name, "url": target.url("/status/500"), "intervalSeconds": 3600.0 } });
        app.gql_ok(&admin, CREATE, input).await;
    }

    // Filtering and paging.
    let q = "query($f: WebsiteFilter, $first: Int, $after: ID) { websites(filter: $f, first: $first, after: $after) { name } }";
    let names = |data: &Value| -> Vec<String> {
        data["websites"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let data = app
        .gql_ok(&Auth::None, q, json!({ "f": { "nameContains": "AMM" } }))
        .await;
    assert_eq!(names(&data), ["gamma"]);
    let data = app.gql_ok(&Auth::None, q, json!({ "first": 2 })).await;
    assert_eq!(names(&data), ["Beta", "Example"]);
    let all = app
        .gql_ok(&Auth::None, "{ websites { id name } }", json!({}))
        .await;
    let second = all["websites"][1]["id"].clone();
    let data = app
        .gql_ok(&Auth::None, q, json!({ "first": 2, "after": second }))
        .await;
    assert_eq!(names(&data), ["gamma"]);

    // The scheduler checks a new website at once; let that check land first so
    // the counts below are exact.
    common::eventually(10, "the scheduled first check", || async {
        let data = app
            .gql_ok(
                &Auth::None,
                "query($id: ID!) { website(id: $id) { lastCheck { up } } }",
                json!({ "id": id }),
            )
            .await;
        data["website"]["lastCheck"].is_object().then_some(())
    })
    .await;
    // checkNow runs at once and returns the stored check.
    let check_now = "mutation($id: ID!) { checkNow(id: $id) { id websiteId up statusCode responseTimeMs checkedAt error { kind message } } }";
    for _ in 0..3 {
        let check = app.gql_ok(&admin, check_now, json!({ "id": id })).await["checkNow"].clone();
        assert_eq!(check["up"], true);
        assert_eq!(check["statusCode"], 200);
        assert_eq!(check["websiteId"], id.as_str());
        assert!(check["error"].is_null());
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let (_, body) = app.gql(&admin, check_now, json!({ "id": "999999" })).await;
    assert_eq!(code(&body), "NOT_FOUND");
    let (_, body) = app
        .gql(&admin, check_now, json!({ "id": "not-a-number" }))
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");

    let q = "query($id: ID!, $after: String) { website(id: $id) {
        name status statusSince lastCheck { up statusCode }
        history(days: 30) { date availability avgResponseTimeMs checks colour }
        uptime { last24h last7d last30d }
        checks(first: 2, after: $after) { edges { cursor node { up checkedAt } } pageInfo { hasNextPage } }
    } }";
    let all = app
        .gql_ok(
            &Auth::None,
            "query($id: ID!) { website(id: $id) { checks(first: 100) { edges { cursor } } } }",
            json!({ "id": id }),
        )
        .await;
    let stored = all["website"]["checks"]["edges"].as_array().unwrap().len();
    assert_eq!(stored, 4, "the scheduled check and three checkNow: {all}");
    let website = app.gql_ok(&Auth::None, q, json!({ "id": id })).await["website"].clone();
    assert_eq!(website["status"], "UP");
    assert!(website["statusSince"].is_string());
    assert_eq!(
        website["lastCheck"],
        json!({ "up": true, "statusCode": 200 })
    );
    let history = website["history"].as_array().unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["availability"], 100.0);
    assert_eq!(history[0]["checks"], stored);
    assert_eq!(history[0]["colour"], "GREEN");
    assert!(history[0]["date"].as_str().unwrap().len() == 10);
    assert_eq!(website["uptime"]["last24h"], 100.0);
    let edges = website["checks"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    assert_eq!(website["checks"]["pageInfo"]["hasNextPage"], true);
    let newest = edges[0]["node"]["checkedAt"].as_str().unwrap();
    let older = edges[1]["node"]["checkedAt"].as_str().unwrap();
    assert!(newest > older, "newest first: {newest} {older}");
    let cursor = edges[1]["cursor"].clone();
    let next = app
        .gql_ok(&Auth::None, q, json!({ "id": id, "after": cursor }))
        .await;
    let next = &next["website"]["checks"];
    assert_eq!(next["edges"].as_array().unwrap().len(), stored - 2);
    assert_eq!(next["pageInfo"]["hasNextPage"], false);

    let data = app
        .gql_ok(&Auth::None, "{ website(id: \"424242\") { id } }", json!({}))
        .await;
    assert!(data["website"].is_null());

    let update = "mutation($id: ID!, $input: UpdateWebsiteInput!) { updateWebsite(id: $id, input: $input) { name paused timeoutSeconds } }";
    let data = app
        .gql_ok(&admin, update, json!({ "id": id, "input": { "name": "Renamed", "paused": true, "timeoutSeconds": 2.5 } }))
        .await;
    assert_eq!(
        data["updateWebsite"],
        json!({ "name": "Renamed", "paused": true, "timeoutSeconds": 2.5 })
    );
    let (_, body) = app
        .gql(
            &admin,
            update,
            json!({ "id": "999999", "input": { "paused": false } }),
        )
        .await;
    assert_eq!(code(&body), "NOT_FOUND");

    let delete = "mutation($id: ID!) { deleteWebsite(id: $id) { id name } }";
    let data = app.gql_ok(&admin, delete, json!({ "id": id })).await;
    assert_eq!(
        data["deleteWebsite"],
        json!({ "id": id, "name": "Renamed" })
    );
    let data = app
        .gql_ok(
            &Auth::None,
            "query($id: ID!) { website(id: $id) { id } }",
            json!({ "id": id }),
        )
        .await;
    assert!(data["website"].is_null());
    let (_, body) = app.gql(&admin, delete, json!({ "id": id })).await;
    assert_eq!(code(&body), "NOT_FOUND");
}

async fn accounts_through_graphql(db: TestDb) {
    let app = App::start(db, |c| c.public_read = false).await;
    let (_, body) = app.gql(&Auth::None, "{ websites { id } }", json!({})).await;
    assert_eq!(code(&body), "UNAUTHENTICATED", "public read is off");
    let (_, body) = app
        .gql(
            &Auth::None,
            "mutation { login(username: \"admin\", password: \"wrong-password\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(code(&body), "UNAUTHENTICATED");
    let admin = login(&app, ADMIN, ADMIN_PASSWORD).await;
    app.gql_ok(&admin, "{ websites { id } }", json!({})).await;

    // Users, for admins only.
    let create_user = "mutation($u: String!, $p: String!, $r: Role) { createUser(username: $u, password: $p, role: $r) { id username role } }";
    let vera = app
        .gql_ok(
            &admin,
            create_user,
            json!({ "u": "vera", "p": "viewer-password-1" }),
        )
        .await["createUser"]
        .clone();
    assert_eq!(vera["role"], "VIEWER");
    let (_, body) = app
        .gql(
            &admin,
            create_user,
            json!({ "u": "VERA", "p": "viewer-password-2" }),
        )
        .await;
    assert_eq!(code(&body), "BAD_USER_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["field"], "username");
    let (_, body) = app
        .gql(&admin, create_user, json!({ "u": "tim", "p": "short" }))
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "password");

    let viewer = login(&app, "vera", "viewer-password-1").await;
    app.gql_ok(&viewer, "{ websites { id } }", json!({})).await;
    let (_, body) = app
        .gql(
            &viewer,
            CREATE,
            json!({ "input": { "name": "x", "url": "http://127.0.0.1:9/" } }),
        )
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let (_, body) = app.gql(&viewer, "{ users { username } }", json!({})).await;
    assert_eq!(code(&body), "FORBIDDEN");
    let data = app
        .gql_ok(&admin, "{ users { username role } }", json!({}))
        .await;
    assert_eq!(
        data["users"],
        json!([{ "username": "admin", "role": "ADMIN" }, { "username": "vera", "role": "VIEWER" }])
    );

    // A viewer manages their own API tokens.
    let created = app
        .gql_ok(&viewer, "mutation { createApiToken(name: \"grafana\") { token apiToken { id name hint lastUsedAt } } }", json!({}))
        .await["createApiToken"]
        .clone();
    let secret = created["token"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sp360_"));
    assert!(secret.ends_with(created["apiToken"]["hint"].as_str().unwrap()));
    let by_token = Auth::Bearer(secret.clone());
    let data = app
        .gql_ok(
            &by_token,
            "{ me { username apiTokens { name lastUsedAt } } }",
            json!({}),
        )
        .await;
    assert_eq!(data["me"]["username"], "vera");
    assert!(
        data["me"]["apiTokens"][0]["lastUsedAt"].is_string(),
        "{data}"
    );
    let token_id = created["apiToken"]["id"].clone();
    let revoke = "mutation($id: ID!) { revokeApiToken(id: $id) { name } }";
    let (_, body) = app
        .gql(&app.admin().await, revoke, json!({ "id": "999999" }))
        .await;
    assert_eq!(code(&body), "NOT_FOUND");
    app.gql_ok(&viewer, revoke, json!({ "id": token_id })).await;
    let (status, body) = app.gql(&by_token, "{ me { username } }", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(code(&body), "UNAUTHENTICATED");

    // Password change keeps this session and ends the others.
    let other = login(&app, "vera", "viewer-password-1").await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";
    let (_, body) = app
        .gql(
            &viewer,
            change,
            json!({ "c": "nope-nope-nope", "n": "viewer-password-9" }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["field"], "currentPassword");
    app.gql_ok(
        &viewer,
        change,
        json!({ "c": "viewer-password-1", "n": "viewer-password-9" }),
    )
    .await;
    app.gql_ok(&viewer, "{ me { username } }", json!({})).await;
    let (status, _) = app.gql(&other, "{ me { username } }", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Roles; the last admin stays.
    let admin_id = app.gql_ok(&admin, "{ me { id } }", json!({})).await["me"]["id"].clone();
    let set_role = "mutation($id: ID!, $r: Role!) { setUserRole(id: $id, role: $r) { role } }";
    let (_, body) = app
        .gql(&admin, set_role, json!({ "id": admin_id, "r": "VIEWER" }))
        .await;
    assert_eq!(code(&body), "FORBIDDEN");
    let data = app
        .gql_ok(&admin, set_role, json!({ "id": vera["id"], "r": "ADMIN" }))
        .await;
    assert_eq!(data["setUserRole"]["role"], "ADMIN");
    let data = app
        .gql_ok(
            &admin,
            "mutation($id: ID!) { deleteUser(id: $id) { username } }",
            json!({ "id": vera["id"] }),
        )
        .await;
    assert_eq!(data["deleteUser"]["username"], "vera");
    let (status, _) = app.gql(&viewer, "{ me { username } }", json!({})).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a deleted user's sessions end"
    );

    // Logging out ends the session the request used.
    let data = app.gql_ok(&admin, "mutation { logout }", json!({})).await;
    assert_eq!(data["logout"], true);
    let (status, _) = app.gql(&admin, "{ me { username } }", json!({})).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_and_limits_get_a_400_with_a_code() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let post = |body: String| {
        app.client
            .post(app.url("/graphql"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let read = |response: reqwest::Response| async move {
        let status = response.status();
        let text = response.text().await.unwrap();
        (
            status,
            serde_json::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{e}: {text}")),
        )
    };

    let (status, body) = read(post("{\"query\": ".into()).await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST")
    );
    let (status, body) = read(post("[1, 2]".into()).await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BAD_REQUEST")
    );
    let (status, body) = read(
        post(json!({ "query": "{ websites { id " }).to_string())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_PARSE_FAILED")
    );
    let (status, body) = read(
        post(json!({ "query": "{ websites { nope } }" }).to_string())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "GRAPHQL_VALIDATION_FAILED")
    );

    let deep = format!(
        "{{ __schema {{ types {} }} }}",
        "{ fields { type { ofType ".repeat(4) + "{ name }" + &" } } }".repeat(4)
    );
    let (status, body) = read(post(json!({ "query": deep }).to_string()).await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "QUERY_TOO_DEEP"),
        "{body}"
    );
    let wide = format!(
        "{{ {} }}",
        (0..1100)
            .map(|i| format!("a{i}: me {{ id }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (status, body) = read(post(json!({ "query": wide }).to_string()).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        ["QUERY_TOO_COMPLEX", "PAYLOAD_TOO_LARGE"].contains(&code(&body)),
        "{body}"
    );
    let complex = format!(
        "{{ {} }}",
        (0..600)
            .map(|i| format!("a{i}: me {{ id username }}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let (status, body) = read(post(json!({ "query": complex }).to_string()).await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "QUERY_TOO_COMPLEX"),
        "{body}"
    );

    let huge =
        json!({ "query": format!("{{ me {{ id }} }} #{}", "x".repeat(200_000)) }).to_string();
    let (status, body) = read(post(huge).await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "PAYLOAD_TOO_LARGE")
    );

    let batch = |n: usize| Value::Array(vec![json!({ "query": "{ me { id } }" }); n]).to_string();
    let (status, body) = read(post(batch(11)).await.unwrap()).await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::BAD_REQUEST, "BATCH_TOO_LARGE")
    );
    let (status, body) = read(post(batch(2)).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!([{ "data": { "me": null } }, { "data": { "me": null } }])
    );

    let (status, body) = app
        .gql(
            &Auth::Bearer("sp360_forged".into()),
            "{ me { id } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (status, code(&body)),
        (StatusCode::UNAUTHORIZED, "UNAUTHENTICATED")
    );
    // Odd but valid input is answered, not crashed on.
    let data = app
        .gql_ok(
            &Auth::None,
            "query($n: String) { websites(filter: { nameContains: $n }) { id } }",
            json!({ "n": "\u{0}\u{202e}🙂" }),
        )
        .await;
    assert_eq!(data["websites"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_is_served_without_a_cdn() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let page = app.get("/graphql", &Auth::None).await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("script-src 'self' 'unsafe"),
        "{csp}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no external URL: {html}"
    );
    assert!(!html.contains("<script>"), "no inline script");
    let mut assets = 0;
    for src in html
        .split("src=\"")
        .skip(1)
        .chain(html.split("href=\"").skip(1))
    {
        let path = src.split('"').next().unwrap();
        let response = app.get(path, &Auth::None).await;
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = response.text().await.unwrap();
        assert!(body.len() > 30, "{path}");
        if path.ends_with("start.js") {
            assert!(body.contains("/graphql/ws") && body.contains("/graphql"));
        }
        assets += 1;
    }
    assert_eq!(assets, 7);
    assert_eq!(
        app.get("/assets/graphiql/nope.js", &Auth::None)
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
}

#[test]
fn the_committed_schema_matches_the_code() {
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        committed == sitepulse::graphql::sdl(),
        "schema.graphql is out of date: run `cargo run -- schema > schema.graphql` and review the difference"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_queries_see_every_change_at_once() {
    let target = Target::start().await;
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let admin = login(&app, ADMIN, ADMIN_PASSWORD).await;
    let q = "{ websites { name status lastCheck { statusCode } } }";
    assert_eq!(
        app.gql_ok(&Auth::None, q, json!({})).await["websites"],
        json!([])
    );
    assert_eq!(
        app.gql_ok(&Auth::None, q, json!({})).await["websites"],
        json!([])
    );

    let input = json!({ "input": { "name": "cached", "url": target.url("/status/404"), "intervalSeconds": 3600.0 } });
    let id = app.gql_ok(&admin, CREATE, input).await["createWebsite"]["id"].clone();
    let listed = app.gql_ok(&Auth::None, q, json!({})).await;
    assert_eq!(listed["websites"][0]["name"], "cached");
    let after_check = common::eventually(10, "the first check in the list", || async {
        let data = app.gql_ok(&Auth::None, q, json!({})).await;
        (data["websites"][0]["status"] == "DOWN").then_some(data)
    })
    .await;
    assert_eq!(after_check["websites"][0]["lastCheck"]["statusCode"], 404);

    app.gql_ok(
        &admin,
        "mutation($id: ID!) { deleteWebsite(id: $id) { id } }",
        json!({ "id": id }),
    )
    .await;
    assert_eq!(
        app.gql_ok(&Auth::None, q, json!({})).await["websites"],
        json!([])
    );
    // Answers that depend on the caller are never shared.
    let me = "{ me { username } }";
    assert_eq!(
        app.gql_ok(&admin, me, json!({})).await["me"]["username"],
        "admin"
    );
    assert!(app.gql_ok(&Auth::None, me, json!({})).await["me"].is_null());
}

/// The playground as a browser shows it: headless Chromium loads the page, runs
/// its scripts under the page's Content-Security-Policy, and the editor holds the
/// starting query.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_playground_renders_in_a_real_browser() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let browser = std::env::var("SITEPULSE_TEST_CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(&browser)
        .args(common::CHROMIUM_FLAGS)
        .args([
            "--virtual-time-budget=10000",
            "--enable-logging=stderr",
            "--log-level=0",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(app.url("/graphql"))
        .kill_on_drop(true)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run {browser} (apt-get install chromium): {e}"));
    let dom = String::from_utf8_lossy(&output.stdout);
    assert!(
        dom.contains("graphiql-container"),
        "GraphiQL did not render: {dom}"
    );
    assert!(
        dom.contains("lastCheck"),
        "the starting query is in the editor"
    );
    let log = String::from_utf8_lossy(&output.stderr);
    // The console, logged to stderr, reports anything the policy blocked.
    assert!(!log.contains("Content Security Policy"), "{log}");
}
