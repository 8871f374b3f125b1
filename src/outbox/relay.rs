//! The outbox relay: publishes PENDING outbox rows to the Redis Stream
//! `<REDIS_KEY_PREFIX><EVENTS_STREAM>` (one field `event` holding the JSON
//! envelope), then marks them PUBLISHED.
//!
//! - Run by the `outbox-relay` worker ([`crate::workers::relay`]), woken by
//!   `NOTIFY outbox`, with a polling fallback every [`POLL_EVERY`].
//! - Each batch runs under a transaction-scoped advisory lock (one batch at
//!   a time, across replicas) and claims rows in creation order, leaving out
//!   the rows held back behind an earlier unpublished row of their aggregate
//!   ([`outbox::claim_due`]).
//! - **Order per aggregate, whatever fails.** A batch is written in rounds,
//!   each with at most one row per aggregate (the next one of each), so a
//!   row the stream refuses never lets a later row of its aggregate pass it:
//!   that row waits for its retry (or, DEAD, for `retryOutboxEvent(s)`) and
//!   holds its aggregate's later rows back until then. Other aggregates go on.
//! - **Acknowledged before PUBLISHED.** With `EVENTS_WAIT_REPLICAS` > 0 each
//!   round ends with `WAIT`: its rows are marked only once their entries are
//!   on that many replicas, so a failover cannot drop an event the outbox
//!   already let go of. Delivery is at least once (entries written but not
//!   acknowledged, or a crash before the commit, are written again);
//!   consumers dedupe by the envelope's id.
//! - **An outage is not a fault of the rows.** When the stream does not
//!   serve (no connection, timeout, cluster down or failing over, read-only,
//!   out of memory, too few replicas acknowledged) nothing of the batch
//!   changes: no attempt is spent, and the worker backs off as a whole. Rows
//!   written before the outage in an earlier round of the batch are marked.
//!   A row the stream refuses while it serves the others is that row's
//!   failure: its attempts grow, with exponential backoff and jitter, and
//!   after `OUTBOX_MAX_ATTEMPTS` it is DEAD.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use rand::Rng;
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use super::events::{Envelope, VERSION};
use crate::error::{AppError, AppResult, redis_unavailable};
use crate::redis_conn::RedisConn;
use crate::store::outbox::{self, DueEvent};

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
    /// Replicas that must hold an entry before its row is PUBLISHED (0:
    /// none; unset: 1 on a cluster, 0 on a node).
    pub wait_replicas: Option<u32>,
    /// How long a round waits for them.
    pub wait_timeout: Duration,
}

/// The delay before attempt `attempts + 1`: base x 2^(attempts-1), capped, with ±25 % jitter.
pub fn backoff(base: Duration, attempts: i32) -> Duration {
    let exp = base.saturating_mul(1u32 << (attempts - 1).clamp(0, 20));
    let capped = exp.min(MAX_DELAY);
    let jitter = rand::rng().random_range(0.75..1.25);
    capped.mul_f64(jitter)
}

/// What one round of writes did: per envelope, written or why the stream
/// refused that one entry.
pub type Written = Vec<Result<(), String>>;

/// The stream did not serve: nothing of the round can be counted on.
#[derive(Debug)]
pub struct Outage(pub String);

/// Where the relay writes its envelopes.
pub trait EventSink: Send + Sync {
    /// Writes `envelopes` in order, as one round.
    fn write(&self, envelopes: &[Envelope]) -> impl Future<Output = Result<Written, Outage>> + Send;
}

impl<S: EventSink> EventSink for std::sync::Arc<S> {
    fn write(&self, envelopes: &[Envelope]) -> impl Future<Output = Result<Written, Outage>> + Send {
        (**self).write(envelopes)
    }
}

/// The Redis Stream: one pipeline a round (its XADDs, then `WAIT` when
/// replicas are required), on a node or a cluster (the stream is one key,
/// so one node; the pipeline's WAIT goes with it).
pub struct StreamSink {
    redis: RedisConn,
    config: RelayConfig,
}

impl StreamSink {
    pub fn new(redis: RedisConn, config: RelayConfig) -> Self {
        Self { redis, config }
    }
}

