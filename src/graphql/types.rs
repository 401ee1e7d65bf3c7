//! The GraphQL shapes of websites, checks, history, users and tokens: thin
//! wrappers that expose the domain types under the schema's names.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{
    ComplexObject, Context, Enum, ID, InputValueError, InputValueResult, Object, Result, Scalar,
    ScalarType, SimpleObject, Value,
};
use chrono::{DateTime, NaiveDate, Utc};

use super::{caller, errors, services};
use crate::auth::model;
use crate::domain;

/// A calendar day, `YYYY-MM-DD`.
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date as YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Status")]
pub enum Status {
    Up,
    Down,
    Pending,
}

impl From<Status> for domain::Status {
    fn from(s: Status) -> Self {
        match s {
            Status::Up => domain::Status::Up,
            Status::Down => domain::Status::Down,
            Status::Pending => domain::Status::Pending,
        }
    }
}

impl From<domain::Status> for Status {
    fn from(s: domain::Status) -> Self {
        match s {
            domain::Status::Up => Status::Up,
            domain::Status::Down => Status::Down,
            domain::Status::Pending => Status::Pending,
        }
    }
}

/// Green at 100 %, yellow from 99 % to below 100 %, red below 99 %.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    Green,
    Yellow,
    Red,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum CheckErrorKind {
    Dns,
    Connect,
    Tls,
    Timeout,
    Http,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Viewer,
}

impl From<model::Role> for Role {
    fn from(r: model::Role) -> Self {
        match r {
            model::Role::Admin => Role::Admin,
            model::Role::Viewer => Role::Viewer,
        }
    }
}

impl From<Role> for model::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Admin => model::Role::Admin,
            Role::Viewer => model::Role::Viewer,
        }
    }
}

/// Why a check failed.
#[derive(SimpleObject)]
pub struct CheckError {
    pub kind: CheckErrorKind,
    pub message: String,
}

pub struct Check(pub domain::Check);

/// One request to a website.
#[Object]
impl Check {
    /// `websiteId-slot` (slot in milliseconds since the epoch).
    async fn id(&self) -> ID {
        ID(format!(
            "{}-{}",
            self.0.website_id,
            self.0.slot.timestamp_millis()
        ))
    }
    async fn website_id(&self) -> ID {
        ID(self.0.website_id.to_string())
    }
    /// The scheduled time the check belongs to.
    async fn slot(&self) -> DateTime<Utc> {
        self.0.slot
    }
    /// When the request started.
    async fn checked_at(&self) -> DateTime<Utc> {
        self.0.checked_at
    }
    async fn up(&self) -> bool {
        self.0.up
    }
    /// The final HTTP status, when a response arrived.
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code.map(i32::from)
    }
    /// From the start of the request to the end of the response headers (or the failure).
    async fn response_time_ms(&self) -> i64 {
        i64::from(self.0.response_time_ms)
    }
    async fn error(&self) -> Option<CheckError> {
        self.0.error.as_ref().map(|e| CheckError {
            kind: match e.kind {
                domain::ErrorKind::Dns => CheckErrorKind::Dns,
                domain::ErrorKind::Connect => CheckErrorKind::Connect,
                domain::ErrorKind::Tls => CheckErrorKind::Tls,
                domain::ErrorKind::Timeout => CheckErrorKind::Timeout,
                domain::ErrorKind::Http => CheckErrorKind::Http,
            },
            message: e.message.clone(),
        })
    }
}

pub struct DayStat(pub domain::DayStat);

/// One calendar day of a website's history (in the service's time zone).
#[Object]
impl DayStat {
    async fn date(&self) -> Date {
        Date(self.0.date)
    }
    /// Percent of the day's checks that were up, 0–100.
    async fn availability(&self) -> f64 {
        self.0.availability()
    }
    async fn avg_response_time_ms(&self) -> Option<f64> {
        self.0.avg_response_time_ms
    }
    async fn checks(&self) -> i32 {
        i32::try_from(self.0.checks).unwrap_or(i32::MAX)
    }
    async fn colour(&self) -> Colour {
        match self.0.colour() {
            domain::Colour::Green => Colour::Green,
            domain::Colour::Yellow => Colour::Yellow,
            domain::Colour::Red => Colour::Red,
        }
    }
}

/// Percent of checks that were up; null where there were no checks.
#[derive(SimpleObject)]
pub struct Uptime {
    #[graphql(name = "last24h")]
    pub last_24h: Option<f64>,
    #[graphql(name = "last7d")]
    pub last_7d: Option<f64>,
    #[graphql(name = "last30d")]
    pub last_30d: Option<f64>,
}

pub struct Website(pub domain::Website);

