//! The batch worker: generates the codes of large coupon batches.
//!
//! It claims the oldest unfinished batch nobody holds under a lease, then
//! generates it chunk by chunk ([`coupon_batches::generate_chunk`]), each
//! chunk one transaction that re-checks and extends the lease. A worker that
//! dies leaves its lease to run out; another worker then claims the batch and
//! resumes from its committed `generated` count, so no code is lost or made
//! twice. On shutdown the worker finishes its chunk and hands the lease back.
//! Woken by `NOTIFY coupon_batches`, with a polling fallback.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::{DatabaseConnection, TransactionTrait};
use tokio::sync::watch;
use uuid::Uuid;

use crate::admin::coupon_batches::{self, CHANNEL, CHUNK};
use crate::error::AppResult;
use crate::store::coupon_batches as repo;
use crate::workers::{Wakeup, Workers};

/// The worker's name.
pub const NAME: &str = "coupon-generator";
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

/// Claims and generates batches until none is left or `stop` fires.
async fn drain(db: &DatabaseConnection, owner: Uuid, lease: Duration, stop: &watch::Receiver<bool>) -> AppResult<()> {
    while let Some(batch) = repo::claim(db, owner, lease).await? {
        tracing::info!(batch.id = %batch.id, generated = batch.generated, requested = batch.requested, "generating a coupon batch");
        loop {
            if *stop.borrow() {
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

/// Runs the worker until `stop` fires; `lease` is how long a silent worker keeps a batch.
pub async fn run(db: DatabaseConnection, lease: Duration, workers: Arc<Workers>, mut stop: watch::Receiver<bool>) {
    workers.started(NAME);
    let owner = Uuid::now_v7();
    let mut wakeup = Wakeup::new(CHANNEL, POLL_EVERY);
    loop {
        let outcome = drain(&db, owner, lease, &stop).await.map_err(|e| {
            let message = e.into_cause();
            tracing::warn!(error = %message, "coupon generation failed; retrying");
            message
        });
        workers.ran(NAME, outcome);
        if wakeup.wait(&db, &mut stop).await {
            workers.stopped(NAME);
            return;
        }
    }
}
