//! Usage limits, the one place that knows them: which pools a promotion
//! and its coupon touch, their live counts, and their reservation.
//!
//! A pool is one limit: a promotion's total, a promotion per customer, a
//! coupon's total, a coupon per customer. PostgreSQL holds the truth
//! (`usage_counts`, see the migration `count_usage`): the redemption's
//! transaction counts each use against the limit in force, under a lock
//! that a limit change takes exclusively. Redis ([`Counters`]) is the
//! accelerator: it reserves uses atomically before the transaction, so a
//! full pool is refused without touching PostgreSQL, and it answers the
//! previews' live counts. Its state is a copy of PostgreSQL's count, seeded
//! when missing (one read, whatever the limit) and living at most
//! `USAGE_COUNTER_TTL`: a reservation never recorded (a crash) is gone with it.
//!
//! Pricing reads counts through [`live_counts`]; redemption reserves,
//! records and releases through [`Counters`] and the store. Neither imports
//! the other for it.

pub mod breaker;
pub mod counters;

use std::collections::HashMap;

use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::domain::engine::{USED_UP, UsageCounts};
pub use crate::domain::usage::{Pool, Scope, limited, pools_for, pools_of};
use crate::error::{AppError, AppResult};
use crate::store::usage;
pub use breaker::Breaker;
pub use counters::{Counters, Reserved};

/// Live counts of limited pools of one promotion: Redis's, else
/// PostgreSQL's (one row each), read only. When Redis does not serve, every
/// count is PostgreSQL's: a preview prices the same, a little slower.
pub async fn live_counts(
    counters: &Counters,
    db: &impl ConnectionTrait,
    promotion: Uuid,
    pools: &[Pool],
) -> AppResult<Vec<i64>> {
    let cached = match counters.counts(promotion, pools).await {
        Ok(cached) => cached,
        Err(AppError::Unavailable(cause)) => {
            tracing::debug!(error = %cause.chain(), "Redis does not serve: live counts from PostgreSQL");
            vec![None; pools.len()]
        }
        Err(e) => return Err(e),
    };
    let mut counts = Vec::with_capacity(pools.len());
    for (pool, count) in pools.iter().zip(cached) {
        counts.push(match count {
            Some(c) => c,
            None => usage::used(db, pool).await?,
        });
    }
    Ok(counts)
}

/// Usage counts for one evaluation: live counts of the pools read, plus
/// the limits found full (read as exhausted).
#[derive(Debug, Default, Clone)]
pub struct Usage {
    promotion: HashMap<Uuid, i64>,
    promotion_customer: HashMap<Uuid, i64>,
    coupon: HashMap<Uuid, i64>,
    coupon_customer: HashMap<Uuid, i64>,
}

impl Usage {
    /// Marks the limit behind `pool` as used up for this evaluation, even
    /// where the definition in hand has no limit or a higher one.
    pub fn exhaust(&mut self, pool: &Pool) {
        self.set(pool, USED_UP);
    }

    /// Records `count` uses of `pool` (the highest count seen wins).
    pub fn set(&mut self, pool: &Pool, count: i64) {
        let map = match pool.scope {
            Scope::Promotion => &mut self.promotion,
            Scope::PromotionCustomer => &mut self.promotion_customer,
            Scope::Coupon => &mut self.coupon,
            Scope::CouponCustomer => &mut self.coupon_customer,
        };
        let entry = map.entry(pool.owner).or_insert(0);
        *entry = (*entry).max(count);
    }
}

impl UsageCounts for Usage {
    fn promotion(&self, id: Uuid) -> i64 {
        self.promotion.get(&id).copied().unwrap_or(0)
    }
    fn promotion_customer(&self, id: Uuid, _: &str) -> i64 {
        self.promotion_customer.get(&id).copied().unwrap_or(0)
    }
    fn coupon(&self, id: Uuid) -> i64 {
        self.coupon.get(&id).copied().unwrap_or(0)
    }
    fn coupon_customer(&self, id: Uuid, _: &str) -> i64 {
        self.coupon_customer.get(&id).copied().unwrap_or(0)
    }
}
