//! Who runs the checker when several replicas share a database.
//!
//! Exactly one replica leads; every replica knows whether it leads and, as far as
//! it can tell, which one does. Three ways to decide:
//! - `none`: this process always leads (one instance, e.g. on SQLite);
//! - `postgres`: a session advisory lock held on a connection of its own: the lock
//!   goes when that connection goes, so a replica that dies or loses the database
//!   stops leading at once, and another takes the lock;
//! - `kube`: a `coordination.k8s.io/v1` Lease (see [`kube`]).
//!
//! A leader that is asked to stop releases the lock (or Lease) and says so on the
//! `sitepulse_leader` channel, so that the others take over at once instead of at
//! their next try.

pub mod kube;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The advisory lock the checker's leader holds: two integers, "SP36" and 1.
const LOCK_KEY: (i32, i32) = (0x5350_3336, 1);

/// The NOTIFY channel on which a leader that steps down wakes the others.
pub const LEADER_CHANNEL: &str = "sitepulse_leader";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectionMode {
    None,
    Postgres,
    Kube,
}

impl fmt::Display for ElectionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ElectionMode::None => "none",
            ElectionMode::Postgres => "postgres",
            ElectionMode::Kube => "kube",
        })
    }
}

/// What this replica knows about the leadership right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LeaderState {
    pub leading: bool,
    /// The leader's name, when known.
    pub leader: Option<String>,
}

/// Timings of the election.
#[derive(Debug, Clone, Copy)]
pub struct Timings {
    /// How long a Lease holds without renewal.
    pub lease_duration: Duration,
    /// A leader that could not renew for this long stops leading.
    pub renew_deadline: Duration,
    /// How often leadership is tried and renewed.
    pub retry_period: Duration,
}

impl Default for Timings {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(45),
            renew_deadline: Duration::from_secs(40),
            retry_period: Duration::from_secs(2),
        }
    }
}

/// The view every part of a replica has of the election. Cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    identity: Arc<str>,
    mode: ElectionMode,
    state: watch::Receiver<LeaderState>,
    nudge: Arc<Notify>,
}

impl Leadership {
    /// This replica's name.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    pub fn mode(&self) -> ElectionMode {
        self.mode
    }

    pub fn is_leader(&self) -> bool {
        self.state.borrow().leading
    }

    /// The leader's name, when known.
    pub fn leader(&self) -> Option<String> {
        self.state.borrow().leader.clone()
    }

    /// Follows the changes of leadership.
    pub fn watch(&self) -> watch::Receiver<LeaderState> {
        self.state.clone()
    }

    /// The leader stepped down somewhere: try to take over now.
    pub fn nudge(&self) {
        self.nudge.notify_one();
    }
}

/// The running election; [`Elector::release`] steps down and stops it.
pub struct Elector {
    release: CancellationToken,
    task: JoinHandle<()>,
}

impl Elector {
    /// Gives up leadership (releasing the lock or Lease) and waits until done.
    pub async fn release(self) {
        self.release.cancel();
        let _ = self.task.await;
    }
}

/// A replica that always leads.
pub fn standalone(identity: &str) -> (Leadership, Elector) {
    let (sender, state) = watch::channel(LeaderState {
        leading: true,
        leader: Some(identity.to_owned()),
    });
    let release = CancellationToken::new();
    let task = tokio::spawn({
        let release = release.clone();
        async move {
            release.cancelled().await;
            drop(sender);
        }
    });
    let leadership = Leadership {
        identity: identity.into(),
        mode: ElectionMode::None,
        state,
        nudge: Arc::default(),
    };
    (leadership, Elector { release, task })
}

/// Where an election task publishes what it finds, and the nudge it waits on.
struct Channel {
    sender: watch::Sender<LeaderState>,
    nudge: Arc<Notify>,
}

/// Spawns the election task `start` makes; the view of it and its handle.
fn spawn_election<F, Fut>(identity: &str, mode: ElectionMode, start: F) -> (Leadership, Elector)
where
    F: FnOnce(Channel, CancellationToken) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, state) = watch::channel(LeaderState::default());
    let release = CancellationToken::new();
    let nudge = Arc::new(Notify::new());
    let channel = Channel {
        sender,
        nudge: nudge.clone(),
    };
    let task = tokio::spawn(start(channel, release.clone()));
    let leadership = Leadership {
        identity: identity.into(),
        mode,
        state,
        nudge,
    };
    (leadership, Elector { release, task })
}

/// Elects through a PostgreSQL session advisory lock.
pub fn postgres(
    database_url: &str,
    identity: &str,
    timings: Timings,
) -> anyhow::Result<(Leadership, Elector)> {
    let options = PgConnectOptions::from_str(database_url)?.application_name(identity);
    Ok(spawn_election(
        identity,
        ElectionMode::Postgres,
        |channel, release| {
            PgElection {
                options,
                identity: identity.to_owned(),
                timings,
                sender: channel.sender,
                nudge: channel.nudge,
            }
            .run(release)
        },
    ))
}

struct PgElection {
    options: PgConnectOptions,
    identity: String,
    timings: Timings,
    sender: watch::Sender<LeaderState>,
    nudge: Arc<Notify>,
}

