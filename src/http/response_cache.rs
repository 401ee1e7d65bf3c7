//! Answers to read-only GraphQL queries, kept until anything happens.
//!
//! Dashboards ask the same question over and over (`{ websites { … } }` every few
//! seconds from every open screen). Every change to a website or its state is an
//! event, so an answer stays true until the event bus version moves; it is also
//! dropped after a second, since uptime windows slide with the clock. Only
//! queries whose answer does not depend on who asks are kept (no `me`, `users`
//! or `apiTokens`), and only answers without errors.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, Selection, SelectionSet,
};
use axum::body::Bytes;

const MAX_AGE: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 256;
const MAX_ANSWER_BYTES: usize = 256 * 1024;
const REFILL_LOCKS: usize = 64;
/// Fields whose value depends on the caller.
const PERSONAL_FIELDS: [&str; 3] = ["me", "users", "apiTokens"];

/// What identifies an answer: the request, and whether the caller may read at all.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Key {
    query: String,
    variables: String,
    operation: Option<String>,
    may_read: bool,
}

impl Key {
    pub fn new(request: &async_graphql::Request, may_read: bool) -> Self {
        Self {
            query: request.query.clone(),
            variables: serde_json::to_string(&request.variables).unwrap_or_default(),
            operation: request.operation_name.clone(),
            may_read,
        }
    }
}

pub struct ResponseCache {
    inner: Mutex<Inner>,
    /// Whether a query may be kept, remembered per query text.
    verdicts: Mutex<HashMap<String, bool>>,
    /// One lock per share of the keys: requests for the same answer wait for
    /// one another, requests for different answers (almost always) do not.
    refill: Vec<tokio::sync::Mutex<()>>,
    hasher: RandomState,
}

impl Default for ResponseCache {
    fn default() -> Self {
        Self {
            inner: Mutex::default(),
            verdicts: Mutex::default(),
            refill: (0..REFILL_LOCKS)
                .map(|_| tokio::sync::Mutex::new(()))
                .collect(),
            hasher: RandomState::new(),
        }
    }
}

#[derive(Default)]
struct Inner {
    version: u64,
    filled_at: Option<Instant>,
    answers: HashMap<Key, Bytes>,
}

impl ResponseCache {
    /// Whether answers to this request may be kept (see the module docs).
    pub fn cacheable(&self, key: &Key) -> bool {
        if let Some(verdict) = self
            .verdicts
            .lock()
            .ok()
            .and_then(|v| v.get(&key.query).copied())
        {
            return verdict;
        }
        let verdict = cacheable(&key.query);
        if let Ok(mut verdicts) = self.verdicts.lock() {
            if verdicts.len() >= MAX_ENTRIES * 4 {
                verdicts.clear();
            }
            verdicts.insert(key.query.clone(), verdict);
        }
        verdict
    }

    /// Held while the answer for `key` is computed for the cache.
    pub async fn refill(&self, key: &Key) -> tokio::sync::MutexGuard<'_, ()> {
        let share = self.hasher.hash_one(key) as usize % self.refill.len();
        self.refill[share].lock().await
    }

    /// The kept answer, if the world has not changed since it was computed.
    pub fn get(&self, key: &Key, version: u64) -> Option<Bytes> {
        let inner = self.inner.lock().ok()?;
        let fresh =
            inner.version == version && inner.filled_at.is_some_and(|t| t.elapsed() < MAX_AGE);
        if fresh {
            inner.answers.get(key).cloned()
        } else {
            None
        }
    }

    /// Keeps an answer computed at `version` (read before the query ran).
    pub fn put(&self, key: Key, version: u64, answer: Bytes) {
        if answer.len() > MAX_ANSWER_BYTES || !self.cacheable(&key) {
            return;
        }
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let stale = inner.filled_at.is_none_or(|t| t.elapsed() >= MAX_AGE);
        if inner.version != version || stale || inner.answers.len() >= MAX_ENTRIES {
            if version < inner.version && !stale {
                return; // computed before a newer answer set was started
            }
            inner.answers.clear();
            inner.version = version;
            inner.filled_at = Some(Instant::now());
        }
        inner.answers.insert(key, answer);
    }
}

