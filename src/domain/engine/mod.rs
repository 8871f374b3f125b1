//! The pricing engine: prices a cart against promotions and coupons exactly
//! as DESIGN.md sections 2 and 3 say. Pure and deterministic: no IO, no
//! clock (the caller passes `now` and the weekday in the service's time
//! zone), no hash-order dependence. Usage counts come in through
//! [`UsageCounts`] and are only read.
//!
//! [`evaluate`] here runs the pipeline; `candidates` orders the offers and
//! checks submitted codes, `conditions` decides whether a candidate applies
//! to the cart as priced so far, `actions` computes what it gives, `usage`
//! reads the limits, `result` is what comes out.

mod actions;
mod candidates;
mod conditions;
mod result;
mod usage;

use chrono::{DateTime, Utc};

use crate::domain::cart::{Cart, CartLine};
use crate::domain::promotion::{DayOfWeek, Scope, Target};

use candidates::*;
pub use candidates::{CampaignState, Offer, SubmittedCoupon};
use conditions::*;
use result::*;
pub use result::{Adjustment, Applied, PricedCart, PricedLine, Rejected, RejectionReason};
pub use usage::{NoUsage, USED_UP, UsageCounts};

/// Everything one evaluation needs.
pub struct Evaluation<'a> {
    pub cart: &'a Cart,
    pub now: DateTime<Utc>,
    /// `now`'s weekday in the service's time zone.
    pub weekday: DayOfWeek,
    /// Automatic candidates (any order, duplicates allowed): the engine keeps
    /// the live ones that do not require a coupon.
    pub offers: Vec<Offer<'a>>,
    /// The cart's codes, in the cart's order.
    pub coupons: Vec<SubmittedCoupon<'a>>,
    pub usage: &'a dyn UsageCounts,
}

/// Whether a line is eligible under a target.
pub fn is_eligible(target: &Target, line: &CartLine) -> bool {
    let has = |list: &[String], value: &str| list.binary_search_by(|x| x.as_str().cmp(value)).is_ok();
    let included = !target.is_targeted()
        || has(&target.product_ids, &line.product_id)
        || line.category_ids.iter().any(|c| has(&target.category_ids, c))
        || line.brand_id.as_deref().is_some_and(|b| has(&target.brand_ids, b));
    included
        && !has(&target.exclude_product_ids, &line.product_id)
        && target
            .min_rating
            .is_none_or(|min| line.rating.is_some_and(|r| r >= min))
}

/// Minor units of a currency (ISO 4217 exponent), for messages.
fn format_money(amount: i64, currency: &str) -> String {
    const ZERO: [&str; 16] = [
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF",
    ];
    const THREE: [&str; 7] = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let exponent = if ZERO.contains(&currency) {
        0
    } else if THREE.contains(&currency) {
        3
    } else {
        2
    };
    if exponent == 0 {
        return format!("{amount} {currency}");
    }
    let unit = 10i64.pow(exponent);
    format!(
        "{}.{:0width$} {currency}",
        amount / unit,
        amount % unit,
        width = exponent as usize
    )
}

/// Mutable state of one evaluation.
struct Pricing<'c> {
    cart: &'c Cart,
    /// Remaining amount of each line after the promotions applied so far.
    remaining: Vec<i64>,
    shipping_remaining: i64,
    adjustments: Vec<Vec<Adjustment>>,
    shipping_discount: i64,
    applied: Vec<Applied>,
    /// A non-stackable promotion applied: nothing more applies.
    closed: bool,
    /// A stop-rules promotion applied in this scope.
    stopped: Option<Scope>,
}

/// Prices the cart. Same input, same output.
pub fn evaluate(input: &Evaluation<'_>) -> PricedCart {
    let cart = input.cart;
    let customer = cart.customer.as_ref();
    let mut rejected: Vec<Rejected> = Vec::new();
    let mut candidates: Vec<Candidate<'_>> = Vec::new();

    for submitted in &input.coupons {
        match check_coupon(submitted, customer, input) {
            Err(rejection) => rejected.push(rejection),
            Ok((coupon, offer)) => {
                let code = coupon.definition.code.clone();
                if candidates.iter().any(|c| c.promotion().id == offer.promotion.id) {
                    rejected.push(Rejected {
                        promotion_id: Some(offer.promotion.id),
                        coupon_code: Some(code),
                        reason: RejectionReason::NotStackable,
                        message: "Another code for the same offer is already in the cart.".into(),
                    });
                } else {
                    candidates.push(Candidate {
                        offer,
                        coupon: Some((coupon, code)),
                    });
                }
            }
        }
    }
    let mut automatic: Vec<Offer<'_>> = input
        .offers
        .iter()
        .copied()
        .filter(|o| !o.promotion.definition.requires_coupon && o.is_live(input.now))
        .collect();
    automatic.sort_by(|a, b| order(a.promotion, b.promotion));
    automatic.dedup_by_key(|o| o.promotion.id);
    for offer in automatic {
        if !candidates.iter().any(|c| c.promotion().id == offer.promotion.id) {
            candidates.push(Candidate { offer, coupon: None });
        }
    }
    candidates.sort_by(|a, b| order(a.promotion(), b.promotion()));

    let mut pricing = Pricing {
        cart,
        remaining: cart.lines.iter().map(CartLine::subtotal).collect(),
        shipping_remaining: cart.shipping_amount,
        adjustments: vec![Vec::new(); cart.lines.len()],
        shipping_discount: 0,
        applied: Vec::new(),
        closed: false,
        stopped: None,
    };
    let mut eligible: Vec<bool> = Vec::with_capacity(cart.lines.len());
    for candidate in &candidates {
        let promotion = candidate.promotion();
        eligible.clear();
        eligible.extend(cart.lines.iter().map(|l| is_eligible(&promotion.definition.target, l)));
        match try_apply(&mut pricing, candidate, &eligible, input) {
            Ok(()) => {}
            Err((reason, message)) => {
                // Automatic promotions are reported only when they target the cart.
                if candidate.coupon.is_some() || eligible.iter().any(|e| *e) {
                    rejected.push(Rejected {
                        promotion_id: Some(promotion.id),
                        coupon_code: candidate.code(),
                        reason,
                        message,
                    });
                }
            }
        }
    }
    finish(pricing, rejected)
}

#[cfg(test)]
mod tests;
