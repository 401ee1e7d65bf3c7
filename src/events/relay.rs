//! Events across replicas, through PostgreSQL's LISTEN/NOTIFY.
//!
//! Every event published on a replica's bus is also sent, in batches, as a
//! notification on the `sitepulse_events` channel; every replica listens there and
//! publishes what the others sent on its own bus. So a check written by the leader
//! reaches subscriptions and open pages on every replica, and a website added on
//! any replica reaches the leader's scheduler at once.
//!
//! Notifications are not stored: a replica whose listening connection drops may
//! miss some. When it is listening again it publishes [`Event::Resync`], and
//! whoever keeps state from events reads it again from the database.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Event, EventBus, StatusChange, WebsiteChange};
use crate::domain::Check;
use crate::leader::{LEADER_CHANNEL, Leadership};

pub const EVENTS_CHANNEL: &str = "sitepulse_events";

/// PostgreSQL refuses notifications of 8,000 bytes or more.
const MAX_PAYLOAD: usize = 7900;
/// Events sent in one statement at most.
const BATCH: usize = 256;
/// Events waiting to be sent; beyond that they stay on this replica.
pub const OUTBOX: usize = 16_384;

#[derive(Serialize, Deserialize)]
struct Envelope {
    /// The replica that published it, so it does not publish it twice.
    from: String,
    #[serde(flatten)]
    event: Wire,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
enum Wire {
    Check(Check),
    Status(StatusChange),
    Website(WebsiteChange),
}

impl Wire {
    fn of(event: &Event) -> Option<Self> {
        Some(match event {
            Event::CheckCompleted(check) => Wire::Check((**check).clone()),
            Event::StatusChanged(change) => Wire::Status((**change).clone()),
            Event::WebsiteChanged(change) => Wire::Website((**change).clone()),
            Event::Resync => return None,
        })
    }

    fn into_event(self) -> Event {
        match self {
            Wire::Check(check) => Event::CheckCompleted(Arc::new(check)),
            Wire::Status(change) => Event::StatusChanged(Arc::new(change)),
            Wire::Website(change) => Event::WebsiteChanged(Arc::new(change)),
        }
    }
}

/// The queue a bus hands its events to, and the receiving end for [`spawn`].
pub fn outbox() -> (mpsc::Sender<Event>, mpsc::Receiver<Event>) {
    mpsc::channel(OUTBOX)
}

/// Starts sending this replica's events and listening to the others'. Both tasks
/// end on `shutdown`.
pub fn spawn(
    database_url: &str,
    replica: &str,
    events: EventBus,
    outbox: mpsc::Receiver<Event>,
    leadership: Leadership,
    shutdown: CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let options =
        PgConnectOptions::from_str(database_url)?.application_name(&format!("{replica} events"));
    // One connection listens, one sends.
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options);
    let sender = tokio::spawn(send(
        pool.clone(),
        replica.to_owned(),
        outbox,
        shutdown.clone(),
    ));
    let listener = tokio::spawn(listen(
        pool,
        replica.to_owned(),
        events,
        leadership,
        shutdown,
    ));
    Ok(tokio::spawn(async move {
        let _ = sender.await;
        let _ = listener.await;
    }))
}

async fn send(
    pool: PgPool,
    replica: String,
    mut outbox: mpsc::Receiver<Event>,
    shutdown: CancellationToken,
) {
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            // Events published until shutdown are still sent.
            () = shutdown.cancelled(), if outbox.is_empty() => return,
            received = outbox.recv_many(&mut batch, BATCH) => {
                if received == 0 {
                    return;
                }
            }
        }
        let payloads: Vec<String> = batch
            .drain(..)
            .filter_map(|event| {
                let event = Wire::of(&event)?;
                let payload = serde_json::to_string(&Envelope {
                    from: replica.clone(),
                    event,
                })
                .ok()?;
                if payload.len() > MAX_PAYLOAD {
                    tracing::warn!(
                        bytes = payload.len(),
                        "event too large to pass to other replicas"
                    );
                    return None;
                }
                Some(payload)
            })
            .collect();
        if payloads.is_empty() {
            continue;
        }
        let sent = sqlx::query("SELECT pg_notify($1, p) FROM unnest($2::text[]) AS p")
            .bind(EVENTS_CHANNEL)
            .bind(&payloads)
            .execute(&pool)
            .await;
        if let Err(err) = sent {
            tracing::warn!(error = %err, events = payloads.len(), "cannot pass events to other replicas");
        }
    }
}

async fn listen(
    pool: PgPool,
    replica: String,
    events: EventBus,
    leadership: Leadership,
    shutdown: CancellationToken,
) {
    let mut first = true;
    while !shutdown.is_cancelled() {
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen to other replicas' events; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if first {
            first = false;
        } else {
            tracing::info!("listening to other replicas' events again");
            // Whatever was sent meanwhile is lost: read it from the database.
            events.publish_here(Event::Resync);
        }
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                received = listener.try_recv() => received,
            };
            match received {
                Ok(Some(notification)) => {
                    if notification.channel() == LEADER_CHANNEL {
                        leadership.nudge();
                        continue;
                    }
                    match serde_json::from_str::<Envelope>(notification.payload()) {
                        Ok(envelope) if envelope.from == replica => {}
                        Ok(envelope) => events.publish_here(envelope.event.into_event()),
                        Err(err) => {
                            tracing::warn!(error = %err, "unreadable event from another replica")
                        }
                    }
                }
                Ok(None) => {
                    tracing::warn!("lost the connection that listens to other replicas");
                    break;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "listening to other replicas failed");
                    break;
                }
            }
        }
    }
}

async fn connect(pool: &PgPool) -> sqlx::Result<PgListener> {
    let mut listener = PgListener::connect_with(pool).await?;
    // Reconnecting is done here, where a new connection is known to have missed events.
    listener.eager_reconnect(false);
    listener
        .listen_all([EVENTS_CHANNEL, LEADER_CHANNEL])
        .await?;
    Ok(listener)
}