#[Object]
impl Website {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn url(&self) -> &str {
        &self.0.url
    }
    async fn interval_seconds(&self) -> f64 {
        self.0.interval.as_secs_f64()
    }
    async fn timeout_seconds(&self) -> f64 {
        self.0.timeout.as_secs_f64()
    }
    async fn paused(&self) -> bool {
        self.0.paused
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    async fn status(&self) -> Status {
        self.0.status().into()
    }
    /// When the current status began.
    async fn status_since(&self) -> Option<DateTime<Utc>> {
        self.0.status_since
    }
    async fn last_check(&self) -> Option<Check> {
        self.0.last_check.clone().map(Check)
    }
    /// One entry per day with checks, for the last `days` days, oldest first.
    async fn history(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 30)] days: i32,
    ) -> Result<Vec<DayStat>> {
        let days = u32::try_from(days).unwrap_or(0);
        let stats = services(ctx)
            .websites
            .history(self.0.id, days)
            .await
            .map_err(errors::website)?;
        Ok(stats.into_iter().map(DayStat).collect())
    }
    async fn uptime(&self, ctx: &Context<'_>) -> Result<Uptime> {
        let u = services(ctx)
            .websites
            .uptime(self.0.id)
            .await
            .map_err(errors::website)?;
        Ok(Uptime {
            last_24h: u.day.uptime(),
            last_7d: u.week.uptime(),
            last_30d: u.month.uptime(),
        })
    }
    /// Raw checks, newest first, at most `first` (1–1000) per page; `from` and
    /// `to` bound the slots (from inclusive, to exclusive).
    async fn checks(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 50)] first: i32,
        after: Option<String>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<Connection<String, Check>> {
        let first = super::page_size(first)?;
        let cursor = match after {
            Some(raw) => Some(
                raw.parse::<i64>()
                    .ok()
                    .and_then(DateTime::from_timestamp_millis)
                    .ok_or_else(|| {
                        errors::invalid(domain::ValidationError::new(
                            "after",
                            "not a cursor from this list",
                        ))
                    })?,
            ),
            None => None,
        };
        let before = match (cursor, to) {
            (Some(c), Some(t)) => Some(c.min(t)),
            (c, t) => c.or(t),
        };
        let mut rows = services(ctx)
            .store
            .recent_checks(self.0.id, before, first + 1)
            .await
            .map_err(errors::store)?;
        if let Some(from) = from {
            rows.retain(|c| c.slot >= from);
        }
        let has_next = rows.len() > first as usize;
        rows.truncate(first as usize);
        let mut connection = Connection::new(cursor.is_some(), has_next);
        connection.edges.extend(
            rows.into_iter()
                .map(|c| Edge::new(c.slot.timestamp_millis().to_string(), Check(c))),
        );
        Ok(connection)
    }
}

#[derive(SimpleObject)]
#[graphql(complex)]
pub struct User {
    pub id: ID,
    pub username: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
    #[graphql(skip)]
    pub user_id: model::UserId,
}

#[ComplexObject]
impl User {
    /// The user's API tokens (their own, or any user's for an admin).
    async fn api_tokens(&self, ctx: &Context<'_>) -> Result<Vec<ApiToken>> {
        let caller = caller(ctx);
        let me = caller.require_user().map_err(errors::auth)?;
        if me.user.id != self.user_id && !me.user.is_admin() {
            return Err(errors::coded(
                "FORBIDDEN",
                "only admins see other users' tokens",
            ));
        }
        let tokens = services(ctx)
            .accounts
            .api_tokens(self.user_id)
            .await
            .map_err(errors::store)?;
        Ok(tokens.into_iter().map(ApiToken::from).collect())
    }
}

impl From<model::User> for User {
    fn from(u: model::User) -> Self {
        Self {
            id: ID(u.id.to_string()),
            username: u.username,
            role: u.role.into(),
            created_at: u.created_at,
            user_id: u.id,
        }
    }
}

/// An API token as listed; its secret is shown only when it is created.
#[derive(SimpleObject)]
pub struct ApiToken {
    pub id: ID,
    pub name: String,
    /// The token's last four characters.
    pub hint: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<model::ApiToken> for ApiToken {
    fn from(t: model::ApiToken) -> Self {
        Self {
            id: ID(t.id.to_string()),
            name: t.name,
            hint: t.hint,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

/// How the replica that runs the checker is chosen.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum ElectionMode {
    /// One instance, always the leader.
    None,
    /// A PostgreSQL advisory lock.
    Postgres,
    /// A Kubernetes Lease.
    Kube,
}

impl From<crate::leader::ElectionMode> for ElectionMode {
    fn from(mode: crate::leader::ElectionMode) -> Self {
        match mode {
            crate::leader::ElectionMode::None => ElectionMode::None,
            crate::leader::ElectionMode::Postgres => ElectionMode::Postgres,
            crate::leader::ElectionMode::Kube => ElectionMode::Kube,
        }
    }
}

/// The replicas as the one answering sees them.
#[derive(SimpleObject)]
pub struct Cluster {
    /// The replica that answered.
    #[graphql(name = "self")]
    pub this: String,
    /// The replica that runs the checker, when known.
    pub leader: Option<String>,
    /// Whether the replica that answered runs the checker.
    pub is_leader: bool,
    pub election_mode: ElectionMode,
}
