//! The `usage-reconciler` worker: folds the usage deltas that applies and
//! releases wrote into the stored usage counts
//! ([`crate::store::redemptions::fold_usage_deltas`]) every 200 ms, a full
//! fold again at once while the backlog lasts, and once more when the
//! process stops. Its cost is what changed, not how many redemptions exist.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::store::redemptions::{DELTAS_PER_FOLD, fold_usage_deltas};

/// How often the deltas are folded.
const FOLD_EVERY: Duration = Duration::from_millis(200);

/// Folds the usage deltas.
pub struct ReconcileUsage(pub DatabaseConnection);

impl Worker for ReconcileUsage {
    const NAME: &'static str = "usage-reconciler";

    async fn run_once(&mut self, stop: &CancellationToken) -> Result<(), String> {
        while !stop.is_cancelled() {
            let folded = fold_usage_deltas(&self.0).await.map_err(|e| e.into_cause())?;
            if folded < DELTAS_PER_FOLD as u64 {
                break;
            }
        }
        Ok(())
    }

    async fn wait(&mut self) {
        tokio::time::sleep(FOLD_EVERY).await;
    }

    async fn finish(&mut self) {
        if let Err(e) = fold_usage_deltas(&self.0).await {
            tracing::warn!(error = %e.into_cause(), "folding the usage deltas at shutdown failed; another replica folds them");
        }
    }
}
