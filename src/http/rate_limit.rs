//! The per-client rate limit: at most `RATE_LIMIT_PER_SECOND` GraphQL
//! requests per token subject per second (every request of a batch
//! counts), counted in Redis (fixed one-second windows, so every replica
//! shares the count). Over the limit the request is refused with
//! RATE_LIMITED and a retry-after hint.
//!
//! When Redis cannot count (the process's breaker is open, or the call
//! fails), each role fails open or closed as configured
//! (`RATE_LIMIT_FAIL_CLOSED`, default `admin,viewer`): the checkout is let
//! through, since an outage of the counter must not become an outage of
//! the checkout; a closed role is refused with UNAVAILABLE. Logged once
//! per outage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use redis::Script;

use crate::auth::{Caller, Role};
use crate::limits::Breaker;
use crate::redis_conn::RedisConn;

/// Counts `ARGV[1]` requests in their window and returns the window's count.
const COUNT: &str = "local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if n == tonumber(ARGV[1]) then redis.call('EXPIRE', KEYS[1], 2) end
return n";

/// Why a request is not admitted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refused {
    /// Over the limit: how long until the subject's next window.
    Over(Duration),
    /// Redis cannot count and the caller's role fails closed.
    CannotCount,
}

impl From<Refused> for crate::error::AppError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Over(retry_after) => crate::error::AppError::RateLimited {
                message: format!(
                    "too many requests; retry in {:.3} s",
                    retry_after.as_secs_f64().max(0.001)
                ),
                retry_after: Some(retry_after),
            },
            Refused::CannotCount => crate::error::AppError::unavailable(
                "the rate limit cannot be counted now (Redis) and this role is refused meanwhile; retry later",
            ),
        }
    }
}

/// Counts requests per subject.
pub struct RateLimiter {
    redis: RedisConn,
    /// The process's Redis breaker: while open, nothing waits for Redis.
    breaker: Breaker,
    prefix: String,
    per_second: u32,
    /// Roles refused while Redis cannot count.
    fail_closed: Vec<Role>,
    script: Script,
    /// Whether this outage was logged.
    warned: AtomicBool,
}

impl RateLimiter {
    /// `per_second` 0 turns the limit off.
    pub fn new(redis: RedisConn, prefix: &str, per_second: u32, fail_closed: Vec<Role>, breaker: Breaker) -> Self {
        if per_second > 0 {
            let open: Vec<Role> = [Role::Admin, Role::Checkout, Role::Viewer]
                .into_iter()
                .filter(|r| !fail_closed.contains(r))
                .collect();
            tracing::info!(
                ?open,
                closed = ?fail_closed,
                "rate limit: {per_second} requests a second per subject; when Redis cannot count, these roles are let through (open) or refused (closed)"
            );
        }
        Self {
            redis,
            breaker,
            prefix: prefix.to_owned(),
            per_second,
            fail_closed,
            script: Script::new(COUNT),
            warned: AtomicBool::new(false),
        }
    }

    /// Counts `requests` more of `caller`'s subject: Ok, or why not.
    pub async fn admit(&self, caller: &Caller, requests: usize) -> Result<(), Refused> {
        if self.per_second == 0 || requests == 0 {
            return Ok(());
        }
        if self.breaker.is_open() {
            return self.cannot_count(caller, &"breaker open");
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        let key = window_key(&self.prefix, &caller.subject, now.as_secs());
        let counted = self
            .script
            .key(key)
            .arg(requests)
            .invoke_async::<u64>(&mut self.redis.clone())
            .await;
        self.breaker.record(&counted);
        match counted {
            Ok(n) if n > u64::from(self.per_second) => Err(Refused::Over(
                Duration::from_secs(1) - Duration::from_nanos(u64::from(now.subsec_nanos())),
            )),
            Ok(_) => {
                if self.warned.swap(false, Ordering::Relaxed) {
                    tracing::info!("the rate limit counts again");
                }
                Ok(())
            }
            Err(e) => self.cannot_count(caller, &e),
        }
    }

    fn cannot_count(&self, caller: &Caller, why: &dyn std::fmt::Display) -> Result<(), Refused> {
        if !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                error = %why,
                closed = ?self.fail_closed,
                "the rate limit cannot count (Redis): closed roles are refused, the others let through"
            );
        }
        if self.fail_closed.contains(&caller.role) {
            Err(Refused::CannotCount)
        } else {
            Ok(())
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
