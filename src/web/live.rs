//! What the websites list shows, kept in memory and pushed to open pages.
//!
//! The [`Board`] holds every website with its newest checks and its counts over the
//! last 24 hours. It is read from the database once, then kept current from the
//! event bus: a completed check changes one website's row, which is rendered once
//! and sent to every open page over Server-Sent Events (`GET /live`). A page that
//! lost its connection catches up when it reconnects: it tells which update it saw
//! last, and is asked to reload its live parts when anything happened since.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use chrono_tz::Tz;
use futures_util::{Stream, StreamExt, stream};
use serde::Deserialize;
use tokio::sync::{Mutex, broadcast};
use tokio_util::sync::CancellationToken;

use super::{PageError, Reader, home};
use crate::domain::{Check, Status, Tally, Website, WebsiteId};
use crate::events::{ChangeKind, Event};
use crate::http::AppState;
use crate::store::{DynStore, StoreError};

/// How many of the newest checks each website's strip shows.
pub const STRIP_LEN: usize = 30;

/// The board is read again from the database this often, which also moves the
/// 24-hour window along.
const RELOAD_AFTER: Duration = Duration::from_secs(300);

/// How many updates an open page may fall behind before it is told to reload.
const UPDATE_BUFFER: usize = 1024;

/// One website as the list shows it.
pub struct Entry {
    pub website: Website,
    /// Newest first, at most [`STRIP_LEN`].
    pub strip: VecDeque<Check>,
    /// Counts over the last 24 hours (whole hours).
    pub day: Tally,
}

/// A rendered row of the list, shared by every page that shows it.
pub struct Row {
    pub id: WebsiteId,
    /// Lower-cased name and URL, for filtering.
    pub search: String,
    pub status: Status,
    pub html: Arc<str>,
}

/// How many websites are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub up: usize,
    pub down: usize,
    pub pending: usize,
}

impl Totals {
    pub fn all(&self) -> usize {
        self.up + self.down + self.pending
    }
}

/// What open pages are told.
#[derive(Debug, Clone)]
pub enum Update {
    /// A website's row changed (a check completed): its new row and the new totals.
    Row {
        id: WebsiteId,
        html: Arc<str>,
        totals: Arc<str>,
    },
    /// Websites were added, renamed or removed, or updates were lost: reload.
    /// `Some(id)` when one website's page is concerned.
    Reload(Option<WebsiteId>),
}

/// The list at one moment.
pub struct Snapshot {
    /// The update this snapshot includes; pages pass it back when they connect.
    pub version: u64,
    pub rows: Vec<Arc<Row>>,
    pub totals: Totals,
}

struct Slot {
    entry: Entry,
    row: Option<Arc<Row>>,
}

struct State_ {
    loaded_at: Instant,
    slots: HashMap<WebsiteId, Slot>,
    /// Website ids ordered as the list shows them: by name, then id.
    order: Vec<WebsiteId>,
}

#[derive(Clone)]
pub struct Board {
    inner: Arc<Inner>,
}

struct Inner {
    store: DynStore,
    timezone: Tz,
    state: Mutex<Option<State_>>,
    updates: broadcast::Sender<Arc<(u64, Update)>>,
    version: AtomicU64,
    shutdown: CancellationToken,
}

