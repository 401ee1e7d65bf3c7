//! Retention: raw checks are deleted after the retention period, aggregates after
//! theirs. Deletion walks one website at a time in small batches with a pause in
//! between, so it never holds the database long enough to delay the writer.
//!
//! The same pass first compacts raw checks of hours that ended over an hour ago,
//! where the store packs them (PostgreSQL), a day per call.

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

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Raw checks moved into compact storage.
    pub compacted: u64,
    /// Raw checks deleted.
    pub checks: u64,
    /// Aggregate rows deleted.
    pub aggregates: u64,
}

impl Retention {
    /// One pass over every website.
    pub async fn prune_once(
        &self,
        store: &DynStore,
        cancel: &CancellationToken,
    ) -> crate::store::Result<Pass> {
        let now = Utc::now();
        let before = now - chrono::Duration::from_std(self.checks).unwrap_or_default();
        // The current and the previous hour stay as they are.
        let compact_before = now - chrono::Duration::hours(1);
        let mut pass = Pass::default();
        for website in store.websites().await? {
            loop {
                if cancel.is_cancelled() {
                    return Ok(pass);
                }
                let moved = store.compact_checks(website.id, compact_before).await?;
                pass.compacted += moved;
                if moved == 0 {
                    break;
                }
                tokio::time::sleep(self.pause).await;
            }
            loop {
                if cancel.is_cancelled() {
                    return Ok(pass);
                }
                let deleted = store.prune_checks(website.id, before, self.batch).await?;
                pass.checks += deleted;
                if deleted < u64::from(self.batch) {
                    break;
                }
                tokio::time::sleep(self.pause).await;
            }
        }
        let aggregates_before =
            now - chrono::Duration::from_std(self.aggregates).unwrap_or_default();
        pass.aggregates = store.prune_aggregates(aggregates_before).await?;
        Ok(pass)
    }
}

/// Prunes now and then every `retention.every` until cancelled.
pub async fn run_retention(store: DynStore, retention: Retention, cancel: CancellationToken) {
    loop {
        match retention.prune_once(&store, &cancel).await {
            Ok(pass) => {
                if pass.compacted > 0 {
                    tracing::debug!(checks = pass.compacted, "compacted raw checks");
                }
                if pass.checks > 0 || pass.aggregates > 0 {
                    tracing::info!(
                        checks = pass.checks,
                        aggregates = pass.aggregates,
                        "pruned data past its retention"
                    );
                }
            }
            Err(err) => tracing::warn!(error = %err, "pruning old checks failed; will retry"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(retention.every) => {}
        }
    }
}
