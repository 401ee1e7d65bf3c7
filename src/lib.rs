//! Site Pulse 360: a self-hosted website uptime monitor.
//!
//! The binary is a thin shell around [`Server`]: tests start the same server on
//! port 0 against a real database.

#![forbid(unsafe_code)]

pub mod admin;
pub mod auth;
pub mod checker;
pub mod config;
pub mod domain;
pub mod events;
pub mod graphql;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod store;
pub mod web;
pub mod websites;

use std::net::SocketAddr;
use std::sync::Once;

use anyhow::{Context, bail};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::auth::Accounts;
use crate::checker::{CheckerConfig, Probe, Retention, Scheduler, WriterConfig, WriterHandle};
use crate::config::{Config, LeaderElection, LogFormat};
use crate::events::EventBus;
use crate::http::AppState;
use crate::leader::ElectionMode;
use crate::store::{DatabaseUrl, DynStore, StoreOptions};
use crate::websites::Websites;

/// kube, sqlx and reqwest each default to a different rustls crypto provider;
/// installing one for the whole process keeps them from disagreeing.
pub fn install_crypto_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Logs to stderr, human-readable or as JSON lines; `RUST_LOG` refines the level.
pub fn init_logging(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        // Losing stderr (a log collector that went away) must not take the service
        // down: the subscriber would otherwise report the failed write with a
        // panicking `eprintln!`.
        .log_internal_errors(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

/// Opens the configured database and applies migrations, with errors that name the
/// database (password hidden) in one line.
pub async fn open_store(config: &Config) -> anyhow::Result<DynStore> {
    install_crypto_provider();
    let url = config.database();
    let options = StoreOptions {
        timezone: config.timezone,
        ..StoreOptions::default()
    };
    let store = store::connect(&url, options)
        .await
        .with_context(|| format!("cannot open the {}", url.redacted()))?;
    store
        .migrate()
        .await
        .with_context(|| format!("cannot migrate the {}", url.redacted()))?;
    Ok(store)
}

/// A running service: HTTP, checker, writer and retention.
pub struct Server {
    addr: SocketAddr,
    state: AppState,
    shutdown: CancellationToken,
    task: JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub async fn start(config: Config) -> anyhow::Result<Self> {
        config.validate().map_err(anyhow::Error::msg)?;
        let database = config.database();
        let mode = election_mode(config.leader_election, &database)?;
        let store = open_store(&config).await?;
        let accounts = Accounts::new(store.clone(), config.auth());
        create_first_admin(&accounts, &config).await?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr()?;
        let replica = config.replica_name();
        let shutdown = CancellationToken::new();

        let timings = leader::Timings {
            lease_duration: config.lease_duration,
            renew_deadline: config.lease_renew_deadline,
            retry_period: config.lease_retry_period,
        };
        let (leadership, elector) = match (mode, &database) {
            (ElectionMode::Postgres, DatabaseUrl::Postgres(url)) => {
                leader::postgres(url, &replica, timings)?
            }
            (ElectionMode::Kube, _) => {
                let client = leader::kube::client()
                    .await
                    .context("cannot reach the Kubernetes API for leader election")?;
                leader::kube::elect(
                    client,
                    &config.pod_namespace,
                    leader::kube::LEASE_NAME,
                    &replica,
                    timings,
                )
            }
            _ => leader::standalone(&replica),
        };
        let mut events = EventBus::default();
        let mut relay = None;
        if let DatabaseUrl::Postgres(url) = &database {
            let (outbox, queue) = events::relay::outbox();
            events = events.with_outbox(outbox);
            relay = Some(events::relay::spawn(
                url,
                &replica,
                events.clone(),
                queue,
                leadership.clone(),
                shutdown.clone(),
            )?);
        }
        let metrics = metrics::Metrics::shared();
        let (writer, writer_task) =
            checker::spawn_writer(store.clone(), events.clone(), WriterConfig::default());
        let writer = writer.with_metrics(metrics.clone());
        let websites = Websites::new(
            store.clone(),
            events.clone(),
            config.check_defaults(),
            config.timezone,
        );
        let probe = Probe::new()?;
        let board = web::live::Board::new(store.clone(), config.timezone, shutdown.clone());
        // Listening starts here, before anything can be published.
        tokio::spawn(board.clone().run(events.subscribe()));
        tokio::spawn(
            websites
                .clone()
                .follow(events.subscribe(), shutdown.clone()),
        );
        let schema = graphql::schema(graphql::Services {
            store: store.clone(),
            websites: websites.clone(),
            accounts: accounts.clone(),
            events: events.clone(),
            probe: probe.clone(),
            leadership: leadership.clone(),
        });
        let state = AppState {
            store: store.clone(),
            events: events.clone(),
            websites,
            accounts,
            proxies: config.trusted_proxies(),
            schema,
            ws_keepalive: config.ws_keepalive,
            graphql_cache: Default::default(),
            board,
            probe: probe.clone(),
            leadership: leadership.clone(),
            shutdown: shutdown.clone(),
            metrics,
            writer_stats: writer.stats().clone(),
        };
        let duty = Duty {
            store: store.clone(),
            probe,
            writer: writer.clone(),
            events: events.clone(),
            checker: CheckerConfig {
                concurrency: config.check_concurrency,
                shutdown_grace: config.shutdown_grace,
                ..CheckerConfig::default()
            },
            retention: Retention {
                checks: config.retention,
                aggregates: config.aggregate_retention,
                ..Retention::default()
            },
        };
        tracing::info!(
            %addr,
            database = %database.redacted(),
            %replica,
            election = %mode,
            "Site Pulse 360 serving"
        );
        let task = tokio::spawn(run(
            listener,
            state.clone(),
            duty,
            (writer, writer_task),
            (elector, relay),
            shutdown.clone(),
        ));
        Ok(Self {
            addr,
            state,
            shutdown,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Asks the server to stop: no new checks, in-flight work finished or abandoned,
    /// buffered results written.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the server has stopped.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task panicked")?
    }
}

/// Which election `--leader-election` asks for on this database.
fn election_mode(asked: LeaderElection, database: &DatabaseUrl) -> anyhow::Result<ElectionMode> {
    let postgres = matches!(database, DatabaseUrl::Postgres(_));
    Ok(match asked {
        LeaderElection::None => ElectionMode::None,
        LeaderElection::Postgres if postgres => ElectionMode::Postgres,
        LeaderElection::Postgres => {
            bail!(
                "--leader-election postgres needs a PostgreSQL database (DATABASE_URL=postgres://…)"
            )
        }
        LeaderElection::Kube => bail!(
            "--leader-election kube is not available in this version; use postgres (several replicas on PostgreSQL) or none"
        ),
        LeaderElection::Auto if postgres => {
            if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() {
                tracing::info!(
                    "in Kubernetes, electing through PostgreSQL (Lease election is not available in this version)"
                );
            }
            ElectionMode::Postgres
        }
        LeaderElection::Auto => ElectionMode::None,
    })
}

/// What only the leader runs: the scheduler and retention pruning.
struct Duty {
    store: DynStore,
    probe: Probe,
    writer: WriterHandle,
    events: EventBus,
    checker: CheckerConfig,
    retention: Retention,
}

impl Duty {
    /// Runs the checker and retention while this replica leads, until shutdown.
    async fn run(self, leadership: leader::Leadership, shutdown: CancellationToken) {
        let mut state = leadership.watch();
        loop {
            // Wait to lead.
            tokio::select! {
                () = shutdown.cancelled() => return,
                led = state.wait_for(|s| s.leading) => if led.is_err() { return },
            }
            let stop = shutdown.child_token();
            let scheduler = Scheduler::new(
                self.store.clone(),
                self.probe.clone(),
                self.writer.clone(),
                self.events.clone(),
                self.checker,
            );
            let scheduler = tokio::spawn(scheduler.run(stop.clone()));
            let retention = tokio::spawn(checker::run_retention(
                self.store.clone(),
                self.retention,
                stop.clone(),
            ));
            tracing::info!("checking websites");
            tokio::select! {
                () = shutdown.cancelled() => {}
                _ = state.wait_for(|s| !s.leading) => {
                    tracing::warn!("not leading any more: checking stops");
                }
            }
            stop.cancel();
            let _ = scheduler.await;
            let _ = retention.await;
        }
    }
}

async fn run(
    listener: TcpListener,
    state: AppState,
    duty: Duty,
    (writer, writer_task): (WriterHandle, JoinHandle<()>),
    (elector, relay): (leader::Elector, Option<JoinHandle<()>>),
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let duty_task = tokio::spawn(duty.run(state.leadership.clone(), shutdown.clone()));
    let housekeeping_task = tokio::spawn(housekeeping(state.accounts.clone(), shutdown.clone()));
    // Stepping down does not wait for HTTP connections to drain: checking stops,
    // the results it left are written, and only then is leadership handed over, so
    // the next leader starts from what is stored.
    let step_down = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            shutdown.cancelled().await;
            let _ = duty_task.await;
            drop(writer);
            let _ = writer_task.await;
            elector.release().await;
        }
    });
    let app = http::router(state).into_make_service_with_connect_info::<SocketAddr>();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown.clone().cancelled_owned())
        .await
        .context("HTTP server failed");
    // Whatever ended the server, stop everything else too.
    shutdown.cancel();
    let _ = step_down.await;
    let _ = housekeeping_task.await;
    if let Some(relay) = relay {
        let _ = relay.await;
    }
    tracing::info!("stopped");
    served
}

/// When no user exists, creates the configured admin; a generated password is
/// printed once, since nobody could sign in otherwise.
async fn create_first_admin(accounts: &Accounts, config: &Config) -> anyhow::Result<()> {
    let created = accounts
        .ensure_first_admin(&config.admin_user, config.admin_password.as_deref())
        .await
        .context("cannot create the first admin (check SITEPULSE_ADMIN_USER and SITEPULSE_ADMIN_PASSWORD)")?;
    match created {
        Some((user, Some(password))) => tracing::warn!(
            "created the first admin {:?} with the generated password {password} \
             (shown only this once; sign in and change it)",
            user.username
        ),
        Some((user, None)) => {
            tracing::info!(admin = %user.username, "created the first admin from SITEPULSE_ADMIN_PASSWORD")
        }
        None => {}
    }
    Ok(())
}

/// Every minute forgets idle sign-in limit state; every hour deletes expired sessions.
async fn housekeeping(accounts: Accounts, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    for minute in 0u64.. {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        accounts.forget_idle_limits();
        if minute % 60 != 0 {
            continue;
        }
        match accounts.prune_sessions().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "deleted expired sessions"),
            Err(err) => tracing::warn!(error = %err, "cannot delete expired sessions"),
        }
    }
}