impl Board {
    pub fn new(store: DynStore, timezone: Tz, shutdown: CancellationToken) -> Self {
        let (updates, _) = broadcast::channel(UPDATE_BUFFER);
        Self {
            inner: Arc::new(Inner {
                store,
                timezone,
                state: Mutex::new(None),
                updates,
                // Versions start from the clock, so a page that reconnects to a
                // restarted process (or another replica) never mistakes that
                // process's versions for the ones it saw.
                version: AtomicU64::new(
                    u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0) * 1000,
                ),
                shutdown,
            }),
        }
    }

    pub fn timezone(&self) -> Tz {
        self.inner.timezone
    }

    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// Follows the event bus until shutdown. Spawn it once per process.
    pub async fn run(self, mut events: broadcast::Receiver<Event>) {
        loop {
            let event = tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                event = events.recv() => event,
            };
            match event {
                Ok(event) => self.apply(event).await,
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "live board fell behind; reloading");
                    *self.inner.state.lock().await = None;
                    self.send(Update::Reload(None));
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// The list as it is now, read from the database first if needed.
    pub async fn snapshot(&self) -> Result<Snapshot, StoreError> {
        let mut guard = self.inner.state.lock().await;
        let state = self.loaded(&mut guard).await?;
        let mut totals = Totals::default();
        let mut rows = Vec::with_capacity(state.order.len());
        for id in &state.order {
            let Some(slot) = state.slots.get_mut(id) else {
                continue;
            };
            let row = slot
                .row
                .get_or_insert_with(|| render(&slot.entry, self.inner.timezone))
                .clone();
            count(&mut totals, row.status);
            rows.push(row);
        }
        Ok(Snapshot {
            version: self.version(),
            rows,
            totals,
        })
    }

    /// A receiver of updates with their versions, for one open page.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<(u64, Update)>> {
        self.inner.updates.subscribe()
    }

    async fn loaded<'a>(
        &self,
        guard: &'a mut Option<State_>,
    ) -> Result<&'a mut State_, StoreError> {
        let stale = guard
            .as_ref()
            .is_none_or(|state| state.loaded_at.elapsed() > RELOAD_AFTER);
        if stale {
            *guard = Some(self.load().await?);
        }
        Ok(guard.as_mut().expect("just loaded"))
    }

    async fn load(&self) -> Result<State_, StoreError> {
        let store = &self.inner.store;
        let websites = store.websites().await?;
        let mut strips: HashMap<WebsiteId, VecDeque<Check>> = HashMap::new();
        for check in store.latest_checks(STRIP_LEN as u32).await? {
            strips.entry(check.website_id).or_default().push_back(check);
        }
        let day: HashMap<WebsiteId, Tally> = store
            .tallies_since(Utc::now() - chrono::Duration::hours(24))
            .await?
            .into_iter()
            .collect();
        let order = websites.iter().map(|w| w.id).collect();
        let slots = websites
            .into_iter()
            .map(|website| {
                let id = website.id;
                let entry = Entry {
                    strip: strips.remove(&id).unwrap_or_default(),
                    day: day.get(&id).copied().unwrap_or_default(),
                    website,
                };
                (id, Slot { entry, row: None })
            })
            .collect();
        Ok(State_ {
            loaded_at: Instant::now(),
            slots,
            order,
        })
    }

    async fn apply(&self, event: Event) {
        let mut guard = self.inner.state.lock().await;
        if let Event::Resync = event {
            *guard = None;
            drop(guard);
            self.send(Update::Reload(None));
            return;
        }
        // Nothing loaded yet: the first reader loads the current state anyway.
        let Some(state) = guard.as_mut() else {
            if let Event::WebsiteChanged(_) = event {
                self.send(Update::Reload(None));
            }
            return;
        };
        match event {
            Event::CheckCompleted(check) => {
                let Some(slot) = state.slots.get_mut(&check.website_id) else {
                    return;
                };
                if !add_check(&mut slot.entry, &check) {
                    return;
                }
                let row = render(&slot.entry, self.inner.timezone);
                let html = row.html.clone();
                slot.row = Some(row);
                let totals = totals_of(state);
                self.send(Update::Row {
                    id: check.website_id,
                    html,
                    totals: home::render_totals(&totals).into_string().into(),
                });
            }
            // The check that caused it is announced too, and carries what the row needs.
            Event::StatusChanged(_) | Event::Resync => {}
            Event::WebsiteChanged(change) => {
                let website = &change.website;
                match change.kind {
                    ChangeKind::Deleted => {
                        state.slots.remove(&website.id);
                    }
                    ChangeKind::Created | ChangeKind::Updated => {
                        let slot = state.slots.entry(website.id).or_insert_with(|| Slot {
                            entry: Entry {
                                website: website.clone(),
                                strip: VecDeque::new(),
                                day: Tally::default(),
                            },
                            row: None,
                        });
                        // Keep what the board knows of the checks; the change may
                        // have been read before the newest of them.
                        slot.entry.website.redefine(website);
                        slot.row = None;
                    }
                }
                state.order = ordered(&state.slots);
                self.send(Update::Reload(Some(website.id)));
            }
        }
    }

    fn send(&self, update: Update) {
        let version = self.inner.version.fetch_add(1, Ordering::AcqRel) + 1;
        let _ = self.inner.updates.send(Arc::new((version, update)));
    }
}

/// Adds a completed check to an entry; false when the entry already had it.
fn add_check(entry: &mut Entry, check: &Check) -> bool {
    let position = entry.strip.iter().position(|c| c.slot <= check.slot);
    if let Some(i) = position
        && entry.strip[i].slot == check.slot
    {
        return false;
    }
    match position {
        Some(i) => entry.strip.insert(i, check.clone()),
        None => entry.strip.push_back(check.clone()),
    }
    entry.strip.truncate(STRIP_LEN);
    if check.slot > Utc::now() - chrono::Duration::hours(24) {
        entry.day.add(check);
    }
    entry.website.observe(check);
    true
}

fn render(entry: &Entry, timezone: Tz) -> Arc<Row> {
    let website = &entry.website;
    Arc::new(Row {
        id: website.id,
        search: format!("{}\n{}", website.name, website.url).to_lowercase(),
        status: website.status(),
        html: home::render_row(entry, timezone).into_string().into(),
    })
}

fn ordered(slots: &HashMap<WebsiteId, Slot>) -> Vec<WebsiteId> {
    let mut order: Vec<(String, WebsiteId)> = slots
        .values()
        .map(|slot| {
            let website = &slot.entry.website;
            (website.name.to_lowercase(), website.id)
        })
        .collect();
    order.sort();
    order.into_iter().map(|(_, id)| id).collect()
}

