//! The operations on websites that every front door (pages, GraphQL, REST) shares:
//! validate, store, announce. Announcing is what makes a change reach the checker
//! at once, without a restart.

use std::sync::Arc;

use chrono::{Duration, Utc};
use chrono_tz::Tz;

use crate::checker::{Probe, check_from};
use crate::domain::{
    Check, CheckDefaults, DayStat, NewWebsite, Tally, ValidationError, Website, WebsiteId,
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
    /// The list as last read, with the event bus version it was read at. Every
    /// change to a website or its state is published as an event, so the list is
    /// read again only after something happened, not on every request.
    list: Arc<tokio::sync::Mutex<Option<CachedList>>>,
}

/// The event bus version a list was read at, and the list.
type CachedList = (u64, Arc<Vec<Website>>);

impl Websites {
    pub fn new(store: DynStore, events: EventBus, defaults: CheckDefaults, timezone: Tz) -> Self {
        Self {
            store,
            events,
            defaults,
            timezone,
            list: Arc::default(),
        }
    }

    /// All websites ordered by name, each with its last check.
    pub async fn list(&self) -> Result<Arc<Vec<Website>>, StoreError> {
        let mut cached = self.list.lock().await;
        let version = self.events.version();
        if let Some((seen, list)) = cached.as_ref()
            && *seen == version
        {
            return Ok(list.clone());
        }
        let list = Arc::new(self.store.websites().await?);
        *cached = Some((version, list.clone()));
        Ok(list)
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
        self.announce(ChangeKind::Created, &website);
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
        self.announce(ChangeKind::Updated, &website);
        Ok(website)
    }

    /// Deletes the website with its history; returns it as it was.
    pub async fn delete(&self, id: WebsiteId) -> Result<Website, WebsiteError> {
        let website = self
            .store
            .delete_website(id)
            .await?
            .ok_or(WebsiteError::NotFound(id))?;
        self.announce(ChangeKind::Deleted, &website);
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
        self.events.publish_recorded(recorded);
        Ok(check)
    }

    fn announce(&self, kind: ChangeKind, website: &Website) {
        self.events
            .publish(Event::WebsiteChanged(Arc::new(WebsiteChange {
                kind,
                website: website.clone(),
            })));
    }
}
