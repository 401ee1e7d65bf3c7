//! Accounts as users and scripts meet them: signing in and out, sessions, API
//! tokens, roles, cross-site protection and the sign-in limit, on both databases.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::TestDb;
use common::app::{ADMIN, ADMIN_PASSWORD, App, Auth, session_cookie, set_cookie};
use reqwest::StatusCode;
use reqwest::header;
use sitepulse::auth::model::Role;
use sitepulse::store::DatabaseUrl;

both_databases!(
    signing_in_and_out,
    wrong_password_and_unknown_user_look_the_same,
    changing_the_password_ends_the_other_sessions,
    api_tokens_are_shown_once_used_and_revoked_at_once,
    viewers_read_but_change_nothing,
    anonymous_readers_need_public_read,
    cross_site_form_posts_are_refused,
    the_sign_in_limit_holds_under_parallel_attempts,
    cookies_are_secure_only_behind_a_trusted_https_proxy,
    sessions_expire_when_idle_and_when_old,
    the_last_admin_stays,
);

/// The hashes stored in `table`'s `token_hash` column, read straight from the database.
async fn stored_hashes(db: &TestDb, table: &str) -> Vec<Vec<u8>> {
    let sql = sqlx::AssertSqlSafe(format!("SELECT token_hash FROM {table}"));
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
            let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
        }
        DatabaseUrl::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.unwrap();
            sqlx::query_scalar(sql).fetch_all(&pool).await.unwrap()
        }
    }
}

fn sha256(text: &str) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .to_vec()
}

async fn signing_in_and_out(db: TestDb) {
    let app = App::start(db, |_| {}).await;

    // A protected page sends the visitor to sign in, and back afterwards.
    let response = app.get("/account", &Auth::None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/login?next=%2Faccount"
    );

    let response = app
        .post_form(
            "/login",
            &[
                ("username", "ADMIN"),
                ("password", ADMIN_PASSWORD),
                ("next", "/account"),
            ],
            &Auth::None,
        )
        .await;
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "usernames ignore case"
    );
    assert_eq!(response.headers()[header::LOCATION], "/account");
    let cookie = set_cookie(response.headers()).unwrap();
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    let token = session_cookie(response.headers()).unwrap();
    assert!(token.len() >= 22, "at least 128 bits: {token}");

    // The database keeps the token's hash, never the token.
    let hashes = stored_hashes(&app.db, "sessions").await;
    assert_eq!(hashes, vec![sha256(&token)]);

    let auth = Auth::Cookie(token.clone());
    let page = app.get("/account", &auth).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Signed in as <strong>admin</strong>")
    );

    // Only same-site paths are followed after signing in.
    let response = app
        .post_form(
            "/login",
            &[
                ("username", ADMIN),
                ("password", ADMIN_PASSWORD),
                ("next", "//evil.example/"),
            ],
            &Auth::None,
        )
        .await;
    assert_eq!(response.headers()[header::LOCATION], "/");

    let response = app.post_form("/logout", &[], &auth).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(
        set_cookie(response.headers())
            .unwrap()
            .contains("Max-Age=0")
    );
    // The session is gone on the server, even for a client that keeps the cookie.
    let response = app.get("/account", &auth).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    // A session token is also accepted as a Bearer token, and not after sign-out.
    let response = app.get("/api", &Auth::Bearer(token)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn wrong_password_and_unknown_user_look_the_same(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let wrong = app
        .post_form(
            "/login",
            &[("username", ADMIN), ("password", "not-the-password")],
            &Auth::None,
        )
        .await;
    let unknown = app
        .post_form(
            "/login",
            &[("username", "nobody"), ("password", "not-the-password")],
            &Auth::None,
        )
        .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(wrong.headers()).is_none());
    let wrong = wrong.text().await.unwrap();
    let unknown = unknown.text().await.unwrap();
    assert!(wrong.contains("Wrong username or password."));
    // Same message; only the echoed username differs.
    assert_eq!(
        wrong.replace("value=\"admin\"", ""),
        unknown.replace("value=\"nobody\"", "")
    );

    // Basic credentials get the same answer for both.
    for (user, password) in [(ADMIN, "not-the-password"), ("nobody", "whatever-password")] {
        let response = app
            .get("/api", &Auth::Basic(user.into(), password.into()))
            .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    }
}

