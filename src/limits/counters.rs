//! The Redis side of the usage pools: one hash per limited pool, `{n, g}`
//! (uses counted or reserved, and the generation of its seed), under the
//! promotion's hash tag `{promo:<id>}` so that every script touches one
//! Redis Cluster slot. Every key a script touches is passed in KEYS.
//!
//! A key ends with the pool's customer id as sent: any string is safe
//! there (a key is binary, its fixed part comes first and nothing parses
//! it back). No Redis value encodes client text.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use crate::redis_conn::RedisConn;
use redis::Script;
use tracing::Instrument;
use uuid::Uuid;

use super::{Breaker, Pool, Scope};
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("reserve.lua")));
static GIVE_BACK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("give_back.lua")));
static SEED: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("seed.lua")));
static COUNT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("count.lua")));

/// `<prefix>{promo:<promotion>}:n:<pool>`: the owner and customer come last,
/// after a part that names the scope, so no two pools share a key.
fn pool_key(prefix: &str, promotion: Uuid, pool: &Pool) -> String {
    let base = format!("{prefix}{{promo:{promotion}}}:n:");
    match pool.scope {
        Scope::Promotion => format!("{base}p"),
        Scope::PromotionCustomer => format!("{base}pc:{}", pool.customer_id()),
        Scope::Coupon => format!("{base}c:{}", pool.owner),
        Scope::CouponCustomer => format!("{base}cc:{}:{}", pool.owner, pool.customer_id()),
    }
}

/// The outcome of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Every pool counted one more: the generation of each, to give it back with.
    Taken(Vec<String>),
    /// The pool at this index has no state in Redis: seed it, then retry.
    NeedsSeed(usize),
    /// The pool at this index is at its limit.
    Full(usize),
}

/// The usage pools in Redis.
#[derive(Clone)]
pub struct Counters {
    redis: RedisConn,
    prefix: String,
    ttl: Duration,
    metrics: Arc<Metrics>,
    breaker: Breaker,
}

impl Counters {
    /// Pools under `prefix` (REDIS_KEY_PREFIX) whose state lives `ttl` after
    /// its seed (then it is seeded anew from PostgreSQL): the longest a
    /// reservation never recorded stays counted (USAGE_COUNTER_TTL).
    pub fn new(redis: RedisConn, prefix: &str, ttl: Duration, metrics: Arc<Metrics>) -> Self {
        Self {
            breaker: Breaker::new(redis.clone(), metrics.clone()),
            redis,
            prefix: prefix.to_owned(),
            ttl: ttl.max(Duration::from_secs(1)),
            metrics,
        }
    }

    /// This process's Redis breaker (every call here goes through it).
    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    /// The key of `pool` of `promotion`.
    pub fn key(&self, promotion: Uuid, pool: &Pool) -> String {
        pool_key(&self.prefix, promotion, pool)
    }

