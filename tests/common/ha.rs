//! A highly available PostgreSQL on 127.0.0.1, as run in production without
//! Kubernetes: a three-member etcd, three PostgreSQL instances managed by Patroni
//! (synchronous replication, so a failover loses no committed write) and HAProxy
//! sending connections to whichever instance Patroni's REST API calls primary.
//!
//! Everything runs from the Debian packages (`etcd-server`, `patroni`, `haproxy`,
//! `postgresql`) in one temporary directory, as the `postgres` user when we are
//! root. Each process is its own process group, so `kill -9` of a member takes its
//! PostgreSQL with it. Dropping the cluster kills every process and removes the
//! directory.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::pg::{find_binary, free_port, running_as_root};

pub const PASSWORD: &str = "ha-test-password";

pub struct Member {
    pub name: String,
    pub pg_port: u16,
    pub api_port: u16,
    config: PathBuf,
    child: Option<Child>,
}

pub struct HaCluster {
    dir: PathBuf,
    etcd: Vec<Child>,
    pub members: Vec<Member>,
    haproxy: Option<Child>,
    haproxy_config: PathBuf,
    pub haproxy_port: u16,
    user: Option<(u32, u32)>,
}

/// uid and gid of the `postgres` user.
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("read /etc/passwd");
    let line = passwd
        .lines()
        .find(|l| l.starts_with("postgres:"))
        .expect("a `postgres` user (apt-get install postgresql creates it)");
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().unwrap(), fields[3].parse().unwrap())
}

/// HAProxy lives in /usr/sbin, which a root PATH has but others may not.
fn haproxy_binary() -> PathBuf {
    find_binary("haproxy")
        .or_else(|| Some(PathBuf::from("/usr/sbin/haproxy")).filter(|p| p.is_file()))
        .unwrap_or_else(|| panic!("`haproxy` was not found: apt-get install haproxy"))
}

fn require(program: &str, package: &str) -> PathBuf {
    find_binary(program)
        .unwrap_or_else(|| panic!("`{program}` was not found: apt-get install {package}"))
}

