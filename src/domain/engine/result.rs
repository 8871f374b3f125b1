//! What an evaluation returns: the priced cart, its lines and their
//! adjustments, the promotions applied and those rejected with their reason.

use uuid::Uuid;

use super::Pricing;

/// Why a promotion or coupon did not apply (the contract's `RejectionReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    CouponNotFound,
    CouponInactive,
    CouponNotYetValid,
    CouponExpired,
    CouponUsageLimitReached,
    PromotionInactive,
    PromotionUsageLimitReached,
    CustomerUsageLimitReached,
    CustomerRequired,
    CustomerSegmentMismatch,
    CurrencyMismatch,
    NoEligibleItems,
    MinSubtotalNotMet,
    MinQuantityNotMet,
    MinCustomerReviewsNotMet,
    NotFirstOrder,
    DayOfWeekMismatch,
    NotStackable,
    StoppedByHigherPriority,
    NothingToDiscount,
}

/// One promotion's share of one line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Adjustment {
    pub promotion_id: Uuid,
    pub coupon_code: Option<String>,
    pub amount: i64,
}

/// A priced line.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricedLine {
    pub line_id: String,
    pub quantity: i32,
    /// As submitted.
    pub unit_price: i64,
    /// As submitted.
    pub subtotal: i64,
    /// Sum of the adjustments.
    pub discount: i64,
    pub total: i64,
    pub adjustments: Vec<Adjustment>,
}

/// A promotion that applied.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    pub promotion_id: Uuid,
    pub coupon_code: Option<String>,
    /// The promotion's coupon, if it applied through one.
    pub coupon_id: Option<Uuid>,
    pub name: String,
    pub amount: i64,
}

/// A promotion or coupon that did not apply, with the first failing reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rejected {
    pub promotion_id: Option<Uuid>,
    pub coupon_code: Option<String>,
    pub reason: RejectionReason,
    /// For the shopper.
    pub message: String,
}

/// The priced cart (the contract's `PromotionResult` without redemption).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PricedCart {
    pub currency: String,
    pub subtotal: i64,
    /// Line discounts plus the shipping discount.
    pub discount_total: i64,
    pub shipping_amount: i64,
    pub shipping_discount: i64,
    /// subtotal + shipping_amount - discount_total.
    pub total: i64,
    pub lines: Vec<PricedLine>,
    pub applied: Vec<Applied>,
    pub rejected: Vec<Rejected>,
}

pub(super) fn finish(pricing: Pricing<'_>, rejected: Vec<Rejected>) -> PricedCart {
    let cart = pricing.cart;
    let lines: Vec<PricedLine> = cart
        .lines
        .iter()
        .zip(pricing.adjustments)
        .map(|(line, adjustments)| {
            let discount: i64 = adjustments.iter().map(|a| a.amount).sum();
            PricedLine {
                line_id: line.id.clone(),
                quantity: line.quantity,
                unit_price: line.unit_price,
                subtotal: line.subtotal(),
                discount,
                total: line.subtotal() - discount,
                adjustments,
            }
        })
        .collect();
    let subtotal = cart.subtotal();
    let discount_total = lines.iter().map(|l| l.discount).sum::<i64>() + pricing.shipping_discount;
    PricedCart {
        currency: cart.currency.clone(),
        subtotal,
        discount_total,
        shipping_amount: cart.shipping_amount,
        shipping_discount: pricing.shipping_discount,
        total: subtotal + cart.shipping_amount - discount_total,
        lines,
        applied: pricing.applied,
        rejected,
    }
}
