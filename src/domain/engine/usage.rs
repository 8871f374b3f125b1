//! Usage as the engine reads it: live counts per pool ([`UsageCounts`]),
//! and when a pool is full.

use uuid::Uuid;

/// Whether a pool with `limit` and `count` uses is full. [`USED_UP`] is
/// full whatever the limit in hand: the store found the limit in force
/// reached (the definition in hand may be a moment behind a change).
pub(super) fn reached(limit: Option<i32>, count: i64) -> bool {
    count == USED_UP || limit.is_some_and(|l| count >= i64::from(l))
}

/// The count of a pool found full by the limit in force.
pub const USED_UP: i64 = i64::MAX;

/// Live usage counts (redemptions not released), read only.
pub trait UsageCounts {
    /// Redemptions of a promotion.
    fn promotion(&self, promotion: Uuid) -> i64;
    /// Redemptions of a promotion by one customer.
    fn promotion_customer(&self, promotion: Uuid, customer: &str) -> i64;
    /// Redemptions of a coupon.
    fn coupon(&self, coupon: Uuid) -> i64;
    /// Redemptions of a coupon by one customer.
    fn coupon_customer(&self, coupon: Uuid, customer: &str) -> i64;
}

/// Usage counts that are all zero (tests, or when no limit is involved).
pub struct NoUsage;

impl UsageCounts for NoUsage {
    fn promotion(&self, _: Uuid) -> i64 {
        0
    }
    fn promotion_customer(&self, _: Uuid, _: &str) -> i64 {
        0
    }
    fn coupon(&self, _: Uuid) -> i64 {
        0
    }
    fn coupon_customer(&self, _: Uuid, _: &str) -> i64 {
        0
    }
}
