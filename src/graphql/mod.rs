//! The GraphQL API: queries, mutations and subscriptions over the same operations
//! the pages use. It knows nothing of HTTP: the edge puts the [`Caller`] and the
//! client's [`ClientInfo`] into each request's data.

mod errors;
mod mutation;
mod query;
mod subscription;
mod types;

use async_graphql::{Context, ID, Schema};

use crate::auth::{Accounts, Caller, ClientInfo};
use crate::checker::Probe;
use crate::events::EventBus;
use crate::store::DynStore;
use crate::websites::Websites;

pub use errors::coded as coded_error;
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

pub type AppSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Deepest query accepted; the deepest useful one (a website's checks' edges'
/// node's error) is 6 levels.
pub const MAX_DEPTH: usize = 12;
/// Most fields a query may select, counting each once.
pub const MAX_COMPLEXITY: usize = 1000;

/// What resolvers work with, shared by every request.
#[derive(Clone)]
pub struct Services {
    pub store: DynStore,
    pub websites: Websites,
    pub accounts: Accounts,
    pub events: EventBus,
    pub probe: Probe,
    pub leadership: crate::leader::Leadership,
}

pub fn schema(services: Services) -> AppSchema {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(services)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .finish()
}

/// The schema in SDL, as `sitepulse schema` prints it and `schema.graphql` holds it.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl()
}

fn services<'a>(ctx: &Context<'a>) -> &'a Services {
    ctx.data_unchecked::<Services>()
}

/// The caller; anonymous when the edge put none in (never happens over HTTP).
fn caller<'a>(ctx: &Context<'a>) -> std::borrow::Cow<'a, Caller> {
    match ctx.data_opt::<Caller>() {
        Some(caller) => std::borrow::Cow::Borrowed(caller),
        None => std::borrow::Cow::Owned(Caller {
            identity: None,
            public_read: false,
        }),
    }
}

fn client(ctx: &Context<'_>) -> ClientInfo {
    ctx.data_opt::<ClientInfo>().copied().unwrap_or(ClientInfo {
        ip: std::net::Ipv4Addr::UNSPECIFIED.into(),
        https: false,
    })
}

/// Largest page a list argument `first` may ask for.
pub const MAX_PAGE: u32 = 1000;

/// A `first` argument: 1 to [`MAX_PAGE`].
fn page_size(first: i32) -> async_graphql::Result<u32> {
    u32::try_from(first)
        .ok()
        .filter(|n| (1..=MAX_PAGE).contains(n))
        .ok_or_else(|| {
            errors::invalid(crate::domain::ValidationError::new(
                "first",
                format!("first must be between 1 and {MAX_PAGE}"),
            ))
        })
}

fn parse_id(id: &ID, field: &'static str) -> async_graphql::Result<i64> {
    id.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        errors::invalid(crate::domain::ValidationError::new(
            field,
            format!("{:?} is not a valid id", id.as_str()),
        ))
    })
}
