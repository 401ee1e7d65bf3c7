//! Users from the command line and at first start, and secrets kept out of logs.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::TestDb;
use common::app::{form_body, session_cookie};
use common::pg::free_port;
use reqwest::StatusCode;

fn sitepulse(db: &TestDb) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sitepulse"));
    for var in [
        "SITEPULSE_LISTEN",
        "RUST_LOG",
        "SITEPULSE_PASSWORD",
        "SITEPULSE_ADMIN_PASSWORD",
        "SITEPULSE_ADMIN_USER",
    ] {
        c.env_remove(var);
    }
    c.env("DATABASE_URL", db.url_string());
    c
}

/// Runs `sitepulse user …`; returns success, stdout and stderr.
fn user(db: &TestDb, args: &[&str], password: Password) -> (bool, String, String) {
    let mut command = sitepulse(db);
    command
        .arg("user")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Password::Env(p) = password {
        command.env("SITEPULSE_PASSWORD", p);
    }
    let mut child = command.spawn().unwrap();
    let mut stdin = child.stdin.take().unwrap();
    if let Password::Stdin(p) = password {
        writeln!(stdin, "{p}").unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[derive(Clone, Copy)]
enum Password<'a> {
    Env(&'a str),
    Stdin(&'a str),
    None,
}

/// The service with its stderr collected line by line.
struct Service {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
}

impl Service {
    fn start(db: &TestDb, envs: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut child = sitepulse(db)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .envs(envs.iter().copied())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let sink = log.clone();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Self { child, port, log }
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    async fn ready(&self) {
        common::wait_healthy(&self.url("")).await;
    }

    async fn login(&self, username: &str, password: &str) -> Result<String, StatusCode> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = client
            .post(self.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[("username", username), ("password", password)]))
            .send()
            .await
            .unwrap();
        match response.status() {
            StatusCode::SEE_OTHER => Ok(session_cookie(response.headers()).unwrap()),
            other => Err(other),
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_start_creates_an_admin_with_a_generated_password_shown_once() {
    let db = TestDb::sqlite();
    let service = Service::start(&db, &[("SITEPULSE_ADMIN_USER", "root")]);
    service.ready().await;
    let log = service.log();
    let line = log
        .lines()
        .find(|l| l.contains("generated password"))
        .unwrap_or_else(|| panic!("a clear line with the password: {log}"));
    let password = line
        .split("generated password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap()
        .to_owned();
    assert!(password.len() >= 16, "{password}");
    assert!(service.login("root", &password).await.is_ok());
    drop(service);

    // The second start finds the admin and prints nothing of the kind.
    let service = Service::start(&db, &[("SITEPULSE_ADMIN_USER", "root")]);
    service.ready().await;
    assert!(
        !service.log().contains("generated password"),
        "{}",
        service.log()
    );
    assert!(service.login("root", &password).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_password_that_is_too_short_stops_the_start_with_a_reason() {
    let db = TestDb::sqlite();
    let out = sitepulse(&db)
        .args(["--listen", "127.0.0.1:0"])
        .env("SITEPULSE_ADMIN_PASSWORD", "short")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    assert!(
        !stderr.contains("short\n") && !stderr.contains("\"short\""),
        "{stderr}"
    );
}

async fn users_are_managed_from_the_command_line(db: TestDb) {
    let (ok, stdout, stderr) = user(
        &db,
        &["add", "Bob", "--admin"],
        Password::Env("bob-password-123"),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("created admin \"Bob\""), "{stdout}");

    let (ok, _, stderr) = user(&db, &["add", "bob"], Password::Env("another-password-1"));
    assert!(!ok);
    assert!(stderr.contains("already exists"), "{stderr}");

    let (ok, _, stderr) = user(&db, &["add", "carol"], Password::Stdin("tiny"));
    assert!(!ok);
    assert!(stderr.contains("at least 12 characters"), "{stderr}");
    let (ok, _, stderr) = user(&db, &["add", "carol"], Password::None);
    assert!(!ok);
    assert!(stderr.contains("SITEPULSE_PASSWORD"), "{stderr}");
    let (ok, _, stderr) = user(&db, &["add", "carol"], Password::Stdin("carol-password-1"));
    assert!(ok, "{stderr}");

    let (ok, stdout, _) = user(&db, &["list"], Password::None);
    assert!(ok);
    assert!(stdout.contains("admin    Bob"), "{stdout}");
    assert!(stdout.contains("viewer   carol"), "{stdout}");

    // A reset through the command line ends the user's sessions.
    let service = Service::start(
        &db,
        &[("SITEPULSE_ADMIN_PASSWORD", "unused-admin-password")],
    );
    service.ready().await;
    let session = service.login("bob", "bob-password-123").await.unwrap();
    let (ok, stdout, stderr) = user(
        &db,
        &["passwd", "BOB"],
        Password::Stdin("bob-new-password-456"),
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ended their sessions"), "{stdout}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(service.url("/account"))
        .header("cookie", format!("sitepulse_session={session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::SEE_OTHER,
        "the old session ended"
    );
    assert_eq!(
        service.login("bob", "bob-password-123").await,
        Err(StatusCode::UNAUTHORIZED)
    );
    assert!(service.login("bob", "bob-new-password-456").await.is_ok());
    assert!(service.login("carol", "carol-password-1").await.is_ok());

    let (ok, _, stderr) = user(
        &db,
        &["passwd", "nobody"],
        Password::Env("whatever-password"),
    );
    assert!(!ok);
    assert!(stderr.contains("no user named"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_from_the_command_line_on_sqlite() {
    users_are_managed_from_the_command_line(TestDb::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_from_the_command_line_on_postgres() {
    users_are_managed_from_the_command_line(TestDb::postgres().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_hash_or_token_reaches_the_log() {
    let db = TestDb::sqlite();
    let admin_password = "admin-secret-password-1";
    let service = Service::start(
        &db,
        &[
            ("SITEPULSE_ADMIN_PASSWORD", admin_password),
            ("RUST_LOG", "trace"),
        ],
    );
    service.ready().await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(
        service.login("admin", "wrong-password-guess").await,
        Err(StatusCode::UNAUTHORIZED)
    );
    let session = service.login("admin", admin_password).await.unwrap();
    let page = client
        .post(service.url("/account/tokens"))
        .header("cookie", format!("sitepulse_session={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("name=ci")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = common::app::extract_token(&page).unwrap();
    for auth in [format!("Bearer {token}"), format!("Bearer {session}")] {
        let response = client
            .get(service.url("/api"))
            .header("authorization", auth)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
    let response = client
        .get(service.url("/api"))
        .basic_auth("admin", Some(admin_password))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let response = client
        .get(service.url("/api"))
        .bearer_auth("sp360_this-is-not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let log = service.log();
    assert!(
        log.contains("signed in"),
        "the log does record sign-ins: {log}"
    );
    for secret in [
        admin_password,
        "wrong-password-guess",
        &token,
        &session,
        "sp360_this-is-not-a-real-token",
        "$argon2id",
    ] {
        assert!(!log.contains(secret), "{secret} appears in the log");
    }
}
