//! Live events. Each subscription reads the event bus through its own bounded
//! queue: it never slows the checker or other subscribers, and when it falls too
//! far behind it receives an `EVENTS_MISSED` error saying how many events it lost,
//! then carries on. A subscription to one website ends when that website is deleted.

use async_graphql::{Context, Enum, ID, Object, Result, Subscription};
use futures_util::Stream;
use futures_util::stream;
use tokio::sync::broadcast::error::RecvError;

use super::types::{Check, Status, Website};
use super::{caller, errors, parse_id, services};
use crate::domain::WebsiteId;
use crate::events::{self, ChangeKind, Event};

pub struct StatusChange(std::sync::Arc<events::StatusChange>);

/// A website went from UP to DOWN or back.
#[Object]
impl StatusChange {
    async fn website_id(&self) -> ID {
        ID(self.0.website_id.to_string())
    }
    async fn previous(&self) -> Status {
        self.0.previous.into()
    }
    async fn current(&self) -> Status {
        self.0.current.into()
    }
    /// The check that caused the change.
    async fn check(&self) -> Check {
        Check(self.0.check.clone())
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum WebsiteChangeKind {
    Created,
    Updated,
    Deleted,
}

pub struct WebsiteChange(std::sync::Arc<events::WebsiteChange>);

#[Object]
impl WebsiteChange {
    async fn kind(&self) -> WebsiteChangeKind {
        match self.0.kind {
            ChangeKind::Created => WebsiteChangeKind::Created,
            ChangeKind::Updated => WebsiteChangeKind::Updated,
            ChangeKind::Deleted => WebsiteChangeKind::Deleted,
        }
    }
    /// The website after the change; for a deletion, as it was.
    async fn website(&self) -> Website {
        Website(self.0.website.clone())
    }
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// Every stored check, of one website or of all.
    async fn check_completed(
        &self,
        ctx: &Context<'_>,
        website_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<Check>> + use<>> {
        let website = start(ctx, website_id.as_ref()).await?;
        Ok(watch(ctx, website, move |event| match event {
            Event::CheckCompleted(check) if website.is_none_or(|id| id == check.website_id) => {
                Some(Check((**check).clone()))
            }
            _ => None,
        }))
    }

    /// Changes from UP to DOWN and back, with the check that caused them.
    async fn status_changed(
        &self,
        ctx: &Context<'_>,
        website_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<StatusChange>> + use<>> {
        let website = start(ctx, website_id.as_ref()).await?;
        Ok(watch(ctx, website, move |event| match event {
            Event::StatusChanged(change) if website.is_none_or(|id| id == change.website_id) => {
                Some(StatusChange(change.clone()))
            }
            _ => None,
        }))
    }

    /// Websites created, updated and deleted.
    async fn website_changed(
        &self,
        ctx: &Context<'_>,
        website_id: Option<ID>,
    ) -> Result<impl Stream<Item = Result<WebsiteChange>> + use<>> {
        let website = start(ctx, website_id.as_ref()).await?;
        Ok(watch(ctx, website, move |event| match event {
            Event::WebsiteChanged(change) if website.is_none_or(|id| id == change.website.id) => {
                Some(WebsiteChange(change.clone()))
            }
            _ => None,
        }))
    }
}

/// Checks read access and that the website, if one is named, exists.
async fn start(ctx: &Context<'_>, website: Option<&ID>) -> Result<Option<WebsiteId>> {
    caller(ctx).require_read().map_err(errors::auth)?;
    let Some(id) = website else {
        return Ok(None);
    };
    let id = parse_id(id, "websiteId")?;
    match services(ctx)
        .store
        .website(id)
        .await
        .map_err(errors::store)?
    {
        Some(_) => Ok(Some(id)),
        None => Err(errors::not_found("website")),
    }
}

/// The events `pick` selects; ends after the deletion of `website`.
fn watch<T, F>(
    ctx: &Context<'_>,
    website: Option<WebsiteId>,
    pick: F,
) -> impl Stream<Item = Result<T>> + use<T, F>
where
    T: Send + 'static,
    F: Fn(&Event) -> Option<T> + Send + 'static,
{
    let receiver = services(ctx).events.subscribe();
    stream::unfold(
        (receiver, pick, false),
        move |(mut receiver, pick, ended)| async move {
            if ended {
                return None;
            }
            loop {
                match receiver.recv().await {
                    Ok(event) => {
                        let deleted = matches!(&event, Event::WebsiteChanged(c)
                            if c.kind == ChangeKind::Deleted && Some(c.website.id) == website);
                        match pick(&event) {
                            Some(item) => return Some((Ok(item), (receiver, pick, deleted))),
                            None if deleted => return None,
                            None => continue,
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        let error = errors::coded(
                            "EVENTS_MISSED",
                            format!("this subscriber fell behind and missed {missed} events"),
                        );
                        return Some((Err(error), (receiver, pick, false)));
                    }
                    Err(RecvError::Closed) => return None,
                }
            }
        },
    )
}
