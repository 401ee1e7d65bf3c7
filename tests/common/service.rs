//! The `sitepulse` binary as a child process on a free port, for benchmarks.

use std::process::{Child, Command, Stdio};

use super::TestDb;

/// Starts `sitepulse serve` on `db` and waits until it answers; the child and
/// its base URL. Its log goes to stderr at `SITEPULSE_BENCH_LOG` (default `warn`).
pub async fn spawn(db: &TestDb, args: &[&str], envs: &[(&str, &str)]) -> (Child, String) {
    let port = super::pg::free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_sitepulse"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--database-url", &db.url_string()])
        .args(args)
        .envs(envs.iter().copied())
        .env(
            "RUST_LOG",
            std::env::var("SITEPULSE_BENCH_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start sitepulse");
    let base = format!("http://127.0.0.1:{port}");
    super::wait_healthy(&base).await;
    (child, base)
}

/// Stops the service with SIGTERM and waits for it.
pub fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
