//! The operations on websites that every front door (pages, GraphQL, REST) shares:
//! validate, store, announce. Announcing is what makes a change reach the checker
//! at once, without a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use chrono::{Duration, Utc};
use chrono_tz::Tz;

use crate::checker::{Probe, check_from};
use tokio::sync::{Mutex, broadcast};
use tokio_util::sync::CancellationToken;

use crate::domain::{
    Check, CheckDefaults, DayStat, NewWebsite, Status, Tally, ValidationError, Website, WebsiteId,
    WebsitePatch,
};
use crate::events::{ChangeKind, Event, EventBus, WebsiteChange};
use crate::store::{DynStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum WebsiteError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("no website with id {0}")]
    NotFound(WebsiteId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Longest history a caller may ask for, in days.
pub const MAX_HISTORY_DAYS: u32 = 400;

/// Counts over the windows a website's page shows; [`Tally::uptime`] gives the percentages.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Uptime {
    pub day: Tally,
    pub week: Tally,
    pub month: Tally,
}

#[derive(Clone)]
pub struct Websites {
    store: DynStore,
    events: EventBus,
    defaults: CheckDefaults,
    timezone: Tz,
    directory: Arc<Directory>,
}

/// Every website with its newest check, in list order, read from the database once
/// and then kept current from the event bus (by [`Websites::follow`]): a check
/// changes one entry, so reading the list costs no query however many checks are
/// stored each second. Until something follows the bus, every read goes to the
/// database.
#[derive(Default)]
struct Directory {
    following: AtomicBool,
    state: Mutex<Option<Entries>>,
}

struct Entries {
    loaded_at: Instant,
    /// By lower-cased name, then id: the list's order.
    ordered: BTreeMap<(String, WebsiteId), Website>,
    /// Each website's key in `ordered`.
    keys: HashMap<WebsiteId, (String, WebsiteId)>,
}

/// The directory is read again from the database this often anyway, so that an
/// event lost between replicas is not missed for long.
const RELOAD_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

fn key_of(website: &Website) -> (String, WebsiteId) {
    (website.name.to_lowercase(), website.id)
}

impl Entries {
    fn new(websites: Vec<Website>) -> Self {
        let mut entries = Self {
            loaded_at: Instant::now(),
            ordered: BTreeMap::new(),
            keys: HashMap::with_capacity(websites.len()),
        };
        for website in websites {
            entries.put(website);
        }
        entries
    }

    fn put(&mut self, website: Website) {
        let key = key_of(&website);
        if let Some(old) = self.keys.insert(website.id, key.clone()) {
            self.ordered.remove(&old);
        }
        self.ordered.insert(key, website);
    }

    fn apply(&mut self, event: &Event) {
        match event {
            Event::CheckCompleted(check) => {
                if let Some(key) = self.keys.get(&check.website_id)
                    && let Some(website) = self.ordered.get_mut(key)
                {
                    website.observe(check);
                }
            }
            Event::WebsiteChanged(change) => {
                let id = change.website.id;
                match change.kind {
                    ChangeKind::Deleted => {
                        if let Some(key) = self.keys.remove(&id) {
                            self.ordered.remove(&key);
                        }
                    }
                    ChangeKind::Created | ChangeKind::Updated => {
                        let known = self.keys.get(&id).and_then(|key| self.ordered.get(key));
                        // A change applied at once by the replica that made it
                        // arrives again from the bus, maybe after a newer one.
                        if known.is_some_and(|w| w.updated_at > change.website.updated_at) {
                            return;
                        }
                        let mut website = known.cloned().unwrap_or_else(|| change.website.clone());
                        website.redefine(&change.website);
                        self.put(website);
                    }
                }
            }
            Event::StatusChanged(_) | Event::Resync => {}
        }
    }
}

/// Which websites a list shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct Selection<'a> {
    pub status: Option<Status>,
    /// Lower-cased; matches names that contain it.
    pub name_contains: Option<&'a str>,
    /// Only websites after this one (in list order, among those selected); none
    /// when it is not among them.
    pub after: Option<WebsiteId>,
    pub first: Option<usize>,
}

impl Selection<'_> {
    fn pick<'w>(&self, ordered: impl Iterator<Item = (&'w str, &'w Website)>) -> Vec<Website> {
        let mut selected = ordered
            .filter(|(name, website)| {
                self.status.is_none_or(|s| website.status() == s)
                    && self.name_contains.is_none_or(|n| name.contains(n))
            })
            .map(|(_, website)| website);
        if let Some(after) = self.after
            && !selected.any(|w| w.id == after)
        {
            return Vec::new();
        }
        selected
            .take(self.first.unwrap_or(usize::MAX))
            .cloned()
            .collect()
    }
}

impl Websites {
    pub fn new(store: DynStore, events: EventBus, defaults: CheckDefaults, timezone: Tz) -> Self {
        Self {
            store,
            events,
            defaults,
            timezone,
            directory: Arc::default(),
        }
    }