async fn changing_the_password_ends_the_other_sessions(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let here = app.admin().await;
    let elsewhere = app.admin().await;
    let new_password = "a much better passphrase";

    let response = app
        .post_form(
            "/account/password",
            &[
                ("current_password", "wrong-current-password"),
                ("new_password", new_password),
                ("confirm_password", new_password),
            ],
            &here,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("current password is wrong")
    );

    let response = app
        .post_form(
            "/account/password",
            &[
                ("current_password", ADMIN_PASSWORD),
                ("new_password", "too short"),
                ("confirm_password", "too short"),
            ],
            &here,
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("at least 12 characters")
    );

    let response = app
        .post_form(
            "/account/password",
            &[
                ("current_password", ADMIN_PASSWORD),
                ("new_password", new_password),
                ("confirm_password", new_password),
            ],
            &here,
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.get("/account", &here).await.status(), StatusCode::OK);
    assert_eq!(
        app.get("/account", &elsewhere).await.status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        app.login(ADMIN, ADMIN_PASSWORD).await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert!(app.login(ADMIN, new_password).await.is_ok());
}

async fn api_tokens_are_shown_once_used_and_revoked_at_once(db: TestDb) {
    let app = App::start(db, |c| c.public_read = false).await;
    let admin = app.admin().await;
    let secret = app.create_token(&admin, "deploy script").await;
    assert!(
        secret.starts_with("sp360_") && secret.len() >= 6 + 43,
        "{secret}"
    );
    assert_eq!(
        stored_hashes(&app.db, "api_tokens").await,
        vec![sha256(&secret)]
    );

    // Listed by name and its last characters, never in full.
    let page = app.get("/account", &admin).await.text().await.unwrap();
    assert!(page.contains("deploy script"));
    assert!(page.contains(&secret[secret.len() - 4..]));
    assert!(!page.contains(&secret));
    assert!(page.contains("never"), "not used yet");

    let bearer = Auth::Bearer(secret.clone());
    let response = app.get("/api", &bearer).await;
    assert_eq!(response.status(), StatusCode::OK);
    let response = app
        .request(reqwest::Method::POST, "/api/website", &bearer)
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"Name":"Example","URL":"http://127.0.0.1:9/"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let page = app.get("/account", &admin).await.text().await.unwrap();
    assert!(!page.contains(">never<"), "last use is recorded: {page}");

    // Revoking takes effect on the very next request.
    let id = {
        let marker = "/account/tokens/";
        let start = page.find(marker).unwrap() + marker.len();
        page[start..].split('/').next().unwrap().to_owned()
    };
    let response = app
        .post_form(&format!("/account/tokens/{id}/revoke"), &[], &admin)
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get("/api", &bearer).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let response = app
        .post_form(&format!("/account/tokens/{id}/revoke"), &[], &admin)
        .await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app.get("/api", &Auth::Bearer("sp360_forged".into())).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn viewers_read_but_change_nothing(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let viewer_password = "viewer-password-456";
    app.server
        .state()
        .accounts
        .create_user("vera", viewer_password, Role::Viewer)
        .await
        .unwrap();
    let basic = Auth::Basic("vera".into(), viewer_password.into());
    let cookie = Auth::Cookie(app.login("Vera", viewer_password).await.unwrap());
    let token = Auth::Bearer(app.create_token(&cookie, "read only").await);

    for auth in [&basic, &cookie, &token] {
        assert_eq!(app.get("/api", auth).await.status(), StatusCode::OK);
        let response = app
            .post_form(
                "/api/website",
                &[("Name", "x"), ("URL", "http://127.0.0.1:9/")],
                auth,
            )
            .await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{auth:?}");
    }
    let admin = Auth::Basic(ADMIN.into(), ADMIN_PASSWORD.into());
    let response = app
        .post_form(
            "/api/website",
            &[("Name", "Kept"), ("URL", "http://127.0.0.1:9/")],
            &admin,
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let id = app.server.state().store.websites().await.unwrap()[0].id;
    for auth in [&basic, &cookie, &token] {
        let response = app
            .request(reqwest::Method::DELETE, &format!("/api/website/{id}"), auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(app.server.state().store.websites().await.unwrap().len(), 1);

    // The UI shows the role and offers no admin controls.
    let page = app.get("/", &cookie).await.text().await.unwrap();
    assert!(page.contains("vera") && page.contains("viewer"));
}

async fn anonymous_readers_need_public_read(db: TestDb) {
    let open = App::start(db, |_| {}).await;
    assert_eq!(open.get("/api", &Auth::None).await.status(), StatusCode::OK);
    assert_eq!(open.get("/", &Auth::None).await.status(), StatusCode::OK);
    let response = open
        .post_form(
            "/api/website",
            &[("Name", "x"), ("URL", "http://127.0.0.1:9/")],
            &Auth::None,
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let db = open.stop().await;

    let closed = App::start(db, |c| c.public_read = false).await;
    let response = closed.get("/api", &Auth::None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = closed.get("/api/website/1/state", &Auth::None).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = closed.get("/", &Auth::None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/login?next=%2F");
    // Signing in still works, and then reading does.
    let admin = closed.admin().await;
    assert_eq!(closed.get("/", &admin).await.status(), StatusCode::OK);
}

async fn cross_site_form_posts_are_refused(db: TestDb) {
    let app = App::start(db, |_| {}).await;
    let admin = app.admin().await;
    let Auth::Cookie(token) = &admin else {
        unreachable!()
    };
    let attempts: [(&str, &str); 3] = [
        ("origin", "https://evil.example"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-site", "same-site"),
    ];
    for (name, value) in attempts {
        let response = app
            .client
            .post(app.url("/logout"))
            .header(header::COOKIE, format!("sitepulse_session={token}"))
            .header(name, value)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let response = app
            .client
            .post(app.url("/account/tokens"))
            .header(header::COOKIE, format!("sitepulse_session={token}"))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(name, value)
            .body("name=stolen")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN);
    }
    // Still signed in, and no token was created.
    let page = app.get("/account", &admin).await.text().await.unwrap();
    assert!(page.contains("No API tokens yet."));
}

async fn the_sign_in_limit_holds_under_parallel_attempts(db: TestDb) {
    let app = App::start(db, |c| c.login_rate_limit = 10.try_into().unwrap()).await;
    let started = Instant::now();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..30 {
        let request = app.form_request(
            "/login",
            &[("username", ADMIN), ("password", "guess-guess-guess")],
            &Auth::None,
        );
        attempts.spawn(async move { request.send().await.unwrap() });
    }
    let responses = attempts.join_all().await;
    let elapsed = started.elapsed();
    let rejected = responses
        .iter()
        .filter(|r| r.status() == StatusCode::UNAUTHORIZED)
        .count();
    let limited: Vec<_> = responses
        .iter()
        .filter(|r| r.status() == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    assert_eq!(rejected + limited.len(), 30);
    // A burst of 10, then one more every 6 s.
    let allowed = 10 + usize::try_from(elapsed.as_secs() / 6).unwrap();
    assert!(
        rejected >= 10 && rejected <= allowed,
        "{rejected} attempts were checked"
    );
    for response in &limited {
        let retry: u64 = response.headers()[header::RETRY_AFTER]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "Retry-After {retry}");
    }
    // The right password does not get past the limit either, nor does another
    // username from the same address, nor Basic credentials (while the next
    // attempt has not been earned back, 6 s after the burst).
    if started.elapsed() > Duration::from_secs(5) {
        eprintln!("the burst took {elapsed:?}; skipping the checks that need the limit in force");
        return;
    }
    assert_eq!(
        app.login(ADMIN, ADMIN_PASSWORD).await,
        Err(StatusCode::TOO_MANY_REQUESTS)
    );
    assert_eq!(
        app.login("someone-else", "whatever-whatever").await,
        Err(StatusCode::TOO_MANY_REQUESTS)
    );
    let response = app
        .get("/api", &Auth::Basic(ADMIN.into(), ADMIN_PASSWORD.into()))
        .await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
}

async fn cookies_are_secure_only_behind_a_trusted_https_proxy(db: TestDb) {
    let app = App::start(db, |c| {
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let response = app
        .client
        .post(app.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .header("x-forwarded-for", "203.0.113.9")
        .body(common::app::form_body(&[
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(set_cookie(response.headers()).unwrap().contains("; Secure"));

    let db = app.stop().await;
    let untrusted = App::start(db, |_| {}).await;
    let response = untrusted
        .client
        .post(untrusted.url("/login"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .body(common::app::form_body(&[
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ]))
        .send()
        .await
        .unwrap();
    assert!(!set_cookie(response.headers()).unwrap().contains("Secure"));
}

async fn sessions_expire_when_idle_and_when_old(db: TestDb) {
    use sitepulse::auth::{Accounts, AuthConfig};
    let store = db.store().await;
    let short = |idle: u64, max: u64| AuthConfig {
        session_idle: Duration::from_millis(idle),
        session_max_age: Duration::from_millis(max),
        ..AuthConfig::default()
    };
    let client = "127.0.0.1".parse().unwrap();
    let accounts = Accounts::new(store.clone(), short(3_600_000, 3_600_000));
    accounts
        .create_user("ida", "idle-password-789", Role::Viewer)
        .await
        .unwrap();
    let signed_in = accounts
        .login("ida", "idle-password-789", client)
        .await
        .unwrap();
    assert!(accounts.session(&signed_in.token).await.unwrap().is_some());

    // The same session, judged with shorter limits after a pause.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let idle = Accounts::new(store.clone(), short(1000, 3_600_000));
    assert!(
        idle.session(&signed_in.token).await.unwrap().is_none(),
        "idle too long"
    );
    let old = Accounts::new(store.clone(), short(3_600_000, 1000));
    assert!(
        old.session(&signed_in.token).await.unwrap().is_none(),
        "too old"
    );
    assert!(accounts.session(&signed_in.token).await.unwrap().is_some());

    // Housekeeping deletes what has expired.
    assert_eq!(idle.prune_sessions().await.unwrap(), 1);
    assert!(accounts.session(&signed_in.token).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_client_error() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    let post = |path: &str, content_type: &str, body: Vec<u8>| {
        app.client
            .post(app.url(path))
            .header(header::CONTENT_TYPE, content_type.to_owned())
            .body(body)
            .send()
    };
    let form = "application/x-www-form-urlencoded";

    let huge = format!("username=admin&password={}", "x".repeat(200_000));
    let response = post("/login", form, huge.into_bytes()).await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // The unread body makes the connection unusable; the client is told.
    assert_eq!(response.headers()[header::CONNECTION], "close");
    assert!(response.text().await.unwrap().contains("could not be read"));

    // A body under the limit that nobody reads (no such page) also ends the
    // connection; the next request on the same client goes through regardless.
    let unread = format!("name={}", "y".repeat(100_000));
    let response = post("/no-such-page", form, unread.into_bytes())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.headers()[header::CONNECTION], "close");

    let response = post("/login", form, b"username=admin".to_vec())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // This body was read: the connection stays open.
    assert!(response.headers().get(header::CONNECTION).is_none());
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("missing field `password`")
    );

    let response = post("/login", "text/plain", b"hello".to_vec())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Invalid UTF-8 in a field is a failed sign-in, not a crash.
    let response = post(
        "/login",
        form,
        b"username=admin&password=%ff%fe%fd".to_vec(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let response = post("/login", form, b"username=%ff&password=\xff\xfe".to_vec())
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());

    for authorization in ["Basic !!!", "Basic YWRtaW4=", "Digest abc", "Bearer "] {
        let response = app
            .client
            .get(app.url("/api"))
            .header(header::AUTHORIZATION, authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{authorization}"
        );
    }
    // A stale or forged cookie just means "not signed in".
    let response = app.get("/", &Auth::Cookie("forged".into())).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.text().await.unwrap().contains("Sign in"));

    let admin = Auth::Basic(ADMIN.into(), ADMIN_PASSWORD.into());
    let response = app
        .request(reqwest::Method::POST, "/api/website", &admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"Name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json_or_panic().await;
    assert!(body["error"].as_str().unwrap().contains("JSON"), "{body}");

    let response = app
        .request(reqwest::Method::POST, "/api/website", &admin)
        .header(header::CONTENT_TYPE, "application/json")
        .body(r#"{"Name":"x","URL":"ftp://example.com/"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json_or_panic().await;
    assert_eq!(body["field"], "url", "{body}");

    for path in [
        "/api/website/abc/state",
        "/api/website/-1/state",
        "/api/website/1/state?limit=0",
    ] {
        let response = app.get(path, &Auth::None).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    let response = app.get("/api/website/999/state", &Auth::None).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let response = app
        .request(reqwest::Method::DELETE, "/api/website/999", &admin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_carries_the_security_headers() {
    let app = App::start(TestDb::sqlite(), |_| {}).await;
    for path in ["/", "/login", "/api", "/healthz", "/no-such-page"] {
        let response = app.get(path, &Auth::None).await;
        let headers = response.headers();
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "same-origin");
    }
}

/// Parses a JSON body, failing the test with the body when it is not JSON.
trait JsonOrPanic {
    async fn json_or_panic(self) -> serde_json::Value;
}

impl JsonOrPanic for reqwest::Response {
    async fn json_or_panic(self) -> serde_json::Value {
        let text = self.text().await.unwrap();
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
    }
}

async fn the_last_admin_stays(db: TestDb) {
    use sitepulse::auth::{AccountError, Accounts, AuthConfig};
    let accounts = Accounts::new(db.store().await, AuthConfig::default());
    let (root, _) = accounts
        .ensure_first_admin("root", Some("root-password-123"))
        .await
        .unwrap()
        .expect("created on an empty database");
    assert!(
        accounts
            .ensure_first_admin("other", None)
            .await
            .unwrap()
            .is_none(),
        "only when no user exists"
    );
    let vera = accounts
        .create_user("Vera", "viewer-password-1", Role::Viewer)
        .await
        .unwrap();
    assert!(matches!(
        accounts
            .create_user("VERA", "viewer-password-2", Role::Viewer)
            .await,
        Err(AccountError::Taken(_))
    ));
    assert!(matches!(
        accounts
            .create_user(&"x".repeat(65), "viewer-password-2", Role::Viewer)
            .await,
        Err(AccountError::Invalid(_))
    ));
    assert!(matches!(
        accounts.set_role(root.id, Role::Viewer).await,
        Err(AccountError::LastAdmin)
    ));
    assert!(matches!(
        accounts.delete_user(root.id).await,
        Err(AccountError::LastAdmin)
    ));

    let vera = accounts.set_role(vera.id, Role::Admin).await.unwrap();
    assert_eq!(vera.role, Role::Admin);
    assert_eq!(
        accounts.set_role(root.id, Role::Viewer).await.unwrap().role,
        Role::Viewer
    );
    // Deleting a user ends their sessions and tokens with them.
    let client = "127.0.0.1".parse().unwrap();
    let signed_in = accounts
        .login("root", "root-password-123", client)
        .await
        .unwrap();
    let (_, token) = accounts.create_api_token(root.id, "old").await.unwrap();
    let deleted = accounts.delete_user(root.id).await.unwrap();
    assert_eq!(deleted.username, "root");
    assert!(accounts.session(&signed_in.token).await.unwrap().is_none());
    assert!(accounts.api_token(&token).await.unwrap().is_none());
    let names: Vec<String> = accounts
        .users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["Vera"]);
    assert!(matches!(
        accounts.delete_user(root.id).await,
        Err(AccountError::UnknownUser)
    ));
}