/// Queries (no mutations or subscriptions) that select no personal field.
fn cacheable(query: &str) -> bool {
    let Ok(document) = async_graphql::parser::parse_query(query) else {
        return false;
    };
    let only_queries = match &document.operations {
        DocumentOperations::Single(op) => op.node.ty == OperationType::Query,
        DocumentOperations::Multiple(ops) => {
            ops.values().all(|op| op.node.ty == OperationType::Query)
        }
    };
    only_queries && !personal(&document)
}

fn personal(document: &ExecutableDocument) -> bool {
    let in_operations = document
        .operations
        .iter()
        .any(|(_, op)| selects_personal(&op.node.selection_set.node));
    let in_fragments = document
        .fragments
        .values()
        .any(|f| selects_personal(&f.node.selection_set.node));
    in_operations || in_fragments
}

fn selects_personal(set: &SelectionSet) -> bool {
    set.items.iter().any(|item| match &item.node {
        Selection::Field(field) => {
            PERSONAL_FIELDS.contains(&field.node.name.node.as_str())
                || selects_personal(&field.node.selection_set.node)
        }
        Selection::InlineFragment(fragment) => selects_personal(&fragment.node.selection_set.node),
        Selection::FragmentSpread(_) => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_impersonal_queries_are_kept() {
        assert!(cacheable("{ websites { id name status } }"));
        assert!(cacheable(
            "query Q($id: ID!) { website(id: $id) { history { date } } }"
        ));
        assert!(!cacheable("{ me { username } }"));
        assert!(!cacheable("{ websites { id } u: users { id } }"));
        assert!(!cacheable("{ ...F } fragment F on Query { me { id } }"));
        assert!(!cacheable("mutation { logout }"));
        assert!(!cacheable("subscription { checkCompleted { up } }"));
        assert!(!cacheable("{ websites { "));
    }

    #[test]
    fn answers_last_until_the_version_moves() {
        let cache = ResponseCache::default();
        let request = async_graphql::Request::new("{ websites { id } }");
        let key = Key::new(&request, true);
        cache.put(key.clone(), 7, Bytes::from_static(b"{}"));
        assert_eq!(cache.get(&key, 7), Some(Bytes::from_static(b"{}")));
        assert_eq!(cache.get(&key, 8), None);
        assert_eq!(cache.get(&Key::new(&request, false), 7), None);
        let personal = Key::new(&async_graphql::Request::new("{ me { id } }"), true);
        cache.put(personal.clone(), 7, Bytes::from_static(b"{}"));
        assert_eq!(cache.get(&personal, 7), None);
    }

    #[test]
    fn only_requests_for_the_same_answer_wait_for_each_other() {
        use futures_util::FutureExt;
        let cache = ResponseCache::default();
        let key = |id: u32| {
            let request =
                async_graphql::Request::new("query($id: ID!) { website(id: $id) { name } }")
                    .variables(async_graphql::Variables::from_json(
                        serde_json::json!({ "id": id }),
                    ));
            Key::new(&request, true)
        };
        let share = |k: &Key| cache.hasher.hash_one(k) as usize % cache.refill.len();
        let first = key(1);
        let other = (2..).map(key).find(|k| share(k) != share(&first)).unwrap();
        let computing = cache
            .refill(&first)
            .now_or_never()
            .expect("nobody else computes");
        assert!(
            cache.refill(&first).now_or_never().is_none(),
            "the same answer waits"
        );
        assert!(
            cache.refill(&other).now_or_never().is_some(),
            "another answer does not"
        );
        drop(computing);
        assert!(cache.refill(&first).now_or_never().is_some());
    }
}
