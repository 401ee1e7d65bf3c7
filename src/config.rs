//! The command line and its configuration. Every flag can also be set through the
//! environment variable named next to it, which is how containers configure it.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroUsize};
use std::time::Duration;

use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand, ValueEnum};
use ipnet::IpNet;

use crate::auth::{AuthConfig, PasswordHasher, TrustedProxies, parse_network};

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
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Manage users (password from SITEPULSE_PASSWORD or the first line of stdin).
    User {
        #[command(subcommand)]
        action: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (a viewer unless --admin).
    Add {
        name: String,
        /// Give the user the admin role.
        #[arg(long)]
        admin: bool,
    },
    /// Set a new password for a user and end their sessions.
    Passwd { name: String },
    /// List users and their roles.
    List,
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

    /// Reverse proxies (addresses or networks, comma-separated) whose
    /// X-Forwarded-For and X-Forwarded-Proto headers are believed.
    #[arg(long, env = "SITEPULSE_TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_network, global = true)]
    pub trusted_proxies: Vec<IpNet>,

    /// Shortest password accepted for new passwords (at least 8).
    #[arg(
        long,
        env = "SITEPULSE_MIN_PASSWORD_LENGTH",
        default_value_t = 12,
        global = true
    )]
    pub min_password_length: usize,

    /// A session ends after this long without a request.
    #[arg(long, env = "SITEPULSE_SESSION_IDLE_TIMEOUT", default_value = "7days", value_parser = parse_duration, global = true)]
    pub session_idle_timeout: Duration,

    /// A session ends this long after sign-in, however active.
    #[arg(long, env = "SITEPULSE_SESSION_MAX_AGE", default_value = "30days", value_parser = parse_duration, global = true)]
    pub session_max_age: Duration,

    /// Sign-in attempts allowed per minute, per client address and per username.
    #[arg(
        long,
        env = "SITEPULSE_LOGIN_RATE_LIMIT",
        default_value = "10",
        global = true
    )]
    pub login_rate_limit: NonZeroU32,

    /// How many password hashes may be computed at once (default: cores - 1).
    #[arg(long, env = "SITEPULSE_PASSWORD_HASH_CONCURRENCY", global = true)]
    pub password_hash_concurrency: Option<NonZeroUsize>,

    /// How often idle GraphQL subscription connections are pinged.
    #[arg(long, env = "SITEPULSE_WS_KEEPALIVE", default_value = "15s", value_parser = parse_duration, global = true)]
    pub ws_keepalive: Duration,

    /// How long shutdown waits for checks in flight before abandoning them.
    #[arg(long, env = "SITEPULSE_SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration, global = true)]
    pub shutdown_grace: Duration,

    /// This replica's name in leader election, logs and page footers (in Kubernetes
    /// the pod name from the downward API); the host name when not given.
    #[arg(long, env = "POD_NAME", global = true)]
    pub pod_name: Option<String>,

    /// Namespace of the Lease used by `--leader-election kube`.
    #[arg(
        long,
        env = "POD_NAMESPACE",
        default_value = "site-pulse-360",
        global = true
    )]
    pub pod_namespace: String,

    /// How long a leader's Lease (kube) holds without renewal.
    #[arg(long, env = "SITEPULSE_LEASE_DURATION", default_value = "45s", value_parser = parse_duration, global = true)]
    pub lease_duration: Duration,

    /// A leader that has not renewed for this long stops checking (kube); for
    /// postgres, how long the lock connection may take to answer.
    #[arg(long, env = "SITEPULSE_LEASE_RENEW_DEADLINE", default_value = "40s", value_parser = parse_duration, global = true)]
    pub lease_renew_deadline: Duration,

    /// How often leadership is tried and renewed.
    #[arg(long, env = "SITEPULSE_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = parse_duration, global = true)]
    pub lease_retry_period: Duration,
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

    pub fn auth(&self) -> AuthConfig {
        AuthConfig {
            public_read: self.public_read,
            min_password_chars: self.min_password_length,
            session_idle: self.session_idle_timeout,
            session_max_age: self.session_max_age,
            login_attempts_per_minute: self.login_rate_limit,
            hash_concurrency: self
                .password_hash_concurrency
                .map_or_else(PasswordHasher::default_concurrency, NonZeroUsize::get),
        }
    }

    pub fn trusted_proxies(&self) -> TrustedProxies {
        TrustedProxies::new(self.trusted_proxies.clone())
    }

    /// This replica's name: `--pod-name`, else the host name.
    pub fn replica_name(&self) -> String {
        if let Some(name) = self.pod_name.as_deref().map(str::trim)
            && !name.is_empty()
        {
            return name.to_owned();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "sitepulse".to_owned())
    }

    /// Rules between fields that clap cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease_retry_period.is_zero()
            || self.lease_retry_period >= self.lease_renew_deadline
            || self.lease_renew_deadline >= self.lease_duration
        {
            return Err(
                "lease timings must satisfy 0 < --lease-retry-period < --lease-renew-deadline < --lease-duration"
                    .into(),
            );
        }
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
        if self.min_password_length < 8 {
            return Err("--min-password-length must be at least 8".into());
        }
        if self.session_idle_timeout < Duration::from_secs(60)
            || self.session_max_age < self.session_idle_timeout
        {
            return Err(
                "--session-idle-timeout must be at least 1m and at most --session-max-age".into(),
            );
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
