//! The command line and its configuration. Every flag can also be set through the
//! environment variable named next to it, which is how containers configure it.

use std::net::SocketAddr;
use std::time::Duration;

use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::domain::{CheckDefaults, MIN_INTERVAL, MIN_TIMEOUT};
use crate::store::DatabaseUrl;

#[derive(Debug, Parser)]
#[command(
    name = "sitepulse",
    version,
    about = "Site Pulse 360: self-hosted website uptime monitor"
)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: pages, API and checker (the default).
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Exit 0 when the service on --listen answers /healthz (for container health checks).
    Healthcheck {
        /// Ask this URL instead of /healthz on the --listen port.
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LeaderElection {
    /// `kube` inside Kubernetes, `postgres` on PostgreSQL, `none` on SQLite.
    Auto,
    Kube,
    Postgres,
    /// This process always runs the checker.
    None,
}

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to serve HTTP on.
    #[arg(
        long,
        env = "SITEPULSE_LISTEN",
        default_value = "0.0.0.0:3000",
        global = true
    )]
    pub listen: SocketAddr,

    /// `postgres://…` for PostgreSQL; a file path or `sqlite:` URL for SQLite.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "sitepulse.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,

    /// Default check interval of a new website (at least 1s).
    #[arg(long, env = "SITEPULSE_CHECK_INTERVAL", default_value = "60s", value_parser = parse_duration, global = true)]
    pub check_interval: Duration,

    /// Default check timeout of a new website (at least 100ms).
    #[arg(long, env = "SITEPULSE_CHECK_TIMEOUT", default_value = "10s", value_parser = parse_duration, global = true)]
    pub check_timeout: Duration,

    /// How many checks may run at the same time.
    #[arg(
        long,
        env = "SITEPULSE_CHECK_CONCURRENCY",
        default_value_t = 1024,
        global = true
    )]
    pub check_concurrency: usize,

    /// How long raw checks are kept; daily history outlives them.
    #[arg(long, env = "SITEPULSE_RETENTION", default_value = "31days", value_parser = parse_duration, global = true)]
    pub retention: Duration,

    /// How long hourly and daily aggregates are kept (at least 400 days).
    #[arg(long, env = "SITEPULSE_AGGREGATE_RETENTION", default_value = "400days", value_parser = parse_duration, global = true)]
    pub aggregate_retention: Duration,

    /// Who runs the checker when several replicas share a database.
    #[arg(
        long,
        env = "SITEPULSE_LEADER_ELECTION",
        value_enum,
        default_value = "auto",
        global = true
    )]
    pub leader_election: LeaderElection,

    /// Let anonymous visitors read pages and queries.
    #[arg(long, env = "SITEPULSE_PUBLIC_READ", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub public_read: bool,

    /// Time zone whose calendar days the daily history uses (IANA name).
    #[arg(long, env = "SITEPULSE_TIMEZONE", default_value = "UTC", value_parser = parse_timezone, global = true)]
    pub timezone: Tz,

    /// Admin created at first start when no user exists.
    #[arg(
        long,
        env = "SITEPULSE_ADMIN_USER",
        default_value = "admin",
        global = true
    )]
    pub admin_user: String,

    /// Password of that admin; a random one is generated and printed once when unset.
    #[arg(
        long,
        env = "SITEPULSE_ADMIN_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub admin_password: Option<String>,

    /// Log format.
    #[arg(
        long,
        env = "SITEPULSE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// How long shutdown waits for checks in flight before abandoning them.
    #[arg(long, env = "SITEPULSE_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration, global = true)]
    pub shutdown_grace: Duration,
}

impl Config {
    pub fn database(&self) -> DatabaseUrl {
        DatabaseUrl::parse(&self.database_url)
    }

    pub fn check_defaults(&self) -> CheckDefaults {
        CheckDefaults {
            interval: self.check_interval,
            timeout: self.check_timeout,
        }
    }

    /// Rules between fields that clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.check_interval < MIN_INTERVAL {
            return Err("--check-interval must be at least 1s".into());
        }
        if self.check_timeout < MIN_TIMEOUT {
            return Err("--check-timeout must be at least 100ms".into());
        }
        if self.check_concurrency == 0 {
            return Err("--check-concurrency must be at least 1".into());
        }
        if self.aggregate_retention < Duration::from_secs(400 * 86_400) {
            return Err("--aggregate-retention must be at least 400 days".into());
        }
        if self.retention < Duration::from_secs(86_400) {
            return Err("--retention must be at least 1 day".into());
        }
        Ok(())
    }

    /// A configuration with every default, for tests and embedding.
    pub fn defaults() -> Self {
        Cli::parse_from(["sitepulse"]).config
    }
}

fn parse_duration(raw: &str) -> Result<Duration, String> {
    humantime::parse_duration(raw.trim()).map_err(|e| format!("{e} (examples: 60s, 1m30s, 500ms)"))
}

fn parse_timezone(raw: &str) -> Result<Tz, String> {
    raw.trim()
        .parse::<Tz>()
        .map_err(|_| format!("unknown time zone {raw:?} (use an IANA name such as Europe/Zurich)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_the_contract() {
        let c = Config::defaults();
        assert_eq!(c.listen.to_string(), "0.0.0.0:3000");
        assert_eq!(c.database_url, "sitepulse.db");
        assert_eq!(c.check_interval, Duration::from_secs(60));
        assert_eq!(c.check_timeout, Duration::from_secs(10));
        assert_eq!(c.timezone, Tz::UTC);
        assert!(c.public_read);
        assert_eq!(c.leader_election, LeaderElection::Auto);
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_values_are_explained() {
        let err = Cli::try_parse_from(["sitepulse", "--check-interval", "soon"]).unwrap_err();
        assert!(err.to_string().contains("examples"), "{err}");
        let err = Cli::try_parse_from(["sitepulse", "--timezone", "Mars/Base"]).unwrap_err();
        assert!(err.to_string().contains("IANA"), "{err}");
        let c = Cli::try_parse_from(["sitepulse", "--check-interval", "500ms"]).unwrap();
        assert!(c.config.validate().unwrap_err().contains("at least 1s"));
        let c = Cli::try_parse_from(["sitepulse", "--check-interval", "1s", "migrate"]).unwrap();
        assert!(matches!(c.command, Some(Command::Migrate)));
    }
}
