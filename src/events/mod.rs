//! What happened, fanned out to whoever listens in this process.
//!
//! The writer publishes completed checks and status changes; the operations on
//! websites publish their changes. Listeners (the scheduler, subscriptions, live
//! pages) each get their own bounded queue: publishing never waits, and a listener
//! that falls behind loses the oldest events and is told how many it missed
//! ([`tokio::sync::broadcast::error::RecvError::Lagged`]) instead of slowing anyone.

pub mod relay;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::domain::{Check, Status, Website, WebsiteId};

/// How many events a listener may fall behind before it starts losing them.
pub const LISTENER_BUFFER: usize = 4096;

#[derive(Debug, Clone)]
pub enum Event {
    CheckCompleted(Arc<Check>),
    StatusChanged(Arc<StatusChange>),
    WebsiteChanged(Arc<WebsiteChange>),
    /// Events from other replicas may have been missed (their channel was
    /// interrupted): whoever keeps state from events should read it again.
    Resync,
}

/// A website went from UP to DOWN or back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub website_id: WebsiteId,
    pub previous: Status,
    pub current: Status,
    /// The check that caused the change.
    pub check: Check,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebsiteChange {
    pub kind: ChangeKind,
    /// The website after the change; for a deletion, as it was before.
    pub website: Website,
}

/// The in-process event bus. Cheap to clone; all clones publish to the same listeners.
#[derive(Debug, Clone)]
pub struct EventBus {
    sender: broadcast::Sender<Event>,
    /// Counts published events: a reader that remembers it can tell whether
    /// anything happened since, without listening.
    version: Arc<AtomicU64>,
    /// Where events that happened here go to reach other replicas, when there are any.
    outbox: Option<mpsc::Sender<Event>>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new(LISTENER_BUFFER)
    }
}

impl EventBus {
    pub fn new(buffer: usize) -> Self {
        let (sender, _) = broadcast::channel(buffer);
        Self {
            sender,
            version: Arc::new(AtomicU64::new(0)),
            outbox: None,
        }
    }

    /// The same bus, also handing every event published here to `outbox` (the relay
    /// that passes them on to other replicas).
    pub fn with_outbox(mut self, outbox: mpsc::Sender<Event>) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Never blocks; with nobody listening the event is simply dropped. Events are
    /// also handed to the relay to other replicas; when its queue is full they are
    /// not, and the other replicas catch up from the database.
    pub fn publish(&self, event: Event) {
        if let Some(outbox) = &self.outbox
            && !matches!(event, Event::Resync)
            && outbox.try_send(event.clone()).is_err()
        {
            tracing::debug!("relay queue full; an event stays on this replica");
        }
        self.publish_here(event);
    }

    /// Publishes an event that came from another replica: to listeners here only.
    pub fn publish_here(&self, event: Event) {
        self.version.fetch_add(1, Ordering::AcqRel);
        let _ = self.sender.send(event);
    }

    /// How many events have been published so far.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Announces what a batch of checks changed: every stored check, then every
    /// change of status.
    pub fn publish_recorded(&self, recorded: crate::store::Recorded) {
        for check in recorded.stored {
            self.publish(Event::CheckCompleted(Arc::new(check)));
        }
        for change in recorded.changes {
            tracing::info!(
                website = change.website_id,
                from = %change.previous,
                to = %change.current,
                "status changed"
            );
            self.publish(Event::StatusChanged(Arc::new(change)));
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.sender.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use tokio::sync::broadcast::error::RecvError;

    fn check(id: WebsiteId) -> Event {
        let now = Utc::now();
        Event::CheckCompleted(Arc::new(Check {
            website_id: id,
            slot: now,
            checked_at: now,
            up: true,
            status_code: Some(200),
            response_time_ms: 3,
            error: None,
        }))
    }

    #[tokio::test]
    async fn a_slow_listener_loses_events_and_is_told() {
        let bus = EventBus::new(4);
        let mut fast = bus.subscribe();
        let mut slow = bus.subscribe();
        for id in 0..10 {
            bus.publish(check(id));
            // The fast listener keeps up.
            assert!(
                matches!(fast.recv().await, Ok(Event::CheckCompleted(c)) if c.website_id == id)
            );
        }
        assert!(matches!(slow.recv().await, Err(RecvError::Lagged(6))));
        assert!(matches!(slow.recv().await, Ok(Event::CheckCompleted(c)) if c.website_id == 6));
    }
}
