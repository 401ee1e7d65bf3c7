//! Reads. Every one needs read access: anyone with `--public-read`, else a
//! signed-in user.

use async_graphql::{Context, ID, InputObject, Object, Result};

use super::types::{Cluster, Status, User, Website};
use super::{caller, errors, page_size, parse_id, services};
use crate::domain;
use crate::websites::Selection;

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
        let selection = Selection {
            status: filter.status.map(domain::Status::from),
            name_contains: needle.as_deref(),
            after: after.map(|a| parse_id(&a, "after")).transpose()?,
            first: first.map(page_size).transpose()?.map(|n| n as usize),
        };
        let websites = services(ctx)
            .websites
            .select(&selection)
            .await
            .map_err(errors::store)?;
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