fn count(totals: &mut Totals, status: Status) {
    match status {
        Status::Up => totals.up += 1,
        Status::Down => totals.down += 1,
        Status::Pending => totals.pending += 1,
    }
}

fn totals_of(state: &State_) -> Totals {
    let mut totals = Totals::default();
    for slot in state.slots.values() {
        count(&mut totals, slot.entry.website.status());
    }
    totals
}

#[derive(Debug, Deserialize)]
pub struct LiveQuery {
    /// Only this website's updates, for its page.
    website: Option<WebsiteId>,
    /// The update the page was rendered at.
    v: Option<u64>,
}

/// `GET /live`: Server-Sent Events for the list (`row-{id}`, `totals`, `reload`)
/// or, with `?website=ID`, for one website's page (`check`).
pub async fn stream(
    State(state): State<AppState>,
    _reader: Reader,
    Query(query): Query<LiveQuery>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let board = state.board.clone();
    // Listen first, then compare: nothing can fall between the two.
    let updates = board.subscribe();
    let seen = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .or(query.v);
    let current = board.version();
    let website = query.website;
    let catch_up = (seen != Some(current)).then(|| reload_event(website, current));
    let updates = stream::unfold((updates, board), move |(mut updates, board)| async move {
        loop {
            match updates.recv().await {
                Ok(update) => {
                    let events = events_for(&update, website);
                    if !events.is_empty() {
                        return Some((events, (updates, board)));
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let version = board.version();
                    return Some((vec![reload_event(website, version)], (updates, board)));
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
    .flat_map(stream::iter);
    let open = state.metrics.open(crate::metrics::Connection::LiveEvents);
    let events = stream::iter(catch_up)
        .chain(updates)
        // The stream owns the guard: the connection counts as open while it lives.
        .map(move |event| {
            let _ = &open;
            Ok::<_, Infallible>(event)
        })
        .take_until(state.board.inner.shutdown.clone().cancelled_owned());
    Ok(sse(events))
}

fn sse(events: impl Stream<Item = Result<SseEvent, Infallible>> + Send + 'static) -> Response {
    let mut response = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    // Proxies must pass events on as they come.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    response
}

fn reload_event(website: Option<WebsiteId>, version: u64) -> SseEvent {
    let name = if website.is_some() { "check" } else { "reload" };
    SseEvent::default()
        .event(name)
        .id(version.to_string())
        .data(version.to_string())
}

fn events_for(update: &(u64, Update), website: Option<WebsiteId>) -> Vec<SseEvent> {
    let (version, update) = update;
    let id = version.to_string();
    match (update, website) {
        (
            Update::Row {
                id: row,
                html,
                totals,
            },
            None,
        ) => vec![
            SseEvent::default()
                .event(format!("row-{row}"))
                .data(html.as_ref()),
            SseEvent::default()
                .event("totals")
                .id(id)
                .data(totals.as_ref()),
        ],
        (Update::Row { id: row, .. }, Some(wanted)) if *row == wanted => {
            vec![reload_event(website, *version)]
        }
        (Update::Reload(_), None) => vec![reload_event(None, *version)],
        (Update::Reload(about), Some(wanted)) if about.is_none_or(|id| id == wanted) => {
            vec![reload_event(website, *version)]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn check(slot: i64, up: bool) -> Check {
        let at = DateTime::from_timestamp(slot, 0).unwrap();
        Check {
            website_id: 1,
            slot: at,
            checked_at: at,
            up,
            status_code: up.then_some(200),
            response_time_ms: 10,
            error: None,
        }
    }

    fn entry() -> Entry {
        let now = Utc::now();
        Entry {
            website: Website {
                id: 1,
                name: "a".into(),
                url: "http://a.test/".into(),
                interval: Duration::from_secs(60),
                timeout: Duration::from_secs(10),
                paused: false,
                created_at: now,
                updated_at: now,
                last_check: None,
                status_since: None,
            },
            strip: VecDeque::new(),
            day: Tally::default(),
        }
    }

    #[test]
    fn checks_are_kept_newest_first_once_each() {
        let mut e = entry();
        let now = Utc::now().timestamp();
        assert!(add_check(&mut e, &check(now - 60, true)));
        assert!(add_check(&mut e, &check(now, false)));
        assert!(add_check(&mut e, &check(now - 120, true)), "late arrival");
        assert!(!add_check(&mut e, &check(now, false)), "duplicate");
        let slots: Vec<i64> = e.strip.iter().map(|c| c.slot.timestamp()).collect();
        assert_eq!(slots, [now, now - 60, now - 120]);
        assert_eq!(e.website.status(), Status::Down);
        assert_eq!(e.day.checks, 3);
        assert_eq!(e.website.status_since.unwrap().timestamp(), now);
        for i in 1..=40 {
            add_check(&mut e, &check(now + i, true));
        }
        assert_eq!(e.strip.len(), STRIP_LEN);
        assert_eq!(e.strip[0].slot.timestamp(), now + 40);
    }
}