    /// Runs one script call in a `redis` span, timing it for the metrics.
    async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &'static str,
        invocation: redis::ScriptInvocation<'_>,
    ) -> AppResult<T> {
        let span = tracing::info_span!(
            "redis",
            otel.name = %format!("EVALSHA {script}"),
            otel.kind = "client",
            db.system = "redis",
            db.operation = "EVALSHA",
            redis.script = script,
        );
        self.breaker.allow()?;
        let started = Instant::now();
        let result = invocation.invoke_async(&mut self.redis.clone()).instrument(span).await;
        self.breaker.record(&result);
        self.metrics.redis_script(script, result.is_ok(), started.elapsed());
        Ok(result?)
    }

    /// Reserves one use in each of `pools` (limited ones, of one promotion).
    #[tracing::instrument(skip_all, fields(promotion.id = %promotion))]
    pub async fn reserve(&self, promotion: Uuid, pools: &[Pool]) -> AppResult<Reserved> {
        let mut invocation = RESERVE.prepare_invoke();
        for pool in pools {
            invocation
                .key(self.key(promotion, pool))
                .arg(pool.limit.map_or(i64::MAX, i64::from));
        }
        let reply: Vec<String> = self.invoke("reserve", invocation).await.inspect_err(|e| {
            // The apply goes on in PostgreSQL alone (and Redis may have
            // counted it after all): these pools are rebuilt on recovery.
            self.stale_on_outage(e, promotion, pools);
        })?;
        let index = || {
            reply
                .get(1)
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| i.checked_sub(1))
                .filter(|i| *i < pools.len())
        };
        match reply.first().map(String::as_str) {
            Some("OK") if reply.len() == pools.len() + 1 => Some(Reserved::Taken(reply[1..].to_vec())),
            Some("SEED") => index().map(Reserved::NeedsSeed),
            Some("FULL") => index().map(Reserved::Full),
            _ => None,
        }
        .ok_or_else(|| AppError::internal(format!("reserve.lua answered {reply:?}")))
    }

    /// Gives reserved uses back: `generations` as [`Reserved::Taken`] gave
    /// them (a pool seeded anew since is left alone), or None for recorded
    /// uses that a release gives back. Idempotent per reservation only in
    /// that a pool never goes below 0; the caller gives each back once.
    pub async fn give_back(&self, promotion: Uuid, pools: &[Pool], generations: Option<&[String]>) -> AppResult<()> {
        if pools.is_empty() {
            return Ok(());
        }
        let mut invocation = GIVE_BACK.prepare_invoke();
        for (i, pool) in pools.iter().enumerate() {
            let generation = generations.and_then(|g| g.get(i)).map_or("", String::as_str);
            invocation.key(self.key(promotion, pool)).arg(generation);
        }
        let _: i64 = self
            .invoke("give_back", invocation)
            .await
            .inspect_err(|e| self.stale_on_outage(e, promotion, pools))?;
        Ok(())
    }

    /// Seeds a pool with PostgreSQL's count, unless it has state.
    pub async fn seed(&self, promotion: Uuid, pool: &Pool, used: i64) -> AppResult<()> {
        let mut invocation = SEED.prepare_invoke();
        invocation
            .key(self.key(promotion, pool))
            .arg(used)
            .arg(rand::random::<u64>())
            .arg(self.ttl.as_secs());
        let _: i64 = self.invoke("seed", invocation).await?;
        Ok(())
    }

    /// Drops a pool's state, so that the next use seeds it from PostgreSQL.
    pub async fn forget(&self, promotion: Uuid, pool: &Pool) -> AppResult<()> {
        let deleted = async {
            self.breaker.allow()?;
            let result = redis::cmd("DEL")
                .arg(self.key(promotion, pool))
                .query_async::<i64>(&mut self.redis.clone())
                .await;
            self.breaker.record(&result);
            Ok(result?)
        };
        deleted
            .await
            .map(|_: i64| ())
            .inspect_err(|e| self.stale_on_outage(e, promotion, std::slice::from_ref(pool)))
    }

    /// A change of `pools` that Redis did not take because it does not
    /// serve: the breaker rebuilds them before it closes.
    fn stale_on_outage(&self, error: &AppError, promotion: Uuid, pools: &[Pool]) {
        if matches!(error, AppError::Unavailable(_)) {
            self.breaker
                .mark_stale(promotion, pools.iter().map(|pool| self.key(promotion, pool)));
        }
    }

    /// Uses per pool (None: no state in Redis), without changing anything.
    pub async fn counts(&self, promotion: Uuid, pools: &[Pool]) -> AppResult<Vec<Option<i64>>> {
        if pools.is_empty() {
            return Ok(Vec::new());
        }
        let mut invocation = COUNT.prepare_invoke();
        for pool in pools {
            invocation.key(self.key(promotion, pool));
        }
        let counts: Vec<i64> = self.invoke("count", invocation).await?;
        Ok(counts.into_iter().map(|c| (c >= 0).then_some(c)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_distinct_per_scope_owner_and_customer_and_keep_their_hash_tag_first() {
        let promotion = Uuid::from_u128(1);
        let pool = |scope, owner: u128, customer: Option<&str>| Pool {
            scope,
            owner: Uuid::from_u128(owner),
            customer: customer.map(str::to_owned),
            limit: Some(5),
        };
        let pools = [
            pool(Scope::Promotion, 1, None),
            pool(Scope::PromotionCustomer, 1, Some("a;b=c")),
            pool(Scope::PromotionCustomer, 1, Some("a")),
            pool(Scope::PromotionCustomer, 1, Some("}{promo:x}")),
            pool(Scope::Coupon, 2, None),
            pool(Scope::CouponCustomer, 2, Some("a")),
            pool(Scope::CouponCustomer, 3, Some("a")),
        ];
        let keys: std::collections::HashSet<String> = pools.iter().map(|p| pool_key("t:", promotion, p)).collect();
        assert_eq!(keys.len(), pools.len());
        for key in &keys {
            assert!(key.starts_with(&format!("t:{{promo:{promotion}}}:n:")), "{key}");
        }
    }
}
