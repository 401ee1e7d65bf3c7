//! The batch writer: the one path by which check results reach the database.
//!
//! Probes hand results over without waiting. The writer gathers them and stores a
//! batch in one transaction every few hundred milliseconds (or as soon as a batch
//! is full), then announces what was stored. When the database cannot be reached,
//! results wait in a bounded buffer and are written once it is back; only when the
//! buffer overflows are the oldest results dropped, and the count is logged.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};

use crate::domain::Check;
use crate::events::EventBus;
use crate::store::DynStore;

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Most results per transaction.
    pub batch_size: usize,
    /// Longest a result waits before its batch is written.
    pub flush_every: Duration,
    /// Most results held while the database is unreachable.
    pub buffer_capacity: usize,
    /// After the last sender is gone, how long to keep trying to write what is left.
    pub final_flush_deadline: Duration,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            batch_size: 1000,
            flush_every: Duration::from_millis(200),
            buffer_capacity: 200_000,
            final_flush_deadline: Duration::from_secs(10),
        }
    }
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct WriterStats {
    pub stored: AtomicU64,
    /// Results dropped as duplicates of a stored website and slot (or of a deleted website).
    pub duplicates: AtomicU64,
    /// Results lost because the buffer overflowed or shutdown came before the database.
    pub dropped: AtomicU64,
    pub failed_flushes: AtomicU64,
    pub buffered: AtomicU64,
}

/// Hands results to the writer. Cheap to clone; the writer finishes once every
/// handle is dropped and what they sent is written.
#[derive(Clone)]
pub struct WriterHandle {
    sender: mpsc::UnboundedSender<Check>,
    stats: Arc<WriterStats>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl WriterHandle {
    /// Never waits. Returns false when the writer has already stopped.
    pub fn submit(&self, check: Check) -> bool {
        if let Some(metrics) = &self.metrics {
            metrics.check(&check);
        }
        self.sender.send(check).is_ok()
    }

    /// The same handle, counting every submitted check in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn stats(&self) -> &Arc<WriterStats> {
        &self.stats
    }
}

pub fn spawn_writer(
    store: DynStore,
    events: EventBus,
    config: WriterConfig,
) -> (WriterHandle, JoinHandle<()>) {
    let (sender, receiver) = mpsc::unbounded_channel();
    let stats = Arc::new(WriterStats::default());
    let writer = Writer {
        store,
        events,
        config,
        stats: stats.clone(),
        buffer: VecDeque::new(),
        unreported_drops: 0,
    };
    let task = tokio::spawn(writer.run(receiver));
    let handle = WriterHandle {
        sender,
        stats,
        metrics: None,
    };
    (handle, task)
}

struct Writer {
    store: DynStore,
    events: EventBus,
    config: WriterConfig,
    stats: Arc<WriterStats>,
    buffer: VecDeque<Check>,
    unreported_drops: u64,
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Check>) {
        let mut open = true;
        let mut closed_at: Option<Instant> = None;
        let mut next_flush = Instant::now() + self.config.flush_every;
        let mut backoff: Option<Duration> = None;
        loop {
            if open {
                tokio::select! {
                    biased;
                    received = receiver.recv() => {
                        match received {
                            Some(check) => self.push(check),
                            None => {
                                open = false;
                                closed_at = Some(Instant::now());
                                if backoff.is_none() {
                                    next_flush = Instant::now();
                                }
                            }
                        }
                        // A full batch is written at once, unless the database is failing.
                        let full = self.buffer.len() >= self.config.batch_size;
                        if open && !(full && backoff.is_none()) {
                            continue;
                        }
                    }
                    () = sleep_until(next_flush) => {}
                }
            } else if !self.buffer.is_empty() {
                sleep_until(next_flush).await;
            }
            if self.buffer.is_empty() {
                if !open {
                    return;
                }
                next_flush = Instant::now() + self.config.flush_every;
                continue;
            }
            if self.flush().await {
                backoff = None;
                let drain_now = !open || self.buffer.len() >= self.config.batch_size;
                next_flush = Instant::now()
                    + if drain_now {
                        Duration::ZERO
                    } else {
                        self.config.flush_every
                    };
            } else {
                let delay = backoff.map_or(self.config.flush_every, |d| {
                    (d * 2).min(Duration::from_secs(5))
                });
                backoff = Some(delay);
                next_flush = Instant::now() + delay;
                if let Some(closed) = closed_at
                    && closed.elapsed() >= self.config.final_flush_deadline
                {
                    let lost = self.buffer.len() as u64;
                    self.stats.dropped.fetch_add(lost, Ordering::Relaxed);
                    tracing::error!(
                        lost,
                        "shutting down with the database unreachable: check results lost"
                    );
                    return;
                }
            }
        }
    }

    fn push(&mut self, check: Check) {
        if self.buffer.len() >= self.config.buffer_capacity {
            self.buffer.pop_front();
            self.unreported_drops += 1;
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.buffer.push_back(check);
        self.stats
            .buffered
            .store(self.buffer.len() as u64, Ordering::Relaxed);
    }

    /// Writes one batch from the front of the buffer; true when it was stored.
    async fn flush(&mut self) -> bool {
        if self.unreported_drops > 0 {
            tracing::warn!(
                dropped = self.unreported_drops,
                capacity = self.config.buffer_capacity,
                "check result buffer overflowed while the database was unreachable; oldest results dropped"
            );
            self.unreported_drops = 0;
        }
        let n = self.buffer.len().min(self.config.batch_size);
        // The batch stays in the buffer until it is stored, so a failed write loses nothing.
        let batch = &self.buffer.make_contiguous()[..n];
        match self.store.record_checks(batch).await {
            Ok(recorded) => {
                let failures = self.stats.failed_flushes.load(Ordering::Relaxed);
                self.buffer.drain(..n);
                self.stats
                    .buffered
                    .store(self.buffer.len() as u64, Ordering::Relaxed);
                let stored = recorded.stored.len() as u64;
                self.stats.stored.fetch_add(stored, Ordering::Relaxed);
                self.stats
                    .duplicates
                    .fetch_add(n as u64 - stored, Ordering::Relaxed);
                if failures > 0 && self.stats.failed_flushes.swap(0, Ordering::Relaxed) > 0 {
                    tracing::info!(
                        pending = self.buffer.len(),
                        "database reachable again; writing buffered check results"
                    );
                }
                self.events.publish_recorded(recorded);
                true
            }
            Err(err) => {
                let failures = self.stats.failed_flushes.fetch_add(1, Ordering::Relaxed);
                if failures == 0 {
                    tracing::warn!(
                        error = %err,
                        buffered = self.buffer.len(),
                        "cannot store check results; keeping them until the database is back"
                    );
                } else {
                    tracing::debug!(error = %err, buffered = self.buffer.len(), "store still failing");
                }
                false
            }
        }
    }
}
