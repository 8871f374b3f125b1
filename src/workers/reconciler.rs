//! The `usage-reconciler` worker: writes the stored usage counts of what
//! applies and releases touched ([`crate::redemption::reconcile`]), every
//! 200 ms, and once more when the process stops.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::redemption::reconcile::Reconciler;

/// How often touched counts are written.
const FLUSH_EVERY: Duration = Duration::from_millis(200);

/// Flushes one process's reconciler.
pub struct ReconcileUsage(pub Arc<Reconciler>);

impl Worker for ReconcileUsage {
    const NAME: &'static str = "usage-reconciler";

    async fn run_once(&mut self, _stop: &CancellationToken) -> Result<(), String> {
        self.0.flush().await;
        Ok(())
    }

    async fn wait(&mut self) {
        tokio::time::sleep(FLUSH_EVERY).await;
    }

    async fn finish(&mut self) {
        self.0.flush().await;
    }
}
