//! Reads. Every one needs read access: anyone with `--public-read`, else a
//! signed-in user.

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::types::{Cluster, Status, User, Website};
use super::{caller, errors, page_size, parse_id, services};
use crate::domain;

#[derive(InputObject, Default)]
pub struct WebsiteFilter {
    /// Only websites with this status.
    pub status: Option<Status>,
    /// Only websites whose name contains this, ignoring case.
    pub name_contains: Option<String>,
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// The replicas serving this API: which one answered, which one runs the checker.
    async fn cluster(&self, ctx: &Context<'_>) -> Result<Cluster> {
        caller(ctx).require_read().map_err(errors::auth)?;
        let leadership = &services(ctx).leadership;
        Ok(Cluster {
            this: leadership.identity().to_owned(),
            leader: leadership.leader(),
            is_leader: leadership.is_leader(),
            election_mode: leadership.mode().into(),
        })
    }

    /// Websites ordered by name. `after` is the id of the last website of the
    /// previous page; `first` (1–1000) the page size.
    async fn websites(
        &self,
        ctx: &Context<'_>,
        filter: Option<WebsiteFilter>,
        first: Option<i32>,
        after: Option<ID>,
    ) -> Result<Vec<Website>> {
        caller(ctx).require_read().map_err(errors::auth)?;
        let filter = filter.unwrap_or_default();
        let needle = filter.name_contains.as_deref().map(str::to_lowercase);
        let mut websites: Vec<domain::Website> = services(ctx)
            .websites
            .list()
            .await
            .map_err(errors::store)?
            .iter()
            .filter(|w| filter.status.is_none_or(|s| Status::from(w.status()) == s))
            .filter(|w| {
                needle
                    .as_deref()
                    .is_none_or(|n| w.name.to_lowercase().contains(n))
            })
            .cloned()
            .collect();
        if let Some(after) = after {
            let after = parse_id(&after, "after")?;
            match websites.iter().position(|w| w.id == after) {
                Some(i) => {
                    websites.drain(..=i);
                }
                None => return Ok(Vec::new()),
            }
        }
        if let Some(first) = first {
            websites.truncate(page_size(first)? as usize);
        }
        Ok(websites.into_iter().map(Website).collect())
    }

    /// One website; null when there is none with this id.
    async fn website(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Website>> {
        caller(ctx).require_read().map_err(errors::auth)?;
        let id = parse_id(&id, "id")?;
        let website = services(ctx)
            .store
            .website(id)
            .await
            .map_err(errors::store)?;
        Ok(website.map(Website))
    }

    /// The signed-in user; null for anonymous callers.
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        caller(ctx).user().cloned().map(User::from)
    }

    /// All users (admins only).
    async fn users(&self, ctx: &Context<'_>) -> Result<Vec<User>> {
        caller(ctx).require_admin().map_err(errors::auth)?;
        let users = services(ctx)
            .accounts
            .users()
            .await
            .map_err(errors::store)?;
        Ok(users.into_iter().map(User::from).collect())
    }
}
