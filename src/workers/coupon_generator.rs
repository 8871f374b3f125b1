//! The `coupon-generator` worker: generates the codes of large coupon batches.
//!
//! It claims the oldest unfinished batch nobody holds under a lease, then
//! generates it chunk by chunk ([`coupon_batches::generate_chunk`]), each
//! chunk one transaction that re-checks and extends the lease. A worker that
//! dies leaves its lease to run out; another worker then claims the batch and
//! resumes from its committed `generated` count, so no code is lost or made
//! twice. On shutdown the worker finishes its chunk and hands the lease back.
//! Woken by `NOTIFY coupon_batches`, with a polling fallback.

use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::{Wakeup, Worker};
use crate::admin::coupon_batches::{self, CHUNK};
use crate::error::AppResult;
use crate::store::coupon_batches as repo;
use crate::store::coupon_batches::CHANNEL;

/// Polling fallback (also how soon an expired lease is noticed).
const POLL_EVERY: Duration = Duration::from_secs(1);

/// Runs one chunk of a held batch; false when the lease was lost or the batch finished.
async fn step(db: &DatabaseConnection, id: Uuid, owner: Uuid, lease: Duration) -> AppResult<bool> {
    let txn = db.begin().await?;
    let Some(batch) = repo::hold(&txn, id, owner).await? else {
        tracing::warn!(batch.id = %id, "lost the lease of a coupon batch; another worker resumes it");
        return Ok(false);
    };
    let pattern = coupon_batches::pattern_of(&batch)?;
    let n = (batch.requested - batch.generated).min(CHUNK);
    let batch = coupon_batches::generate_chunk(&txn, &batch, &pattern, n, lease).await?;
    txn.commit().await?;
    Ok(batch.finished_at.is_none())
}

/// Claims and generates batches until none is left or `stop` fires (the
/// batch in hand is handed back then).
async fn drain(db: &DatabaseConnection, owner: Uuid, lease: Duration, stop: &CancellationToken) -> AppResult<()> {
    while let Some(batch) = repo::claim(db, owner, lease).await? {
        tracing::info!(batch.id = %batch.id, generated = batch.generated, requested = batch.requested, "generating a coupon batch");
        loop {
            if stop.is_cancelled() {
                repo::let_go(db, batch.id, owner).await?;
                return Ok(());
            }
            if !step(db, batch.id, owner, lease).await? {
                break;
            }
        }
    }
    Ok(())
}

/// The coupon generator of one process.
pub struct CouponGenerator {
    db: DatabaseConnection,
    lease: Duration,
    owner: Uuid,
    wakeup: Wakeup,
}

impl CouponGenerator {
    /// `lease`: how long a silent worker keeps a batch.
    pub fn new(db: DatabaseConnection, lease: Duration) -> Self {
        Self {
            db,
            lease,
            owner: Uuid::now_v7(),
            wakeup: Wakeup::new(CHANNEL, POLL_EVERY),
        }
    }
}

impl Worker for CouponGenerator {
    const NAME: &'static str = "coupon-generator";

    async fn run_once(&mut self, stop: &CancellationToken) -> Result<(), String> {
        drain(&self.db, self.owner, self.lease, stop)
            .await
            .map_err(|e| e.into_cause())
    }

    async fn wait(&mut self) {
        self.wakeup.wait(&self.db).await;
    }
}
