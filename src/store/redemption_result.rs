//! How a redemption's result (`redemptions.result`) is stored: a JSON
//! document of its own types, each field named explicitly, so that renaming
//! a field or a reason of the domain's [`PricedCart`] cannot break the rows
//! already stored (a new rejection reason must be given its stored name
//! here: the conversions are exhaustive matches).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::engine::{Adjustment, Applied, PricedCart, PricedLine, Rejected, RejectionReason};

/// The stored document.
#[derive(Serialize, Deserialize)]
pub struct StoredCart {
    #[serde(rename = "currency")]
    currency: String,
    #[serde(rename = "subtotal")]
    subtotal: i64,
    #[serde(rename = "discountTotal")]
    discount_total: i64,
    #[serde(rename = "shippingAmount")]
    shipping_amount: i64,
    #[serde(rename = "shippingDiscount")]
    shipping_discount: i64,
    #[serde(rename = "total")]
    total: i64,
    #[serde(rename = "lines")]
    lines: Vec<StoredLine>,
    #[serde(rename = "applied")]
    applied: Vec<StoredApplied>,
    #[serde(rename = "rejected")]
    rejected: Vec<StoredRejected>,
}

#[derive(Serialize, Deserialize)]
struct StoredLine {
    #[serde(rename = "lineId")]
    line_id: String,
    #[serde(rename = "quantity")]
    quantity: i32,
    #[serde(rename = "unitPrice")]
    unit_price: i64,
    #[serde(rename = "subtotal")]
    subtotal: i64,
    #[serde(rename = "discount")]
    discount: i64,
    #[serde(rename = "total")]
    total: i64,
    #[serde(rename = "adjustments")]
    adjustments: Vec<StoredAdjustment>,
}

