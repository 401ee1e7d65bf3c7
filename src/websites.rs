//! The operations on websites that every front door (pages, GraphQL, REST) shares:
//! validate, store, announce. Announcing is what makes a change reach the checker
//! at once, without a restart.

use std::sync::Arc;

use crate::domain::{CheckDefaults, NewWebsite, ValidationError, Website, WebsiteId, WebsitePatch};
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

#[derive(Clone)]
pub struct Websites {
    store: DynStore,
    events: EventBus,
    defaults: CheckDefaults,
}

impl Websites {
    pub fn new(store: DynStore, events: EventBus, defaults: CheckDefaults) -> Self {
        Self {
            store,
            events,
            defaults,
        }
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

    fn announce(&self, kind: ChangeKind, website: &Website) {
        self.events
            .publish(Event::WebsiteChanged(Arc::new(WebsiteChange {
                kind,
                website: website.clone(),
            })));
    }
}
