//! Usage pools in Redis: one per limit (a promotion's total, a promotion per
//! customer, a coupon's total, a coupon per customer). A pool hands out
//! numbered slots 1..=limit: the lowest released slot first, else the next
//! never-used one. Every key of a promotion's pools carries the hash tag
//! `{promo:<id>}`, and each script touches one promotion only, so the
//! service runs on Redis Cluster. The scripts are the `*.lua` files beside
//! this module.

use std::sync::{Arc, LazyLock};
use std::time::Instant;

use redis::Script;
use redis::aio::ConnectionManager;
use tracing::Instrument;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;

static RESERVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("reserve.lua")));
static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("release.lua")));
static CONFIRM: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("confirm.lua")));
static SEED: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("seed.lua")));
static COUNT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("count.lua")));
static PENDING: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("pending.lua")));

/// What a pool limits (the `usage_slots.scope` of its slots).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    /// A promotion's total.
    Promotion,
    /// A promotion per customer.
    PromotionCustomer,
    /// A coupon's total.
    Coupon,
    /// A coupon per customer.
    CouponCustomer,
}

impl Scope {
    /// The database's name of the scope.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Promotion => "PROMOTION",
            Scope::PromotionCustomer => "PROMOTION_CUSTOMER",
            Scope::Coupon => "COUPON",
            Scope::CouponCustomer => "COUPON_CUSTOMER",
        }
    }
}

/// One limit of one promotion, as a pool of slots.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pool {
    pub scope: Scope,
    /// The promotion, or the coupon.
    pub owner: Uuid,
    /// Set for the per-customer scopes.
    pub customer: Option<String>,
    /// Slots 1..=limit.
    pub limit: i32,
}

impl Pool {
    /// The pool's name under its promotion's base key.
    pub fn name(&self) -> String {
        let customer = self.customer.as_deref().unwrap_or("");
        match self.scope {
            Scope::Promotion => "p".to_owned(),
            Scope::PromotionCustomer => format!("pc:{customer}"),
            Scope::Coupon => format!("c:{}", self.owner),
            Scope::CouponCustomer => format!("cc:{}:{customer}", self.owner),
        }
    }
}

/// A slot taken in a pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub pool: Pool,
    pub slot: i32,
}

/// The outcome of a reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reserved {
    /// Every pool gave a slot (in the order of the pools).
    Taken(Vec<i32>),
    /// The pool at this index has no state in Redis: seed it, then retry.
    NeedsSeed(usize),
    /// The pool at this index is at its limit.
    Full(usize),
}

/// The Redis side of the usage pools.
#[derive(Clone)]
pub struct Pools {
    redis: ConnectionManager,
    prefix: String,
    metrics: Arc<Metrics>,
}

fn parse_slots(pools: &[Pool], value: &str) -> AppResult<Vec<i32>> {
    let body = value.split_once('|').map_or("", |(_, b)| b);
    let mut out = Vec::with_capacity(pools.len());
    for pool in pools {
        let name = pool.name();
        let slot = body
            .split(';')
            .find_map(|part| {
                part.split_once('=')
                    .filter(|(p, _)| *p == name)
                    .and_then(|(_, s)| s.parse().ok())
            })
            .ok_or_else(|| AppError::Internal(format!("pending reservation {value:?} lacks pool {name}")))?;
        out.push(slot);
    }
    Ok(out)
}

impl Pools {
    /// Pools under `prefix` (REDIS_KEY_PREFIX).
    pub fn new(redis: ConnectionManager, prefix: &str, metrics: Arc<Metrics>) -> Self {
        Self {
            redis,
            prefix: prefix.to_owned(),
            metrics,
        }
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
        let started = Instant::now();
        let result = invocation.invoke_async(&mut self.redis.clone()).instrument(span).await;
        self.metrics.redis_script(script, result.is_ok(), started.elapsed());
        Ok(result?)
    }

    /// `<prefix>{promo:<id>}`: the base of every key of a promotion's pools.
    pub fn base(&self, promotion: Uuid) -> String {
        format!("{}{{promo:{promotion}}}", self.prefix)
    }

    /// Takes one slot in each of `pools` (all of one promotion) for `order`.
    /// An order that already holds a reservation gets the same slots back.
    #[tracing::instrument(skip_all, fields(promotion.id = %promotion, order.id = order))]
    pub async fn reserve(&self, promotion: Uuid, order: &str, pools: &[Pool], now: i64) -> AppResult<Reserved> {
        let mut invocation = RESERVE.key(self.base(promotion));
        invocation.arg(order).arg(now);
        for pool in pools {
            invocation.arg(pool.name()).arg(pool.limit);
        }
        let (status, detail): (String, String) = self.invoke("reserve", invocation).await?;
        let index = |name: &str| pools.iter().position(|p| p.name() == name);
        match status.as_str() {
            "OK" | "HELD" => Some(Reserved::Taken(parse_slots(pools, &detail)?)),
            "SEED" => index(&detail).map(Reserved::NeedsSeed),
            "FULL" => index(&detail).map(Reserved::Full),
            _ => None,
        }
        .ok_or_else(|| AppError::Internal(format!("reserve.lua answered {status} {detail}")))
    }

