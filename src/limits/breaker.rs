//! The Redis breaker of one process: while Redis does not serve, requests
//! stop waiting for it. The first call that finds Redis unavailable (no
//! connection, a timeout, a cluster failing over) opens the breaker; while
//! it is open, every call fails at once with UNAVAILABLE (previews then read
//! PostgreSQL's counts, applies count in PostgreSQL alone) and one task
//! probes Redis with a PING every [`PROBE_EVERY`].
//!
//! A pool whose use or release this process could not carry to Redis is
//! *stale* there: PostgreSQL has moved past it. Before the breaker closes,
//! the probe deletes every stale pool's key, so each is seeded anew from
//! PostgreSQL on its next use: no use is counted twice or lost in the
//! switch back. At most [`MAX_STALE`] keys are remembered; past that, the
//! rest heal when their state expires (`USAGE_COUNTER_TTL`), and PostgreSQL
//! still refuses any use over a limit meanwhile.
//!
//! Its state is the `redis_breaker_open` gauge and a line of `/health/detailed`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::error::{AppError, AppResult, redis_unavailable};
use crate::metrics::Metrics;
use crate::redis_conn::RedisConn;
use uuid::Uuid;

/// How often an open breaker probes Redis.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long a probe waits for its PING (and for each batch of deletes).
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);
/// Stale pool keys remembered for the rebuild.
pub const MAX_STALE: usize = 100_000;
/// Promotions whose stale keys are deleted at once (one `DEL` each: a
/// promotion's keys share its hash tag, so one Redis Cluster slot).
const DELETE_BATCH: usize = 64;

/// Open or closed, shared by every clone.
#[derive(Clone)]
pub struct Breaker {
    open: Arc<AtomicBool>,
    stale: Arc<Mutex<Stale>>,
    redis: RedisConn,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Stale {
    /// Per promotion, its stale pools' keys.
    keys: HashMap<Uuid, HashSet<String>>,
    /// Keys remembered, all promotions together.
    count: usize,
    /// Keys not remembered because the set was full.
    overflowed: u64,
}

impl Breaker {
    /// A closed breaker over `redis`.
    pub fn new(redis: RedisConn, metrics: Arc<Metrics>) -> Self {
        Self {
            open: Arc::new(AtomicBool::new(false)),
            stale: Arc::default(),
            redis,
            metrics,
        }
    }

    /// Whether calls fail at once now.
    pub fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Ok while closed; UNAVAILABLE at once while open.
    pub fn allow(&self) -> AppResult<()> {
        if self.is_open() {
            return Err(AppError::unavailable("Redis does not answer (breaker open)"));
        }
        Ok(())
    }

    /// Notes a call's outcome: an error that says Redis does not serve opens
    /// the breaker and starts the probe.
    pub fn record<T>(&self, result: &redis::RedisResult<T>) {
        if let Err(e) = result
            && redis_unavailable(e)
        {
            self.open(e);
        }
    }

    /// Remembers keys of `promotion`'s pools whose change PostgreSQL holds
    /// and Redis may not: they are deleted before the breaker closes. Opens
    /// the breaker if it is closed.
    pub fn mark_stale(&self, promotion: Uuid, keys: impl IntoIterator<Item = String>) {
        self.remember(promotion, keys);
        if !self.is_open() {
            self.open(&"a pool's change did not reach Redis");
        }
    }

    fn remember(&self, promotion: Uuid, keys: impl IntoIterator<Item = String>) {
        let mut stale = self.stale.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = &mut *stale;
        for key in keys {
            if stale.count >= MAX_STALE {
                stale.overflowed += 1;
            } else if stale.keys.entry(promotion).or_default().insert(key) {
                stale.count += 1;
            }
        }
    }

    fn open(&self, cause: &dyn std::fmt::Display) {
        if !self.open.swap(true, Ordering::AcqRel) {
            tracing::warn!(error = %cause, "Redis does not answer: breaker open, probing");
            self.metrics.redis_breaker(true);
            tokio::spawn(self.clone().probe());
        }
    }

    /// PINGs until Redis answers, deletes the stale pools' keys, then closes.
    async fn probe(self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            let mut redis = self.redis.clone();
            let ping = async move { redis::cmd("PING").query_async::<String>(&mut redis).await };
            if !matches!(tokio::time::timeout(PROBE_TIMEOUT, ping).await, Ok(Ok(_))) {
                continue;
            }
            match self.rebuild().await {
                Ok(deleted) => {
                    self.open.store(false, Ordering::Release);
                    self.metrics.redis_breaker(false);
                    tracing::info!(
                        stale_pools = deleted,
                        "Redis answers again: stale pools dropped, breaker closed"
                    );
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "dropping stale pools failed; probing again"),
            }
        }
    }

    /// Deletes the stale keys, [`DELETE_BATCH`] promotions at a time; keys
    /// whose delete fails stay remembered. Returns how many were deleted.
    async fn rebuild(&self) -> Result<usize, String> {
        let overflowed = std::mem::take(&mut self.stale.lock().unwrap_or_else(PoisonError::into_inner).overflowed);
        if overflowed > 0 {
            tracing::warn!(
                overflowed,
                "more pools changed during the outage than are remembered: the rest are seeded anew when their state expires"
            );
        }
        let mut deleted = 0;
        // Bounded: each round takes up to DELETE_BATCH promotions out of
        // the set (a key marked again meanwhile is deleted next round).
        for _ in 0..=MAX_STALE / DELETE_BATCH {
            let batch: Vec<(Uuid, HashSet<String>)> = {
                let mut stale = self.stale.lock().unwrap_or_else(PoisonError::into_inner);
                let promotions: Vec<Uuid> = stale.keys.keys().take(DELETE_BATCH).copied().collect();
                let batch: Vec<_> = promotions
                    .into_iter()
                    .filter_map(|p| stale.keys.remove_entry(&p))
                    .collect();
                stale.count -= batch.iter().map(|(_, keys)| keys.len()).sum::<usize>();
                batch
            };
            if batch.is_empty() {
                return Ok(deleted);
            }
            let mut deletes = tokio::task::JoinSet::new();
            for (promotion, keys) in batch {
                let mut redis = self.redis.clone();
                deletes.spawn(async move {
                    let mut del = redis::cmd("DEL");
                    del.arg(keys.iter().collect::<Vec<_>>());
                    let del = del.query_async::<i64>(&mut redis);
                    let result = match tokio::time::timeout(PROBE_TIMEOUT, del).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err("deleting stale pools timed out".to_owned()),
                    };
                    (promotion, keys, result)
                });
            }
            let mut failure = None;
            while let Some(joined) = deletes.join_next().await {
                let (promotion, keys, result) = joined.map_err(|e| e.to_string())?;
                match result {
                    Ok(()) => deleted += keys.len(),
                    Err(e) => {
                        // Remembered again, for the next probe.
                        self.remember(promotion, keys);
                        failure = Some(e);
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Err("pools kept turning stale while rebuilding".into())
    }
}
