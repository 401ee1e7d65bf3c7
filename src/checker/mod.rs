//! The checker: the scheduler decides when each website is due, the probe requests
//! it, the writer stores the result.
//!
//! The scheduler is one task with a heap of due times. Every due check runs in its
//! own task, under a concurrency limit, so a website that hangs until its timeout
//! holds one permit and delays nobody else. Changes to websites reach the scheduler
//! as events and, as a safety net for changes made elsewhere, through a periodic
//! re-read of the website list.

pub mod probe;
mod retention;
pub mod schedule;
pub mod writer;

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Semaphore;
use tokio::sync::broadcast::error::RecvError;
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use url::Url;

use crate::domain::{Check, Website, WebsiteId};
use crate::events::{ChangeKind, Event, EventBus};
use crate::store::DynStore;

pub use probe::{Outcome, Probe};
pub use retention::{Pass, Retention, run_retention};
pub use writer::{WriterConfig, WriterHandle, WriterStats, spawn_writer};

#[derive(Debug, Clone, Copy)]
pub struct CheckerConfig {
    /// Most checks in flight at once.
    pub concurrency: usize,
    /// How often the whole website list is re-read.
    pub resync_every: Duration,
    /// How long shutdown waits for checks in flight before abandoning them.
    pub shutdown_grace: Duration,
}

