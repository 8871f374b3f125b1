//! The outbox relay: publishes PENDING outbox rows, in creation order, to
//! the Redis Stream `<REDIS_KEY_PREFIX><EVENTS_STREAM>` (one field `event`
//! holding the JSON envelope), then marks them PUBLISHED.
//!
//! - Run by the `outbox-relay` worker ([`crate::workers::relay`]), woken by
//!   `NOTIFY outbox`, with a polling fallback every [`POLL_EVERY`].
//! - Rows are claimed `FOR UPDATE SKIP LOCKED` in batches, and each batch runs
//!   under a transaction-scoped advisory lock: several replicas relay, one
//!   batch at a time, so events leave in creation order and a row is never
//!   published twice in the normal case (a crash between XADD and COMMIT
//!   publishes it again: delivery is at least once; consumers dedupe by id).
//! - A failed publish schedules the row again with exponential backoff and
//!   jitter; after `OUTBOX_MAX_ATTEMPTS` the row is DEAD (retryOutboxEvent
//!   puts it back).

use std::time::Duration;

use crate::redis_conn::RedisConn;
use rand::Rng;
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::events::{Envelope, VERSION};
use crate::error::{AppError, AppResult};
use crate::store::outbox;

/// The worker's polling fallback ([`crate::workers::relay`]).
pub const POLL_EVERY: Duration = Duration::from_secs(1);
/// Rows per batch.
const BATCH: i64 = 200;
/// Longest retry delay.
const MAX_DELAY: Duration = Duration::from_secs(300);

/// Relay settings.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Full stream key (prefix included).
    pub stream: String,
    pub maxlen: usize,
    pub max_attempts: i32,
    pub retry_base: Duration,
}

/// The delay before attempt `attempts + 1`: base x 2^(attempts-1), capped, with ±25 % jitter.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempts - 1).clamp(0, 20));
    let capped = exp.min(MAX_DELAY);
    let jitter = rand::rng().random_range(0.75..1.25);
    capped.mul_f64(jitter)
}

/// Publishes one batch; returns how many rows it published.
#[tracing::instrument(skip_all)]
pub async fn relay_batch(db: &DatabaseConnection, redis: &RedisConn, config: &RelayConfig) -> AppResult<usize> {
    let txn = db.begin().await?;
    outbox::lock_relay(&txn).await?;
    let rows = outbox::claim_due(&txn, BATCH).await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(0);
    }
    let mut pipe = redis::pipe();
    for row in &rows {
        let envelope = Envelope {
            id: row.id.to_string(),
            version: Some(VERSION),
            event_type: row.event_type.clone(),
            aggregate_type: row.aggregate_type.clone(),
            aggregate_id: row.aggregate_id.clone(),
            occurred_at: row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            payload: row.payload.clone(),
        };
        let json = serde_json::to_string(&envelope).map_err(|e| AppError::internal_from("envelope", e))?;
        pipe.cmd("XADD")
            .arg(&config.stream)
            .arg("MAXLEN")
            .arg("~")
            .arg(config.maxlen)
            .arg("*")
            .arg("event")
            .arg(json)
            .ignore();
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    match pipe.query_async::<()>(&mut redis.clone()).await {
        Ok(()) => {
            outbox::mark_published(&txn, &ids).await?;
            txn.commit().await?;
            Ok(rows.len())
        }
        Err(e) => {
            // The whole batch failed (the stream is one key): schedule each row again.
            for row in &rows {
                let attempts = row.attempts + 1;
                let dead = attempts >= config.max_attempts;
                let delay = backoff(config.retry_base, attempts);
                outbox::schedule_retry(&txn, row.id, attempts, &e.to_string(), dead, delay).await?;
            }
            txn.commit().await?;
            Err(AppError::Unavailable(crate::error::Cause::of(
                "publishing events failed",
                e,
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(1);
        for _ in 0..50 {
            let first = backoff(base, 1).as_secs_f64();
            assert!((0.75..1.25).contains(&first), "{first}");
            let third = backoff(base, 3).as_secs_f64();
            assert!((3.0..5.0).contains(&third), "{third}");
            assert!(backoff(base, 40) <= MAX_DELAY.mul_f64(1.25));
        }
    }
}