    /// Gives slots back; with `order`, also drops its pending reservation.
    #[tracing::instrument(skip_all, fields(promotion.id = %promotion))]
    pub async fn release(&self, promotion: Uuid, order: Option<&str>, slots: &[Slot]) -> AppResult<()> {
        let named: Vec<(String, i32)> = slots.iter().map(|s| (s.pool.name(), s.slot)).collect();
        self.release_named(promotion, order.unwrap_or(""), &named).await
    }

    /// Gives back slots named by pool (a pending entry's); a non-empty
    /// `order` also drops that order's pending entry.
    pub async fn release_named(&self, promotion: Uuid, order: &str, slots: &[(String, i32)]) -> AppResult<()> {
        let mut invocation = RELEASE.key(self.base(promotion));
        invocation.arg(order);
        for (pool, slot) in slots {
            invocation.arg(pool).arg(*slot);
        }
        let _: i64 = self.invoke("release", invocation).await?;
        Ok(())
    }

    /// Marks an order's reservation committed (its slots stay taken).
    pub async fn confirm(&self, promotion: Uuid, order: &str) -> AppResult<()> {
        let mut invocation = CONFIRM.key(self.base(promotion));
        invocation.arg(order);
        let _: i64 = self.invoke("confirm", invocation).await?;
        Ok(())
    }

    /// Seeds a pool from the slots PostgreSQL holds, unless it has state.
    pub async fn seed(&self, promotion: Uuid, pool: &Pool, used: &[i32]) -> AppResult<()> {
        let highest = used.iter().copied().max().unwrap_or(0);
        let mut taken = used.to_vec();
        taken.sort_unstable();
        let mut invocation = SEED.key(self.base(promotion));
        invocation.arg(pool.name()).arg(highest + 1);
        for slot in 1..=highest {
            if taken.binary_search(&slot).is_err() {
                invocation.arg(slot);
            }
        }
        let _: i64 = self.invoke("seed", invocation).await?;
        Ok(())
    }

    /// Drops a pool's state, so that the next use seeds it from PostgreSQL.
    pub async fn forget(&self, promotion: Uuid, pool: &Pool) -> AppResult<()> {
        let key = format!("{}:{}", self.base(promotion), pool.name());
        let _: i64 = redis::cmd("DEL")
            .arg(format!("{key}:seeded"))
            .arg(format!("{key}:next"))
            .arg(format!("{key}:free"))
            .query_async(&mut self.redis.clone())
            .await?;
        Ok(())
    }

    /// Slots in use per pool (None: no state in Redis), without changing anything.
    pub async fn counts(&self, promotion: Uuid, pools: &[Pool]) -> AppResult<Vec<Option<i64>>> {
        let mut invocation = COUNT.key(self.base(promotion));
        for pool in pools {
            invocation.arg(pool.name());
        }
        let counts: Vec<i64> = self.invoke("count", invocation).await?;
        Ok(counts.into_iter().map(|c| (c >= 0).then_some(c)).collect())
    }

    /// Pending reservations older than `before` (unix seconds): (order, slots by pool name).
    pub async fn stale_pending(&self, promotion: Uuid, before: i64, max: usize) -> AppResult<Vec<(String, String)>> {
        let mut invocation = PENDING.key(self.base(promotion));
        invocation.arg(before).arg(max);
        let flat: Vec<String> = self.invoke("pending", invocation).await?;
        Ok(flat
            .chunks(2)
            .filter_map(|c| Some((c.first()?.clone(), c.get(1)?.clone())))
            .collect())
    }
}

/// Parses a pending value's `pool=slot` pairs.
pub fn pending_slots(value: &str) -> Vec<(String, i32)> {
    let body = value.split_once('|').map_or("", |(_, b)| b);
    body.split(';')
        .filter_map(|part| {
            part.split_once('=')
                .and_then(|(p, s)| Some((p.to_owned(), s.parse().ok()?)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(scope: Scope, customer: Option<&str>) -> Pool {
        Pool {
            scope,
            owner: Uuid::nil(),
            customer: customer.map(String::from),
            limit: 5,
        }
    }

    #[test]
    fn pool_names_are_distinct_per_scope_owner_and_customer() {
        assert_eq!(pool(Scope::Promotion, None).name(), "p");
        assert_eq!(pool(Scope::PromotionCustomer, Some("c1")).name(), "pc:c1");
        assert!(pool(Scope::Coupon, None).name().starts_with("c:"));
        assert!(pool(Scope::CouponCustomer, Some("c1")).name().ends_with(":c1"));
    }

    #[test]
    fn pending_values_parse_back_to_slots() {
        let pools = [pool(Scope::Promotion, None), pool(Scope::PromotionCustomer, Some("k"))];
        assert_eq!(parse_slots(&pools, "17|p=3;pc:k=1").unwrap(), vec![3, 1]);
        assert!(parse_slots(&pools, "17|p=3").is_err());
        assert_eq!(
            pending_slots("17|p=3;pc:k=1"),
            vec![("p".to_owned(), 3), ("pc:k".to_owned(), 1)]
        );
    }
}
