//! The `housekeeping` worker: every few seconds, expiry (campaigns ended,
//! `promotion.expired` and `coupon.expired` events, [`crate::expiry`]) and
//! the retention of published outbox rows.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::expiry;

/// How often it runs.
const EVERY: Duration = Duration::from_secs(5);

/// Housekeeping of one process.
pub struct Housekeeping {
    db: DatabaseConnection,
    retention: chrono::Duration,
}

impl Housekeeping {
    /// Published events older than `retention` are deleted.
    pub fn new(db: DatabaseConnection, retention: chrono::Duration) -> Self {
        Self { db, retention }
    }
}

impl Worker for Housekeeping {
    const NAME: &'static str = "housekeeping";

    async fn run_once(&mut self, _stop: &CancellationToken) -> Result<(), String> {
        let now = chrono::Utc::now();
        expiry::expire(&self.db, now).await.map_err(|e| e.into_cause())?;
        expiry::prune_outbox(&self.db, now - self.retention)
            .await
            .map_err(|e| e.into_cause())?;
        Ok(())
    }

    async fn wait(&mut self) {
        tokio::time::sleep(EVERY).await;
    }
}