    /// Keeps the list current from `events` until shutdown; spawn it once per
    /// process, with a receiver taken before anything is published.
    pub async fn follow(self, mut events: broadcast::Receiver<Event>, shutdown: CancellationToken) {
        self.directory.following.store(true, Ordering::Release);
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                event = events.recv() => event,
            };
            let mut state = self.directory.state.lock().await;
            match event {
                Ok(Event::Resync) => *state = None,
                Ok(event) => {
                    // Nothing loaded yet: the first reader loads what this event changed.
                    if let Some(entries) = state.as_mut() {
                        entries.apply(&event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(missed, "website list fell behind; reading it again");
                    *state = None;
                }
                Err(broadcast::error::RecvError::Closed) => break,
            }
        }
        self.directory.following.store(false, Ordering::Release);
    }

    /// All websites ordered by name, each with its last check.
    pub async fn list(&self) -> Result<Vec<Website>, StoreError> {
        self.select(&Selection::default()).await
    }

    /// The websites a list shows, in order (by name, then id), each with its last check.
    pub async fn select(&self, selection: &Selection<'_>) -> Result<Vec<Website>, StoreError> {
        if !self.directory.following.load(Ordering::Acquire) {
            let websites = self.store.websites().await?;
            let names: Vec<String> = websites.iter().map(|w| w.name.to_lowercase()).collect();
            return Ok(selection.pick(names.iter().map(String::as_str).zip(&websites)));
        }
        let mut state = self.directory.state.lock().await;
        if state
            .as_ref()
            .is_none_or(|entries| entries.loaded_at.elapsed() > RELOAD_AFTER)
        {
            *state = Some(Entries::new(self.store.websites().await?));
        }
        let entries = state.as_ref().expect("just loaded");
        Ok(selection.pick(
            entries
                .ordered
                .iter()
                .map(|((name, _), website)| (name.as_str(), website)),
        ))
    }

    /// One entry per calendar day (in the configured zone) that had checks, for the
    /// last `days` days including today, oldest first.
    pub async fn history(&self, id: WebsiteId, days: u32) -> Result<Vec<DayStat>, WebsiteError> {
        if days == 0 || days > MAX_HISTORY_DAYS {
            return Err(ValidationError::new(
                "days",
                format!("days must be between 1 and {MAX_HISTORY_DAYS}"),
            )
            .into());
        }
        let today = Utc::now().with_timezone(&self.timezone).date_naive();
        let from = today - Duration::days(i64::from(days) - 1);
        Ok(self.store.daily_history(id, from, today).await?)
    }

    /// Uptime over the last 24 hours, 7 days and 30 days.
    pub async fn uptime(&self, id: WebsiteId) -> Result<Uptime, WebsiteError> {
        let now = Utc::now();
        Ok(Uptime {
            day: self
                .store
                .tally_since(id, now - Duration::hours(24))
                .await?,
            week: self.store.tally_since(id, now - Duration::days(7)).await?,
            month: self.store.tally_since(id, now - Duration::days(30)).await?,
        })
    }

    pub async fn create(&self, input: &NewWebsite<'_>) -> Result<Website, WebsiteError> {
        let spec = input.parse(self.defaults)?;
        let website = self.store.create_website(&spec).await?;
        self.announce(ChangeKind::Created, &website).await;
        Ok(website)
    }

    pub async fn update(
        &self,
        id: WebsiteId,
        patch: &WebsitePatch<'_>,
    ) -> Result<Website, WebsiteError> {
        let current = self
            .store
            .website(id)
            .await?
            .ok_or(WebsiteError::NotFound(id))?;
        let spec = patch.apply(&current)?;
        let website = self
            .store
            .update_website(id, &spec)
            .await?
            .ok_or(WebsiteError::NotFound(id))?;
        self.announce(ChangeKind::Updated, &website).await;
        Ok(website)
    }

    /// Deletes the website with its history; returns it as it was.
    pub async fn delete(&self, id: WebsiteId) -> Result<Website, WebsiteError> {
        let website = self
            .store
            .delete_website(id)
            .await?
            .ok_or(WebsiteError::NotFound(id))?;
        self.announce(ChangeKind::Deleted, &website).await;
        Ok(website)
    }

    /// Checks the website at once, outside its schedule, stores the check (its
    /// slot is the moment it started) and announces it like any other.
    pub async fn check_now(&self, id: WebsiteId, probe: &Probe) -> Result<Check, WebsiteError> {
        let website = self
            .store
            .website(id)
            .await?
            .ok_or(WebsiteError::NotFound(id))?;
        let url = url::Url::parse(&website.url).map_err(|e| {
            ValidationError::new("url", format!("the stored URL cannot be requested: {e}"))
        })?;
        let outcome = probe.check(&url, website.timeout).await;
        let check = check_from(id, outcome.started_at, outcome);
        let recorded = self
            .store
            .record_checks(std::slice::from_ref(&check))
            .await?;
        for stored in &recorded.stored {
            self.remember(&Event::CheckCompleted(Arc::new(stored.clone())))
                .await;
        }
        self.events.publish_recorded(recorded);
        Ok(check)
    }