#[derive(Serialize, Deserialize)]
struct StoredAdjustment {
    #[serde(rename = "promotionId")]
    promotion_id: Uuid,
    #[serde(rename = "couponCode")]
    coupon_code: Option<String>,
    #[serde(rename = "amount")]
    amount: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredApplied {
    #[serde(rename = "promotionId")]
    promotion_id: Uuid,
    #[serde(rename = "couponCode")]
    coupon_code: Option<String>,
    #[serde(rename = "couponId")]
    coupon_id: Option<Uuid>,
    #[serde(rename = "name")]
    name: String,
    #[serde(rename = "amount")]
    amount: i64,
}

#[derive(Serialize, Deserialize)]
struct StoredRejected {
    #[serde(rename = "promotionId")]
    promotion_id: Option<Uuid>,
    #[serde(rename = "couponCode")]
    coupon_code: Option<String>,
    #[serde(rename = "reason")]
    reason: StoredReason,
    #[serde(rename = "message")]
    message: String,
}

/// Rejection reasons as stored: the enum, and both conversions (exhaustive,
/// so a new domain reason does not compile until it has its stored name).
macro_rules! stored_reasons {
    ($($name:ident => $stored:literal),* $(,)?) => {
        /// A rejection reason as stored.
        #[derive(Serialize, Deserialize)]
        enum StoredReason {
            $(#[serde(rename = $stored)] $name,)*
        }
        impl From<RejectionReason> for StoredReason {
            fn from(reason: RejectionReason) -> Self {
                match reason {
                    $(RejectionReason::$name => StoredReason::$name,)*
                }
            }
        }
        impl From<StoredReason> for RejectionReason {
            fn from(reason: StoredReason) -> Self {
                match reason {
                    $(StoredReason::$name => RejectionReason::$name,)*
                }
            }
        }
    };
}

stored_reasons!(
    CouponNotFound => "COUPON_NOT_FOUND",
    CouponInactive => "COUPON_INACTIVE",
    CouponNotYetValid => "COUPON_NOT_YET_VALID",
    CouponExpired => "COUPON_EXPIRED",
    CouponUsageLimitReached => "COUPON_USAGE_LIMIT_REACHED",
    PromotionInactive => "PROMOTION_INACTIVE",
    PromotionUsageLimitReached => "PROMOTION_USAGE_LIMIT_REACHED",
    CustomerUsageLimitReached => "CUSTOMER_USAGE_LIMIT_REACHED",
    CustomerRequired => "CUSTOMER_REQUIRED",
    CustomerSegmentMismatch => "CUSTOMER_SEGMENT_MISMATCH",
    CurrencyMismatch => "CURRENCY_MISMATCH",
    NoEligibleItems => "NO_ELIGIBLE_ITEMS",
    MinSubtotalNotMet => "MIN_SUBTOTAL_NOT_MET",
    MinQuantityNotMet => "MIN_QUANTITY_NOT_MET",
    MinCustomerReviewsNotMet => "MIN_CUSTOMER_REVIEWS_NOT_MET",
    NotFirstOrder => "NOT_FIRST_ORDER",
    DayOfWeekMismatch => "DAY_OF_WEEK_MISMATCH",
    NotStackable => "NOT_STACKABLE",
    StoppedByHigherPriority => "STOPPED_BY_HIGHER_PRIORITY",
    NothingToDiscount => "NOTHING_TO_DISCOUNT",
);

impl From<&PricedCart> for StoredCart {
    fn from(cart: &PricedCart) -> Self {
        StoredCart {
            currency: cart.currency.clone(),
            subtotal: cart.subtotal,
            discount_total: cart.discount_total,
            shipping_amount: cart.shipping_amount,
            shipping_discount: cart.shipping_discount,
            total: cart.total,
            lines: cart
                .lines
                .iter()
                .map(|l| StoredLine {
                    line_id: l.line_id.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    subtotal: l.subtotal,
                    discount: l.discount,
                    total: l.total,
                    adjustments: l
                        .adjustments
                        .iter()
                        .map(|a| StoredAdjustment {
                            promotion_id: a.promotion_id,
                            coupon_code: a.coupon_code.clone(),
                            amount: a.amount,
                        })
                        .collect(),
                })
                .collect(),
            applied: cart
                .applied
                .iter()
                .map(|a| StoredApplied {
                    promotion_id: a.promotion_id,
                    coupon_code: a.coupon_code.clone(),
                    coupon_id: a.coupon_id,
                    name: a.name.clone(),
                    amount: a.amount,
                })
                .collect(),
            rejected: cart
                .rejected
                .iter()
                .map(|r| StoredRejected {
                    promotion_id: r.promotion_id,
                    coupon_code: r.coupon_code.clone(),
                    reason: r.reason.into(),
                    message: r.message.clone(),
                })
                .collect(),
        }
    }
}

impl From<StoredCart> for PricedCart {
    fn from(cart: StoredCart) -> Self {
        PricedCart {
            currency: cart.currency,
            subtotal: cart.subtotal,
            discount_total: cart.discount_total,
            shipping_amount: cart.shipping_amount,
            shipping_discount: cart.shipping_discount,
            total: cart.total,
            lines: cart
                .lines
                .into_iter()
                .map(|l| PricedLine {
                    line_id: l.line_id,
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    subtotal: l.subtotal,
                    discount: l.discount,
                    total: l.total,
                    adjustments: l
                        .adjustments
                        .into_iter()
                        .map(|a| Adjustment {
                            promotion_id: a.promotion_id,
                            coupon_code: a.coupon_code,
                            amount: a.amount,
                        })
                        .collect(),
                })
                .collect(),
            applied: cart
                .applied
                .into_iter()
                .map(|a| Applied {
                    promotion_id: a.promotion_id,
                    coupon_code: a.coupon_code,
                    coupon_id: a.coupon_id,
                    name: a.name,
                    amount: a.amount,
                })
                .collect(),
            rejected: cart
                .rejected
                .into_iter()
                .map(|r| Rejected {
                    promotion_id: r.promotion_id,
                    coupon_code: r.coupon_code,
                    reason: r.reason.into(),
                    message: r.message,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_result_reads_back_equal_and_every_reason_keeps_its_contract_name() {
        let cart = PricedCart {
            currency: "EUR".into(),
            subtotal: 10_000,
            discount_total: 1_000,
            shipping_amount: 500,
            shipping_discount: 0,
            total: 9_500,
            lines: vec![PricedLine {
                line_id: "l1".into(),
                quantity: 2,
                unit_price: 5_000,
                subtotal: 10_000,
                discount: 1_000,
                total: 9_000,
                adjustments: vec![Adjustment {
                    promotion_id: Uuid::from_u128(1),
                    coupon_code: Some("SAVE".into()),
                    amount: 1_000,
                }],
            }],
            applied: vec![Applied {
                promotion_id: Uuid::from_u128(1),
                coupon_code: Some("SAVE".into()),
                coupon_id: Some(Uuid::from_u128(2)),
                name: "ten off".into(),
                amount: 1_000,
            }],
            rejected: vec![Rejected {
                promotion_id: None,
                coupon_code: Some("NOPE".into()),
                reason: RejectionReason::CouponNotFound,
                message: "no such code".into(),
            }],
        };
        let stored = serde_json::to_value(StoredCart::from(&cart)).unwrap();
        // The stored shape is the one rows written before this type hold.
        assert_eq!(stored, serde_json::to_value(&cart).unwrap());
        let back: PricedCart = serde_json::from_value::<StoredCart>(stored).unwrap().into();
        assert_eq!(back, cart);
        for reason in [
            RejectionReason::NothingToDiscount,
            RejectionReason::StoppedByHigherPriority,
            RejectionReason::MinCustomerReviewsNotMet,
        ] {
            let stored = serde_json::to_value(StoredReason::from(reason)).unwrap();
            assert_eq!(stored, serde_json::to_value(reason).unwrap());
        }
    }
}
