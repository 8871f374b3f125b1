//! The Redis breaker of one process: while Redis does not serve, requests
//! stop waiting for it. The first call that finds Redis unavailable (no
//! connection, a timeout, a cluster failing over) opens the breaker; while
//! it is open, every call fails at once with UNAVAILABLE (previews then read
//! PostgreSQL's counts) and one task probes Redis with a PING every
//! [`PROBE_EVERY`]; the first answer closes it. Its state is the
//! `redis_breaker_open` gauge and a line of `/health/detailed`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::error::{AppError, AppResult, redis_unavailable};
use crate::metrics::Metrics;
use crate::redis_conn::RedisConn;

/// How often an open breaker probes Redis.
pub const PROBE_EVERY: Duration = Duration::from_millis(250);
/// How long a probe waits for its PING.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Open or closed, shared by every clone.
#[derive(Clone)]
pub struct Breaker {
    open: Arc<AtomicBool>,
    redis: RedisConn,
    metrics: Arc<Metrics>,
}

impl Breaker {
    /// A closed breaker over `redis`.
    pub fn new(redis: RedisConn, metrics: Arc<Metrics>) -> Self {
        Self {
            open: Arc::new(AtomicBool::new(false)),
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
            && !self.open.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(error = %e, "Redis does not answer: breaker open, probing");
            self.metrics.redis_breaker(true);
            tokio::spawn(self.clone().probe());
        }
    }

    /// PINGs until Redis answers, then closes.
    async fn probe(self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            let mut redis = self.redis.clone();
            let ping = async move { redis::cmd("PING").query_async::<String>(&mut redis).await };
            if let Ok(Ok(_)) = tokio::time::timeout(PROBE_TIMEOUT, ping).await {
                self.open.store(false, Ordering::Release);
                self.metrics.redis_breaker(false);
                tracing::info!("Redis answers again: breaker closed");
                return;
            }
        }
    }
}
