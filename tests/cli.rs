//! The `sitepulse` binary as an operator runs it.

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::TestDb;
use common::pg::free_port;
use common::targets::Target;
use sitepulse::domain::{CheckDefaults, NewWebsite};

fn sitepulse() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sitepulse"));
    // Nothing from the surrounding environment leaks into these runs.
    for var in ["DATABASE_URL", "SITEPULSE_LISTEN", "RUST_LOG"] {
        c.env_remove(var);
    }
    c
}

/// Kills the service if a test fails before stopping it, so no process outlives the test.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `sitepulse serve` in `dir` on `port` with its stderr captured.
fn start_service(dir: &std::path::Path, port: u16, extra: &[&str]) -> KillOnDrop {
    KillOnDrop(
        sitepulse()
            .current_dir(dir)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(extra)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    )
}

/// Runs a command to completion and fails the test, with its stderr, if it failed.
fn run_ok(command: &mut Command) -> std::process::Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn wait_for_exit(child: &mut Child, secs: u64) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("sitepulse did not exit within {secs}s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_healthy(port: u16) {
    common::wait_healthy(&format!("http://127.0.0.1:{port}")).await;
}

#[test]
fn an_unreachable_database_is_one_clear_line_without_the_password() {
    let port = free_port();
    let out = sitepulse()
        .args(["--listen", "127.0.0.1:0", "--database-url"])
        .arg(format!("postgres://app:hunter2@127.0.0.1:{port}/sitepulse"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error")).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(&format!(
            "PostgreSQL database postgres://app:***@127.0.0.1:{port}/sitepulse"
        )),
        "{stderr}"
    );
}

#[test]
fn an_unusable_sqlite_path_is_a_clear_error() {
    let out = sitepulse()
        .args([
            "migrate",
            "--database-url",
            "/nonexistent-dir/sub/sitepulse.db",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot open the SQLite database /nonexistent-dir/sub/sitepulse.db"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_configuration_is_rejected_before_start() {
    let out = sitepulse()
        .args(["--check-interval", "0s", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--check-interval must be at least 1s"));
}

#[tokio::test]
async fn migrate_prepares_both_databases() {
    for db in [TestDb::sqlite(), TestDb::postgres().await] {
        let out = run_ok(sitepulse().args(["migrate", "--database-url", &db.url_string()]));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("migrations applied"), "{stdout}");
        // Migrated already: the store opens and works.
        assert!(db.store().await.websites().await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_health_and_stops_cleanly_on_sigterm_after_writing_checks_in_flight() {
    let target = Target::start().await;
    // A website whose checks take 1.5 s, registered before the service starts, in the
    // file the service opens by default: sitepulse.db in its working directory.
    let db = TestDb::sqlite();
    let db_path = std::path::PathBuf::from(db.url_string());
    let dir = db_path.parent().unwrap();
    let store = db.store().await;
    let spec = NewWebsite {
        name: "slow",
        url: &target.url("/slow/1500"),
        interval: Some(Duration::from_secs(2)),
        timeout: Some(Duration::from_millis(1900)),
    }
    .parse(CheckDefaults::default())
    .unwrap();
    let site = store.create_website(&spec).await.unwrap();

    let port = free_port();
    let mut service = start_service(dir, port, &[]);
    let child = &mut service.0;
    wait_healthy(port).await;
    let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let hc = sitepulse()
        .args(["healthcheck", "--listen", &format!("0.0.0.0:{port}")])
        .status()
        .unwrap();
    assert!(
        hc.success(),
        "healthcheck passes against the running service"
    );

    // Stop while a check is in flight: it finishes and is stored before exit.
    common::eventually(10, "a check to start", || async {
        (target.hits() >= 1).then_some(())
    })
    .await;
    terminate(child);
    let status = wait_for_exit(child, 15);
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert!(
        status.success(),
        "exit code 0 after SIGTERM: {status:?}\n{stderr}"
    );
    assert!(stderr.contains("stopped"), "{stderr}");
    let checks = store.recent_checks(site.id, None, 10).await.unwrap();
    assert_eq!(
        checks.len() as u64,
        target.hits(),
        "every check started was stored: {stderr}"
    );
    assert!(checks[0].up);
    assert!(checks[0].response_time_ms >= 1500);

    let hc = sitepulse()
        .args(["healthcheck", "--listen", &format!("127.0.0.1:{port}")])
        .output()
        .unwrap();
    assert!(
        !hc.status.success(),
        "healthcheck fails once the service is gone"
    );
}

#[test]
fn the_default_database_is_a_sqlite_file_in_the_working_directory() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(sitepulse().current_dir(dir.path()).arg("migrate"));
    assert!(dir.path().join("sitepulse.db").is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_for_clusters() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut service = start_service(dir.path(), port, &["--log-format", "json"]);
    let child = &mut service.0;
    wait_healthy(port).await;
    terminate(child);
    assert!(wait_for_exit(child, 15).success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines
            .iter()
            .any(|l| l["message"] == "Site Pulse 360 serving"),
        "{stderr}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l["level"].is_string() && l["timestamp"].is_string())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_stderr_does_not_stop_the_service() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut service = start_service(dir.path(), port, &[]);
    // The log reader goes away: every later log line fails to write.
    drop(service.0.stderr.take());
    wait_healthy(port).await;
    assert!(service.0.try_wait().unwrap().is_none(), "still running");
    terminate(&service.0);
    assert!(wait_for_exit(&mut service.0, 15).success());
}
