//! The per-client rate limit: at most `RATE_LIMIT_PER_SECOND` GraphQL
//! requests per token subject per second, counted in Redis (fixed one-second
//! windows, so every replica shares the count). Over the limit the request
//! is refused with RATE_LIMITED and a retry-after hint. If Redis cannot be
//! reached the request is let through: the limit protects the service, and
//! an outage of the counter must not become an outage of the checkout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;
use redis::aio::ConnectionManager;

/// Counts one request in its window and returns the window's count.
const COUNT: &str = "local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 2) end
return n";

/// Counts requests per subject.
pub struct RateLimiter {
    redis: ConnectionManager,
    prefix: String,
    per_second: u32,
    script: Script,
    /// The second of the last "counter unavailable" warning.
    warned: AtomicU64,
}

impl RateLimiter {
    /// `per_second` 0 turns the limit off.
    pub fn new(redis: ConnectionManager, prefix: &str, per_second: u32) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            per_second,
            script: Script::new(COUNT),
            warned: AtomicU64::new(0),
        }
    }

    /// Ok, or how long until the subject's next window.
    pub async fn admit(&self, subject: &str) -> Result<(), Duration> {
        if self.per_second == 0 {
            return Ok(());
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let key = format!("{}ratelimit:{subject}:{}", self.prefix, now.as_secs());
        match self.script.key(key).invoke_async::<u64>(&mut self.redis.clone()).await {
            Ok(n) if n > u64::from(self.per_second) => {
                Err(Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos())))
            }
            Ok(_) => Ok(()),
            Err(e) => {
                // One warning per window at most, not one per request.
                let second = now.as_secs();
                if self.warned.swap(second, Ordering::Relaxed) != second {
                    tracing::warn!(error = %e, "the rate limit counter is unavailable; letting requests through");
                }
                Ok(())
            }
        }
    }
}