impl HaCluster {
    /// Starts everything and waits until a primary with two streaming replicas
    /// answers through HAProxy, with a database `sitepulse` created.
    pub async fn start() -> Self {
        let etcd_bin = require("etcd", "etcd-server");
        let patroni_bin = require("patroni", "patroni");
        haproxy_binary();
        let pg_bin = require("pg_controldata", "postgresql")
            .parent()
            .unwrap()
            .to_path_buf();
        let user = running_as_root().then(postgres_user);
        let dir = std::env::temp_dir().join(format!("sitepulse-ha-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).unwrap();
        }
        let mut cluster = Self {
            dir: dir.clone(),
            etcd: Vec::new(),
            members: Vec::new(),
            haproxy: None,
            haproxy_config: dir.join("haproxy.cfg"),
            haproxy_port: free_port(),
            user,
        };

        // etcd: three members; Patroni 3.0 from Debian speaks the v2 API.
        let ports: Vec<(u16, u16)> = (0..3).map(|_| (free_port(), free_port())).collect();
        let initial: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, peer))| format!("e{i}=http://127.0.0.1:{peer}"))
            .collect();
        for (i, (client, peer)) in ports.iter().enumerate() {
            let log = cluster.log(&format!("etcd{i}.log"));
            let mut command = cluster.command(&etcd_bin);
            command
                .args(["--name", &format!("e{i}")])
                .args(["--data-dir", dir.join(format!("etcd{i}")).to_str().unwrap()])
                .args([
                    "--listen-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args([
                    "--advertise-client-urls",
                    &format!("http://127.0.0.1:{client}"),
                ])
                .args(["--listen-peer-urls", &format!("http://127.0.0.1:{peer}")])
                .args([
                    "--initial-advertise-peer-urls",
                    &format!("http://127.0.0.1:{peer}"),
                ])
                .args(["--initial-cluster", &initial.join(",")])
                .args(["--initial-cluster-state", "new"])
                .args(["--enable-v2=true", "--unsafe-no-fsync"])
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            cluster.etcd.push(command.spawn().expect("start etcd"));
        }
        let etcd_hosts: Vec<String> = ports
            .iter()
            .map(|(client, _)| format!("127.0.0.1:{client}"))
            .collect();
        wait_for(Duration::from_secs(60), "etcd to be healthy", || async {
            let health = reqwest::get(format!("http://{}/health", etcd_hosts[0]))
                .await
                .ok()?
                .text()
                .await
                .ok()?;
            health.contains("true").then_some(())
        })
        .await;

        // Patroni: the first member bootstraps, the others clone it.
        for i in 0..3 {
            let member = Member {
                name: format!("pg{i}"),
                pg_port: free_port(),
                api_port: free_port(),
                config: dir.join(format!("patroni{i}.yml")),
                child: None,
            };
            let yaml = patroni_config(&member, &dir, &pg_bin, &etcd_hosts);
            std::fs::write(&member.config, yaml).unwrap();
            cluster.members.push(member);
            cluster.start_member(i, &patroni_bin);
            if i == 0 {
                wait_for(
                    Duration::from_secs(90),
                    "the first PostgreSQL to bootstrap",
                    || {
                        let port = cluster.members[0].api_port;
                        async move { role_is(port, "primary").await.then_some(()) }
                    },
                )
                .await;
            }
        }
        let api_ports: Vec<u16> = cluster.members.iter().map(|m| m.api_port).collect();
        wait_for(Duration::from_secs(120), "two streaming replicas", || {
            let api_ports = api_ports.clone();
            async move {
                let mut replicas = 0;
                for port in api_ports {
                    if role_is(port, "replica").await {
                        replicas += 1;
                    }
                }
                (replicas == 2).then_some(())
            }
        })
        .await;

        std::fs::write(&cluster.haproxy_config, cluster.haproxy_yaml()).unwrap();
        cluster.start_haproxy();
        // The database is made on the primary itself; then HAProxy, which counts
        // every server up until its checks say otherwise, must send twenty new
        // connections in a row to it.
        let primary = cluster.primary().await.expect("one primary");
        {
            use sqlx::Connection;
            let direct = format!(
                "postgres://postgres:{PASSWORD}@127.0.0.1:{}/postgres",
                cluster.members[primary].pg_port
            );
            let mut conn = sqlx::PgConnection::connect(&direct).await.unwrap();
            sqlx::query("CREATE DATABASE sitepulse")
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let url = cluster.database_url();
        wait_for(
            Duration::from_secs(60),
            "HAProxy to send every connection to the primary",
            || {
                let url = url.clone();
                async move {
                    use sqlx::Connection;
                    for _ in 0..20 {
                        let mut conn = sqlx::PgConnection::connect(&url).await.ok()?;
                        let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
                            .fetch_one(&mut conn)
                            .await
                            .ok()?;
                        if standby {
                            return None;
                        }
                    }
                    Some(())
                }
            },
        )
        .await;
        cluster
    }

    /// The URL the service connects with: through HAProxy.
    pub fn database_url(&self) -> String {
        format!(
            "postgres://postgres:{PASSWORD}@127.0.0.1:{}/sitepulse",
            self.haproxy_port
        )
    }

    fn log(&self, name: &str) -> std::fs::File {
        std::fs::File::create(self.dir.join(name)).unwrap()
    }

    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .process_group(0);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid).env("HOME", &self.dir);
        }
        command
    }

    fn start_member(&mut self, i: usize, patroni_bin: &Path) {
        let log = self.log(&format!("patroni{i}.log"));
        let mut command = self.command(patroni_bin);
        command
            .arg(&self.members[i].config)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.members[i].child = Some(command.spawn().expect("start patroni"));
    }

    /// Starts a member that was killed again; it rejoins as a replica.
    pub fn restart_member(&mut self, i: usize) {
        let patroni = require("patroni", "patroni");
        self.start_member(i, &patroni);
    }

    fn haproxy_yaml(&self) -> String {
        let mut config = format!(
            "global\n    maxconn 1000\n\
             defaults\n    mode tcp\n    timeout connect 1s\n    timeout client 30m\n    \
             timeout server 30m\n    timeout check 1s\n\
             listen primary\n    bind 127.0.0.1:{}\n    option httpchk OPTIONS /primary\n    \
             http-check expect status 200\n    \
             default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions\n",
            self.haproxy_port
        );
        for m in &self.members {
            config.push_str(&format!(
                "    server {} 127.0.0.1:{} maxconn 300 check port {}\n",
                m.name, m.pg_port, m.api_port
            ));
        }
        config
    }

    pub fn start_haproxy(&mut self) {
        let bin = haproxy_binary();
        let log = self.log("haproxy.log");
        let mut command = self.command(&bin);
        command
            .args(["-db", "-f"])
            .arg(&self.haproxy_config)
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        self.haproxy = Some(command.spawn().expect("start haproxy"));
    }

    /// Stops HAProxy: the database is unreachable for the service.
    pub fn stop_haproxy(&mut self) {
        if let Some(child) = self.haproxy.take() {
            kill_group(child);
        }
    }

    /// The index of the member Patroni calls primary, if exactly one is.
    pub async fn primary(&self) -> Option<usize> {
        let mut found = None;
        for (i, m) in self.members.iter().enumerate() {
            if m.child.is_some() && role_is(m.api_port, "primary").await {
                if found.is_some() {
                    return None;
                }
                found = Some(i);
            }
        }
        found
    }

    /// `kill -9` of a member: Patroni and its PostgreSQL (which Patroni starts in
    /// a session of its own), no chance to hand over.
    pub fn kill_member(&mut self, i: usize) {
        if let Some(child) = self.members[i].child.take() {
            kill_group(child);
        }
        let pid_file = self.dir.join(&self.members[i].name).join("postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.lines().next().map(str::to_owned))
        {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

fn kill_group(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .status();
    let _ = child.kill();
    let _ = child.wait();
}

impl Drop for HaCluster {
    fn drop(&mut self) {
        self.stop_haproxy();
        for i in 0..self.members.len() {
            self.kill_member(i);
        }
        for child in self.etcd.drain(..) {
            kill_group(child);
        }
        if std::env::var_os("SITEPULSE_KEEP_HA").is_none() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Patroni's REST API answers 200 on `/primary` or `/replica` for that role.
pub async fn role_is(api_port: u16, role: &str) -> bool {
    let client = reqwest::Client::new();
    client
        .get(format!("http://127.0.0.1:{api_port}/{role}"))
        .timeout(Duration::from_millis(800))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

async fn wait_for<F, Fut>(within: Duration, what: &str, mut probe: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<()>>,
{
    let started = Instant::now();
    loop {
        if probe().await.is_some() {
            return;
        }
        assert!(
            started.elapsed() < within,
            "waited {within:?} for {what} (SITEPULSE_KEEP_HA=1 keeps the logs)"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn patroni_config(member: &Member, dir: &Path, pg_bin: &Path, etcd: &[String]) -> String {
    let d = dir.display();
    format!(
        r#"scope: sitepulse
namespace: /sitepulse-test/
name: {name}
restapi:
  listen: 127.0.0.1:{api}
  connect_address: 127.0.0.1:{api}
etcd:
  hosts: {hosts}
bootstrap:
  dcs:
    ttl: 20
    loop_wait: 2
    retry_timeout: 5
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: true
      parameters:
        wal_log_hints: "on"
        max_connections: 300
        max_wal_senders: 10
        max_replication_slots: 10
        wal_keep_size: 256MB
  initdb:
    - encoding: UTF8
    - locale: C
  pg_hba:
    - local all all trust
    - host replication replicator 127.0.0.1/32 md5
    - host all all 127.0.0.1/32 md5
postgresql:
  listen: 127.0.0.1:{pg}
  connect_address: 127.0.0.1:{pg}
  data_dir: {d}/{name}
  bin_dir: {bin}
  pgpass: {d}/{name}.pgpass
  authentication:
    replication:
      username: replicator
      password: {PASSWORD}
    superuser:
      username: postgres
      password: {PASSWORD}
    rewind:
      username: postgres
      password: {PASSWORD}
  parameters:
    unix_socket_directories: '{d}'
    fsync: "off"
"#,
        name = member.name,
        api = member.api_port,
        pg = member.pg_port,
        hosts = etcd.join(","),
        bin = pg_bin.display(),
    )
}