impl PgElection {
    /// A leader whose lock connection fails keeps leading for the renew deadline
    /// while it reconnects and takes its lock back, so a database failover or a
    /// short outage does not stop the checks (their results wait in the writer's
    /// buffer). A follower that lost the database too waits a few retry periods
    /// after it is back before trying the lock, giving that leader the first go;
    /// a leader that finds the lock taken steps down at once.
    async fn run(self, release: CancellationToken) {
        let mut connection: Option<PgConnection> = None;
        // The lock is held on `connection`.
        let mut held = false;
        // Leading without the lock since the connection failed, until then.
        let mut grace_until: Option<Instant> = None;
        // A follower that lost the database does not try the lock before then.
        let mut settle_until: Option<Instant> = None;
        let mut outage = false;
        let mut leading = false;
        loop {
            let may_take = grace_until.is_some()
                || (!outage && settle_until.is_none_or(|t| Instant::now() >= t));
            let state = match self.round(&mut connection, held, may_take).await {
                Ok((now_held, leader)) => {
                    if grace_until.take().is_some() {
                        if now_held {
                            tracing::info!(replica = %self.identity, "database back: kept leadership");
                        } else {
                            tracing::warn!(replica = %self.identity, leader = ?leader, "database back: another replica leads");
                        }
                    } else if outage {
                        settle_until = Some(Instant::now() + self.timings.retry_period * 3);
                    }
                    outage = false;
                    held = now_held;
                    LeaderState {
                        leading: held,
                        leader,
                    }
                }
                Err(err) => {
                    tracing::debug!(error = %err, "leader election: no answer from the database");
                    // The lock dies with the session: drop it rather than wait for a
                    // polite close.
                    connection = None;
                    outage = true;
                    if held {
                        held = false;
                        grace_until = Some(Instant::now() + self.timings.renew_deadline);
                        tracing::warn!(
                            replica = %self.identity,
                            error = %err,
                            "lost the database connection holding leadership; still checking for up to {} while reconnecting",
                            humantime::format_duration(self.timings.renew_deadline)
                        );
                    }
                    match grace_until {
                        Some(until) if Instant::now() < until => LeaderState {
                            leading: true,
                            leader: Some(self.identity.clone()),
                        },
                        _ => {
                            grace_until = None;
                            LeaderState::default()
                        }
                    }
                }
            };
            if state.leading != leading {
                if state.leading {
                    tracing::info!(replica = %self.identity, "gained leadership: this replica runs the checker");
                } else {
                    tracing::warn!(replica = %self.identity, "lost leadership");
                }
                leading = state.leading;
            }
            self.sender.send_if_modified(|current| {
                let changed = *current != state;
                *current = state.clone();
                changed
            });
            tokio::select! {
                () = release.cancelled() => break,
                () = tokio::time::sleep(self.timings.retry_period) => {}
                () = self.nudge.notified(), if !leading => {}
            }
        }
        let leading = held;
        if let Some(mut connection) = connection {
            if leading {
                let unlocked = tokio::time::timeout(self.timings.retry_period, async {
                    sqlx::query("SELECT pg_advisory_unlock($1, $2)")
                        .bind(LOCK_KEY.0)
                        .bind(LOCK_KEY.1)
                        .execute(&mut connection)
                        .await?;
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(LEADER_CHANNEL)
                        .bind(&self.identity)
                        .execute(&mut connection)
                        .await
                })
                .await;
                match unlocked {
                    Ok(Ok(_)) => tracing::info!(replica = %self.identity, "released leadership"),
                    _ => {
                        tracing::warn!("could not release leadership; it ends with the connection")
                    }
                }
            }
            let _ = tokio::time::timeout(Duration::from_secs(1), connection.close()).await;
        }
        self.sender.send_replace(LeaderState::default());
    }

    /// One try: connects when needed, checks the held lock's session or (when
    /// `may_take`) tries the lock, and reads who holds it. Whether the lock is held
    /// on the connection now, and the leader's name.
    async fn round(
        &self,
        connection: &mut Option<PgConnection>,
        held: bool,
        may_take: bool,
    ) -> anyhow::Result<(bool, Option<String>)> {
        let deadline = self.timings.retry_period.min(self.timings.renew_deadline);
        tokio::time::timeout(deadline, async {
            if connection.is_none() {
                *connection = Some(PgConnection::connect_with(&self.options).await?);
            }
            let connection = connection.as_mut().expect("just connected");
            let held = if held {
                // Holding the lock: the session must still be alive.
                sqlx::query("SELECT 1").execute(&mut *connection).await?;
                true
            } else if may_take {
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1, $2)")
                    .bind(LOCK_KEY.0)
                    .bind(LOCK_KEY.1)
                    .fetch_one(&mut *connection)
                    .await?
            } else {
                false
            };
            let leader = if held {
                Some(self.identity.clone())
            } else {
                holder(connection).await?
            };
            Ok((held, leader))
        })
        .await
        .map_err(|_| anyhow::anyhow!("no answer within {}", humantime::format_duration(deadline)))?
    }
}

/// The name (application name) of the session holding the lock, if any.
async fn holder(connection: &mut PgConnection) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
         WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::int4::oid \
         AND l.objid = $2::int4::oid AND l.objsubid = 2 LIMIT 1",
    )
    .bind(LOCK_KEY.0)
    .bind(LOCK_KEY.1)
    .fetch_optional(connection)
    .await
}
