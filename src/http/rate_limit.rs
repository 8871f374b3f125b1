//! The per-client rate limit: at most `RATE_LIMIT_PER_SECOND` GraphQL
//! requests per token subject per second, counted in Redis (fixed one-second
//! windows, so every replica shares the count). Over the limit the request
//! is refused with RATE_LIMITED and a retry-after hint. If Redis cannot be
//! reached the request is let through: the limit protects the service, and
//! an outage of the counter must not become an outage of the checkout.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

use crate::limits::Breaker;
use crate::redis_conn::RedisConn;

/// Counts one request in its window and returns the window's count.
const COUNT: &str = "local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], 2) end
return n";

/// Counts requests per subject.
pub struct RateLimiter {
    redis: RedisConn,
    /// The process's Redis breaker: while open, requests are let through
    /// without waiting for Redis.
    breaker: Breaker,
    prefix: String,
    per_second: u32,
    script: Script,
    /// The second of the last "counter unavailable" warning.
    warned: AtomicU64,
}

impl RateLimiter {
    /// `per_second` 0 turns the limit off.
    pub fn new(redis: RedisConn, prefix: &str, per_second: u32, breaker: Breaker) -> Self {
        Self {
            redis,
            breaker,
            prefix: prefix.to_owned(),
            per_second,
            script: Script::new(COUNT),
            warned: AtomicU64::new(0),
        }
    }

    /// Ok, or how long until the subject's next window.
    pub async fn admit(&self, subject: &str) -> Result<(), Duration> {
        if self.per_second == 0 || self.breaker.is_open() {
            return Ok(());
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let key = window_key(&self.prefix, subject, now.as_secs());
        let counted = self.script.key(key).invoke_async::<u64>(&mut self.redis.clone()).await;
        self.breaker.record(&counted);
        match counted {
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

/// The key counting `subject`'s requests in `second`. Its hash tag is
/// `rl:` and the subject, so a subject's windows share one Redis Cluster
/// slot: a brace in the subject only ends the tag early, the same way for
/// every window of that subject, and the tag is never empty (the prefix has
/// no braces).
fn window_key(prefix: &str, subject: &str, second: u64) -> String {
    format!("{prefix}ratelimit:{{rl:{subject}}}:{second}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The part of a key Redis Cluster hashes.
    fn hash_tag(key: &str) -> &str {
        key.find('{')
            .and_then(|open| key[open + 1..].find('}').map(|len| &key[open + 1..open + 1 + len]))
            .filter(|tag| !tag.is_empty())
            .unwrap_or(key)
    }

    #[test]
    fn a_subjects_windows_share_one_hash_tag() {
        for subject in ["checkout-1", "a}b", "}", "{x}", "", "ü;=:"] {
            let keys: Vec<String> = [0, 1, 2, 86_400]
                .iter()
                .map(|s| window_key("p:", subject, *s))
                .collect();
            let tag = hash_tag(&keys[0]);
            assert!(tag.starts_with("rl:"), "{subject:?}: {tag}");
            assert!(keys.iter().all(|k| hash_tag(k) == tag), "{subject:?}: {keys:?}");
        }
        assert_ne!(hash_tag(&window_key("p:", "a", 1)), hash_tag(&window_key("p:", "b", 1)));
    }
}