impl EventSink for StreamSink {
    async fn write(&self, envelopes: &[Envelope]) -> Result<Written, Outage> {
        if envelopes.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for envelope in envelopes {
            let json = serde_json::to_string(envelope).map_err(|e| Outage(format!("envelope: {e}")))?;
            pipe.cmd("XADD")
                .arg(&self.config.stream)
                .arg("MAXLEN")
                .arg("~")
                .arg(self.config.maxlen)
                .arg("*")
                .arg("event")
                .arg(json);
        }
        let wait = self.config.wait_replicas.unwrap_or(u32::from(self.redis.is_cluster()));
        if wait > 0 {
            let millis = u64::try_from(self.config.wait_timeout.as_millis()).unwrap_or(u64::MAX);
            pipe.cmd("WAIT").arg(wait).arg(millis);
        }
        let mut replies: Vec<redis::RedisResult<redis::Value>> = pipe
            .query_async(&mut self.redis.clone())
            .await
            .map_err(|e| Outage(e.to_string()))?;
        if wait > 0 {
            let acked = match replies.pop() {
                Some(Ok(redis::Value::Int(n))) => n,
                other => return Err(Outage(format!("WAIT answered {other:?}"))),
            };
            if acked < i64::from(wait) {
                return Err(Outage(format!("{acked} of {wait} replicas acknowledged the events")));
            }
        }
        replies
            .into_iter()
            .map(|reply| match reply {
                Ok(_) => Ok(Ok(())),
                Err(e) if redis_unavailable(&e) => Err(Outage(e.to_string())),
                Err(e) => Ok(Err(e.to_string())),
            })
            .collect()
    }
}

/// What a batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Relayed {
    /// Rows marked PUBLISHED.
    pub published: usize,
    /// Rows the stream refused (scheduled again, or DEAD).
    pub failed: usize,
}

/// Publishes one batch. Ok: what it did (nothing: the backlog is empty).
/// Err(Unavailable): an outage before anything was written; nothing changed.
#[tracing::instrument(skip_all)]
pub async fn relay_batch(db: &DatabaseConnection, sink: &impl EventSink, config: &RelayConfig) -> AppResult<Relayed> {
    let txn = db.begin().await?;
    outbox::lock_relay(&txn).await?;
    let rows = outbox::claim_due(&txn, BATCH).await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(Relayed::default());
    }
    let mut queues = by_aggregate(&rows);
    let mut published: Vec<Uuid> = Vec::new();
    let mut failed: Vec<(&DueEvent, String)> = Vec::new();
    let mut outage = None;
    while !queues.is_empty() {
        let round: Vec<&DueEvent> = queues.iter().filter_map(|q| q.front().copied()).collect();
        let envelopes: Vec<Envelope> = round.iter().map(|row| envelope(row)).collect();
        match sink.write(&envelopes).await {
            Err(Outage(cause)) => {
                outage = Some(cause);
                break;
            }
            Ok(written) if written.len() != round.len() => {
                outage = Some(format!("{} answers to {} entries", written.len(), round.len()));
                break;
            }
            Ok(written) => {
                for (queue, result) in queues.iter_mut().zip(written) {
                    let Some(row) = queue.pop_front() else { continue };
                    match result {
                        Ok(()) => published.push(row.id),
                        Err(cause) => {
                            // The rest of its aggregate waits behind it.
                            queue.clear();
                            failed.push((row, cause));
                        }
                    }
                }
                queues.retain(|q| !q.is_empty());
            }
        }
    }
    if published.is_empty() && failed.is_empty() {
        txn.rollback().await?;
        let cause = outage.unwrap_or_default();
        return Err(AppError::unavailable(format!(
            "the event stream does not serve: {cause}"
        )));
    }
    outbox::mark_published(&txn, &published).await?;
    for (row, cause) in &failed {
        let attempts = row.attempts + 1;
        let dead = attempts >= config.max_attempts;
        outbox::schedule_retry(
            &txn,
            row.id,
            attempts,
            cause,
            dead,
            backoff(config.retry_base, attempts),
        )
        .await?;
    }
    txn.commit().await?;
    if let Some(cause) = outage {
        tracing::warn!(published = published.len(), error = %cause, "the event stream stopped serving during a batch");
    }
    Ok(Relayed {
        published: published.len(),
        failed: failed.len(),
    })
}

/// The rows grouped by aggregate, each group in creation order, the groups
/// in the order of their first row.
fn by_aggregate(rows: &[DueEvent]) -> Vec<VecDeque<&DueEvent>> {
    let mut queues: Vec<VecDeque<&DueEvent>> = Vec::new();
    let mut index: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
    for row in rows {
        let key = (row.aggregate_type.as_str(), row.aggregate_id.as_str());
        let i = *index.entry(key).or_insert_with(|| {
            queues.push(VecDeque::new());
            queues.len() - 1
        });
        queues[i].push_back(row);
    }
    queues
}

fn envelope(row: &DueEvent) -> Envelope {
    Envelope {
        id: row.id.to_string(),
        version: Some(VERSION),
        event_type: row.event_type.clone(),
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id.clone(),
        occurred_at: row.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        payload: row.payload.clone(),
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