impl Default for CheckerConfig {
    fn default() -> Self {
        Self {
            concurrency: 1024,
            resync_every: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

/// Turns a probe outcome into the check of a slot.
pub fn check_from(website: WebsiteId, slot: DateTime<Utc>, outcome: Outcome) -> Check {
    Check {
        website_id: website,
        slot,
        checked_at: outcome.started_at,
        up: outcome.up,
        status_code: outcome.status_code,
        response_time_ms: outcome.response_time_ms,
        error: outcome.error,
    }
}

struct Entry {
    url: Arc<Url>,
    interval: Duration,
    timeout: Duration,
    /// Bumped whenever the entry is rescheduled; heap items of older generations are stale.
    generation: u64,
    /// Set while a check of this website waits for a permit or runs.
    busy: Arc<AtomicBool>,
}

/// Clears a website's busy flag when its check ends, however it ends.
struct BusyGuard(Arc<AtomicBool>);

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// A scheduled check: (due time in ms, website, generation).
type Due = Reverse<(i64, WebsiteId, u64)>;

pub struct Scheduler {
    store: DynStore,
    probe: Probe,
    writer: WriterHandle,
    events: EventBus,
    config: CheckerConfig,
    entries: HashMap<WebsiteId, Entry>,
    heap: BinaryHeap<Due>,
    generation: u64,
    limit: Arc<Semaphore>,
    /// Slots skipped because the website's previous check had not finished.
    skipped: u64,
}

impl Scheduler {
    pub fn new(
        store: DynStore,
        probe: Probe,
        writer: WriterHandle,
        events: EventBus,
        config: CheckerConfig,
    ) -> Self {
        Self {
            store,
            probe,
            writer,
            events,
            limit: Arc::new(Semaphore::new(config.concurrency)),
            config,
            entries: HashMap::new(),
            heap: BinaryHeap::new(),
            generation: 0,
            skipped: 0,
        }
    }

    /// Runs until `cancel` fires, then waits for checks in flight (up to the grace
    /// period) so their results reach the writer.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut changes = self.events.subscribe();
        let tracker = TaskTracker::new();
        let abandon = CancellationToken::new();
        let mut next_resync = Instant::now();
        let mut first_load = true;
        // The website list is read in its own task so that a slow read (tens of
        // thousands of rows on a busy database) never holds back due checks.
        let mut listing: Option<JoinHandle<crate::store::Result<Vec<Website>>>> = None;
        // Websites changed by events while a read is under way: the events are newer.
        let mut touched: HashSet<WebsiteId> = HashSet::new();
        loop {
            if listing.is_none() && Instant::now() >= next_resync {
                let store = self.store.clone();
                listing = Some(tokio::spawn(async move { store.websites().await }));
                touched.clear();
            }
            let wake = self.next_due_instant().unwrap_or(next_resync);
            let wake = if listing.is_some() {
                wake
            } else {
                wake.min(next_resync)
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = sleep_until(wake) => {}
                event = changes.recv() => match event {
                    Ok(Event::WebsiteChanged(change)) => {
                        touched.insert(change.website.id);
                        match change.kind {
                            ChangeKind::Deleted => self.remove(change.website.id),
                            ChangeKind::Created | ChangeKind::Updated => {
                                self.apply(&change.website, true)
                            }
                        }
                    }
                    Ok(Event::Resync) => next_resync = Instant::now(),
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "scheduler missed website changes; re-reading the list");
                        next_resync = Instant::now();
                    }
                    Err(RecvError::Closed) => {}
                },
                read = async { listing.as_mut().expect("guarded").await }, if listing.is_some() => {
                    listing = None;
                    match read {
                        Ok(Ok(websites)) => {
                            if self.skipped > 0 {
                                tracing::warn!(
                                    skipped = self.skipped,
                                    "checker overloaded: skipped slots of websites whose previous check had not finished"
                                );
                                self.skipped = 0;
                            }
                            self.resync(&websites, !first_load, &touched);
                            first_load = false;
                            next_resync = Instant::now() + self.config.resync_every;
                        }
                        Ok(Err(err)) => {
                            tracing::warn!(error = %err, "cannot read the website list; keeping the current schedule");
                            next_resync = Instant::now() + Duration::from_secs(2);
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "reading the website list failed");
                            next_resync = Instant::now() + Duration::from_secs(2);
                        }
                    }
                }
            }
            self.start_due(&tracker, &abandon);
        }
        if let Some(listing) = listing {
            listing.abort();
        }
        tracker.close();
        let in_flight = tracker.len();
        if in_flight > 0 {
            tracing::info!(in_flight, "waiting for checks in flight");
            if tokio::time::timeout(self.config.shutdown_grace, tracker.wait())
                .await
                .is_err()
            {
                tracing::warn!(
                    abandoned = tracker.len(),
                    "abandoning checks still in flight"
                );
                abandon.cancel();
                tracker.wait().await;
            }
        }
    }

    fn next_due_instant(&self) -> Option<Instant> {
        let Reverse((due_ms, _, _)) = self.heap.peek()?;
        let wait = due_ms - Utc::now().timestamp_millis();
        Some(Instant::now() + Duration::from_millis(wait.max(0) as u64))
    }

    fn start_due(&mut self, tracker: &TaskTracker, abandon: &CancellationToken) {
        let now = Utc::now();
        let now_ms = now.timestamp_millis();
        while let Some(&Reverse((due_ms, id, generation))) = self.heap.peek() {
            if due_ms > now_ms {
                break;
            }
            self.heap.pop();
            let Some(entry) = self.entries.get(&id) else {
                continue;
            };
            if entry.generation != generation {
                continue;
            }
            let slot = DateTime::from_timestamp_millis(due_ms).unwrap_or(now);
            let (url, timeout) = (entry.url.clone(), entry.timeout);
            let next = schedule::next_slot(id, entry.interval, slot, now);
            self.heap
                .push(Reverse((next.timestamp_millis(), id, generation)));
            // A website's checks never overlap: when the checker is overloaded and the
            // previous check still waits or runs, this slot is skipped instead of
            // queueing without bound.
            if entry.busy.swap(true, Ordering::AcqRel) {
                self.skipped += 1;
                continue;
            }
            let busy = BusyGuard(entry.busy.clone());

            let (probe, writer, limit, abandon) = (
                self.probe.clone(),
                self.writer.clone(),
                self.limit.clone(),
                abandon.clone(),
            );
            tracker.spawn(async move {
                let _busy = busy;
                let run = async {
                    let Ok(_permit) = limit.acquire_owned().await else {
                        return;
                    };
                    let outcome = probe.check(&url, timeout).await;
                    writer.submit(check_from(id, slot, outcome));
                };
                tokio::select! {
                    () = abandon.cancelled() => {}
                    () = run => {}
                }
            });
        }
    }

    /// Adds or refreshes a website. A website never checked before is checked at
    /// once when `first_check_now`; everything else waits for its next slot.
    fn apply(&mut self, website: &Website, first_check_now: bool) {
        if website.paused {
            self.remove(website.id);
            return;
        }
        let Ok(url) = Url::parse(&website.url) else {
            tracing::warn!(website = website.id, url = %website.url, "stored URL does not parse; not checking it");
            self.remove(website.id);
            return;
        };
        if let Some(entry) = self.entries.get_mut(&website.id)
            && entry.interval == website.interval
        {
            // Same rhythm: keep the schedule, take the new URL and timeout.
            if *entry.url != url {
                entry.url = Arc::new(url);
            }
            entry.timeout = website.timeout;
            return;
        }
        let now = Utc::now();
        let due = match &website.last_check {
            None if first_check_now => probe::now_millis(),
            None => schedule::slot_at_or_after(website.id, website.interval, now),
            Some(last) => schedule::resume_after(website.id, website.interval, last.slot, now),
        };
        self.generation += 1;
        let busy = self
            .entries
            .get(&website.id)
            .map(|e| e.busy.clone())
            .unwrap_or_default();
        self.entries.insert(
            website.id,
            Entry {
                url: Arc::new(url),
                interval: website.interval,
                timeout: website.timeout,
                generation: self.generation,
                busy,
            },
        );
        self.heap.push(Reverse((
            due.timestamp_millis(),
            website.id,
            self.generation,
        )));
    }

    fn remove(&mut self, id: WebsiteId) {
        self.entries.remove(&id);
        // Its heap items turn stale; drop them all when they pile up.
        if self.heap.len() > 2 * self.entries.len() + 1024 {
            let live = &self.entries;
            self.heap
                .retain(|Reverse((_, id, g))| live.get(id).is_some_and(|e| e.generation == *g));
        }
    }

    /// Brings the schedule in line with a freshly read website list, except for the
    /// websites in `skip`, whose changes arrived as events after the read began.
    fn resync(&mut self, websites: &[Website], first_check_now: bool, skip: &HashSet<WebsiteId>) {
        let seen: HashSet<WebsiteId> = websites.iter().map(|w| w.id).collect();
        for website in websites {
            if !skip.contains(&website.id) {
                self.apply(website, first_check_now);
            }
        }
        let gone: Vec<WebsiteId> = self
            .entries
            .keys()
            .filter(|id| !seen.contains(id) && !skip.contains(id))
            .copied()
            .collect();
        for id in gone {
            self.remove(id);
        }
    }
}
