//! Usage pools: what a limit counts. A pool is one limit of a promotion or
//! coupon (total, or per customer); the pools an applied promotion touches
//! follow from it, its coupon and the customer.

use uuid::Uuid;

use super::coupon::Coupon;
use super::promotion::Promotion;

/// What a pool limits (`usage_counts.scope`).
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

/// One pool of one promotion, with its limit as the snapshot knows it
/// (PostgreSQL checks the limit in force).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pool {
    pub scope: Scope,
    /// The promotion, or the coupon.
    pub owner: Uuid,
    /// Set for the per-customer scopes.
    pub customer: Option<String>,
    /// None: no limit (the pool is still counted if PostgreSQL has one).
    pub limit: Option<i32>,
}

impl Pool {
    /// The customer as `usage_counts.customer_id` stores it ('' for none).
    pub fn customer_id(&self) -> &str {
        self.customer.as_deref().unwrap_or("")
    }
}

/// Every pool a promotion touches for this customer, with its coupon, as
/// recorded (no limits: PostgreSQL checks the ones in force).
pub fn pools_for(promotion: Uuid, coupon: Option<Uuid>, customer: Option<&str>) -> Vec<Pool> {
    let pool = |scope, owner, customer: Option<&str>| Pool {
        scope,
        owner,
        customer: customer.map(str::to_owned),
        limit: None,
    };
    let mut pools = vec![pool(Scope::Promotion, promotion, None)];
    if let Some(c) = customer {
        pools.push(pool(Scope::PromotionCustomer, promotion, Some(c)));
    }
    if let Some(coupon) = coupon {
        pools.push(pool(Scope::Coupon, coupon, None));
        if let Some(c) = customer {
            pools.push(pool(Scope::CouponCustomer, coupon, Some(c)));
        }
    }
    pools
}

/// [`pools_for`] with each pool's limit as `promotion` and `coupon` define it.
pub fn pools_of(promotion: &Promotion, coupon: Option<&Coupon>, customer: Option<&str>) -> Vec<Pool> {
    let d = &promotion.definition;
    let mut pools = pools_for(promotion.id, coupon.map(|c| c.id), customer);
    for pool in &mut pools {
        pool.limit = match (pool.scope, coupon) {
            (Scope::Promotion, _) => d.total_usage_limit,
            (Scope::PromotionCustomer, _) => d.usage_limit_per_customer,
            (Scope::Coupon, Some(c)) => c.definition.usage_limit,
            (Scope::CouponCustomer, Some(c)) => c.definition.usage_limit_per_customer,
            (Scope::Coupon | Scope::CouponCustomer, None) => None,
        };
    }
    pools
}

/// The pools of `pools` that have a limit: the ones Redis reserves.
pub fn limited(pools: &[Pool]) -> Vec<Pool> {
    pools.iter().filter(|p| p.limit.is_some()).cloned().collect()
}