    async fn announce(&self, kind: ChangeKind, website: &Website) {
        let event = Event::WebsiteChanged(Arc::new(WebsiteChange {
            kind,
            website: website.clone(),
        }));
        self.remember(&event).await;
        self.events.publish(event);
    }

    /// Applies a change made here to the list at once, so that whoever made it
    /// sees it in the next list they read (the bus brings it again; applying it
    /// twice changes nothing).
    async fn remember(&self, event: &Event) {
        if let Some(entries) = self.directory.state.lock().await.as_mut() {
            entries.apply(event);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::DateTime;

    fn website(id: WebsiteId, name: &str, updated: i64) -> Website {
        let at = DateTime::from_timestamp(updated, 0).unwrap();
        Website {
            id,
            name: name.into(),
            url: format!("http://{id}.test/"),
            interval: std::time::Duration::from_secs(60),
            timeout: std::time::Duration::from_secs(10),
            paused: false,
            created_at: at,
            updated_at: at,
            last_check: None,
            status_since: None,
        }
    }

    fn check(id: WebsiteId, slot: i64, up: bool) -> Event {
        let at = DateTime::from_timestamp(slot, 0).unwrap();
        Event::CheckCompleted(Arc::new(Check {
            website_id: id,
            slot: at,
            checked_at: at,
            up,
            status_code: Some(if up { 200 } else { 500 }),
            response_time_ms: 5,
            error: None,
        }))
    }

    fn changed(kind: ChangeKind, website: Website) -> Event {
        Event::WebsiteChanged(Arc::new(WebsiteChange { kind, website }))
    }

    fn names(entries: &Entries, selection: &Selection<'_>) -> Vec<String> {
        selection
            .pick(entries.ordered.iter().map(|((n, _), w)| (n.as_str(), w)))
            .into_iter()
            .map(|w| w.name)
            .collect()
    }

    #[test]
    fn the_list_follows_checks_and_changes_in_name_order() {
        let mut entries = Entries::new(vec![
            website(1, "beta", 0),
            website(2, "Alpha", 0),
            website(3, "gamma", 0),
        ]);
        let all = Selection::default();
        assert_eq!(names(&entries, &all), ["Alpha", "beta", "gamma"]);

        entries.apply(&check(1, 120, false));
        entries.apply(&check(1, 60, true)); // older: arrives late, changes nothing
        let down = Selection {
            status: Some(Status::Down),
            ..Selection::default()
        };
        assert_eq!(names(&entries, &down), ["beta"]);
        let beta = &entries.ordered[&("beta".into(), 1)];
        assert_eq!(beta.status_since.unwrap().timestamp(), 120);

        // A rename moves the website and keeps its newest check.
        entries.apply(&changed(ChangeKind::Updated, website(1, "zeta", 10)));
        assert_eq!(names(&entries, &all), ["Alpha", "gamma", "zeta"]);
        assert_eq!(names(&entries, &down), ["zeta"]);
        // The same change again, or an older one arriving late, changes nothing.
        entries.apply(&changed(ChangeKind::Updated, website(1, "zeta", 10)));
        entries.apply(&changed(ChangeKind::Updated, website(1, "old name", 5)));
        assert_eq!(names(&entries, &all), ["Alpha", "gamma", "zeta"]);
        assert_eq!(entries.ordered.len(), 3);

        entries.apply(&changed(ChangeKind::Created, website(4, "delta", 20)));
        entries.apply(&changed(ChangeKind::Deleted, website(3, "gamma", 0)));
        entries.apply(&changed(ChangeKind::Deleted, website(3, "gamma", 0)));
        assert_eq!(names(&entries, &all), ["Alpha", "delta", "zeta"]);
        // Checks of a deleted website are ignored.
        entries.apply(&check(3, 180, true));
        assert_eq!(entries.ordered.len(), 3);
    }

    #[test]
    fn selections_page_after_a_website_among_those_selected() {
        let entries = Entries::new(
            (1..=10)
                .map(|i| website(i, &format!("site {i:02}"), 0))
                .collect(),
        );
        let page = |after, first| Selection {
            after,
            first,
            ..Selection::default()
        };
        assert_eq!(
            names(&entries, &page(None, Some(3))),
            ["site 01", "site 02", "site 03"]
        );
        assert_eq!(
            names(&entries, &page(Some(3), Some(3))),
            ["site 04", "site 05", "site 06"]
        );
        assert_eq!(names(&entries, &page(Some(10), Some(3))).len(), 0);
        assert_eq!(names(&entries, &page(Some(99), None)).len(), 0);
        let named = Selection {
            name_contains: Some("site 1"),
            ..Selection::default()
        };
        assert_eq!(names(&entries, &named), ["site 10"]);
        // `after` must be among the selected websites.
        let not_selected = Selection {
            after: Some(2),
            ..named
        };
        assert_eq!(names(&entries, &not_selected).len(), 0);
    }
}
