//! Retention: raw checks are deleted after the retention period, aggregates after
//! theirs. Deletion walks one website at a time in small batches with a pause in
//! between, so it never holds the database long enough to delay the writer.

use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use crate::store::DynStore;

#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub checks: Duration,
    pub aggregates: Duration,
    /// Rows per delete statement.
    pub batch: u32,
    /// Pause between two delete statements.
    pub pause: Duration,
    /// Time between two passes.
    pub every: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            checks: Duration::from_secs(31 * 86_400),
            aggregates: Duration::from_secs(400 * 86_400),
            batch: 2000,
            pause: Duration::from_millis(20),
            every: Duration::from_secs(600),
        }
    }
}

impl Retention {
    /// One pass over every website; returns the raw checks and aggregate rows deleted.
    pub async fn prune_once(
        &self,
        store: &DynStore,
        cancel: &CancellationToken,
    ) -> crate::store::Result<(u64, u64)> {
        let now = Utc::now();
        let before = now - chrono::Duration::from_std(self.checks).unwrap_or_default();
        let mut checks = 0;
        for website in store.websites().await? {
            loop {
                if cancel.is_cancelled() {
                    return Ok((checks, 0));
                }
                let deleted = store.prune_checks(website.id, before, self.batch).await?;
                checks += deleted;
                if deleted < u64::from(self.batch) {
                    break;
                }
                tokio::time::sleep(self.pause).await;
            }
        }
        let aggregates_before =
            now - chrono::Duration::from_std(self.aggregates).unwrap_or_default();
        let aggregates = store.prune_aggregates(aggregates_before).await?;
        Ok((checks, aggregates))
    }
}

/// Prunes now and then every `retention.every` until cancelled.
pub async fn run_retention(store: DynStore, retention: Retention, cancel: CancellationToken) {
    loop {
        match retention.prune_once(&store, &cancel).await {
            Ok((0, 0)) => {}
            Ok((checks, aggregates)) => {
                tracing::info!(checks, aggregates, "pruned data past its retention")
            }
            Err(err) => tracing::warn!(error = %err, "pruning old checks failed; will retry"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(retention.every) => {}
        }
    }
}
