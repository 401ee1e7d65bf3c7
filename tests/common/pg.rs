//! A temporary PostgreSQL cluster for the tests of one test binary.
//!
//! The cluster is started from the system's `initdb` and `pg_ctl` on a free port,
//! in a temporary directory, as the `postgres` user when running as root (PostgreSQL
//! refuses to run as root). A small shell guard holds the server: when the test
//! process exits, the guard's stdin closes and it stops the server and removes the
//! directory, so nothing outlives the tests. `SITEPULSE_TEST_DATABASE_URL` (a
//! server URL whose user may create databases) replaces the temporary cluster.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use sqlx::Connection;

pub struct Cluster {
    /// Server URL without a database name.
    pub base_url: String,
    pub port: u16,
    pub data_dir: Option<PathBuf>,
    pg_ctl: Option<PathBuf>,
    options: String,
    guard: Mutex<Option<Child>>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// The shared cluster of this test binary, started on first use.
pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| match std::env::var("SITEPULSE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Cluster {
            base_url: url.trim_end_matches('/').to_owned(),
            port: 0,
            data_dir: None,
            pg_ctl: None,
            options: String::new(),
            guard: Mutex::new(None),
        },
        _ => Cluster::start(),
    })
}

/// Creates a new empty database on the shared cluster and returns its URL.
pub async fn fresh_database() -> String {
    let cluster = cluster();
    let name = format!("sitepulse_test_{}_{}", std::process::id(), super::unique());
    let admin_url = format!("{}/postgres", cluster.base_url);
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {admin_url}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    format!("{}/{name}", cluster.base_url)
}

pub fn find_binary(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        dirs.extend(versions.into_iter().rev());
    }
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

pub fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// `cmd` run as the `postgres` user when we are root, as ourselves otherwise.
fn as_db_user(program: &str) -> Command {
    if running_as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", program]);
        c
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

impl Cluster {
    fn start() -> Self {
        let initdb = match (find_binary("initdb"), find_binary("pg_ctl")) {
            (Some(initdb), Some(_)) => initdb,
            _ => panic!(
                "PostgreSQL server binaries (initdb, pg_ctl) were not found: install them \
                 (apt-get install postgresql) or set SITEPULSE_TEST_DATABASE_URL to a server \
                 whose user may create databases"
            ),
        };
        let out = as_db_user("mktemp")
            .args(["-d", "/tmp/sitepulse-pg-XXXXXX"])
            .output()
            .expect("mktemp as the database user (is there a `postgres` user?)");
        assert!(out.status.success(), "mktemp failed: {out:?}");
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        let data = dir.join("data");
        let out = as_db_user(initdb.to_str().unwrap())
            .args([
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ])
            .args(["-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let pg_ctl = find_binary("pg_ctl").expect("pg_ctl next to initdb");
        let options = format!(
            "-p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=200",
            dir = dir.display()
        );
        // The guard starts the server, says so, and stops it and removes its directory
        // when its stdin closes, i.e. when this process is gone.
        let script = format!(
            "'{pg_ctl}' -D '{data}' -l '{dir}/log' -o '{options}' -w -t 60 start >/dev/null 2>&1 \
             && echo started; read _; '{pg_ctl}' -D '{data}' -m immediate stop >/dev/null 2>&1; \
             rm -rf '{dir}'",
            pg_ctl = pg_ctl.display(),
            data = data.display(),
            dir = dir.display(),
        );
        let mut guard = as_db_user("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start postgres");
        let mut line = String::new();
        let stdout = guard.stdout.take().expect("guard stdout");
        let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line);
        if line.trim() != "started" {
            let log = std::fs::read_to_string(dir.join("log")).unwrap_or_default();
            panic!("the test PostgreSQL did not start:\n{log}");
        }
        let base_url = format!("postgres://postgres@127.0.0.1:{port}");
        Cluster {
            base_url,
            port,
            data_dir: Some(data),
            pg_ctl: Some(pg_ctl),
            options,
            guard: Mutex::new(Some(guard)),
        }
    }

    /// Stops the server, cutting every client connection.
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "stop"]);
    }

    /// Starts the server again on the same port with the same data.
    pub fn start_again(&self) {
        let log = format!(
            "{}/log",
            self.data_dir.as_ref().unwrap().parent().unwrap().display()
        );
        self.pg_ctl(&["-l", &log, "-o", &self.options, "-w", "-t", "60", "start"]);
    }

    fn pg_ctl(&self, args: &[&str]) {
        let (Some(pg_ctl), Some(data)) = (&self.pg_ctl, &self.data_dir) else {
            panic!("only a temporary cluster can be stopped and started");
        };
        let status = as_db_user(pg_ctl.to_str().unwrap())
            .args(["-D", data.to_str().unwrap()])
            .args(args)
            .stdout(Stdio::null())
            .status()
            .expect("run pg_ctl");
        assert!(status.success(), "pg_ctl {args:?} failed");
    }
}
