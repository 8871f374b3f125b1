//! The candidates of an evaluation: offers (a promotion with its
//! campaign's state), the coupons the shopper submitted, their order
//! (CATALOG then CART, priority, age, id), and how a submitted code is
//! checked before its promotion is tried.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};

use crate::domain::campaign::CampaignStatus;
use crate::domain::cart::Customer;
use crate::domain::coupon::{Coupon, normalize_code};
use crate::domain::promotion::{Promotion, Scope};
use crate::domain::validation::Window;

use super::Evaluation;
use super::result::{Rejected, RejectionReason};
use super::usage::reached;

/// What the engine needs of a promotion's campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CampaignState {
    pub status: CampaignStatus,
    pub window: Window,
}

/// A promotion with its campaign, as the snapshot holds it.
#[derive(Debug, Clone, Copy)]
pub struct Offer<'a> {
    pub promotion: &'a Promotion,
    /// The state of the promotion's campaign, if it has one and the state is
    /// known. An ENDED campaign's state is not kept: a promotion that names
    /// a campaign whose state is missing is never live.
    pub campaign: Option<&'a CampaignState>,
}

impl Offer<'_> {
    /// Whether it is a candidate at `now`: switched on, in its window, and
    /// either without a campaign or with one known to be ACTIVE and in its
    /// window. Fails closed: a campaign named but not known (ended, or not
    /// loaded) keeps the promotion out.
    pub fn is_live(&self, now: DateTime<Utc>) -> bool {
        let d = &self.promotion.definition;
        let campaign_live = match (self.campaign, d.campaign_id) {
            (Some(c), _) => c.status == CampaignStatus::Active && c.window.contains(now),
            (None, None) => true,
            (None, Some(_)) => false,
        };
        d.active && d.window.contains(now) && campaign_live
    }
}

/// A code the shopper submitted and what it was found to be.
#[derive(Debug, Clone)]
pub struct SubmittedCoupon<'a> {
    /// As typed (trimmed).
    pub code: String,
    /// The coupon with that code, and its promotion's offer if the promotion
    /// is in the snapshot (None: switched off or over).
    pub found: Option<(&'a Coupon, Option<Offer<'a>>)>,
}

pub(super) struct Candidate<'a> {
    pub(super) offer: Offer<'a>,
    pub(super) coupon: Option<(&'a Coupon, String)>,
}

impl Candidate<'_> {
    pub(super) fn promotion(&self) -> &Promotion {
        self.offer.promotion
    }
    pub(super) fn code(&self) -> Option<String> {
        self.coupon.as_ref().map(|(_, code)| code.clone())
    }
}

/// The evaluation order: CATALOG then CART; priority high first; created first; id.
pub(super) fn order(a: &Promotion, b: &Promotion) -> Ordering {
    let scope_rank = |p: &Promotion| match p.definition.scope {
        Scope::Catalog => 0,
        Scope::Cart => 1,
    };
    scope_rank(a)
        .cmp(&scope_rank(b))
        .then(b.definition.priority.cmp(&a.definition.priority))
        .then(a.created_at.cmp(&b.created_at))
        .then(a.id.cmp(&b.id))
}

pub(super) fn check_coupon<'a>(
    submitted: &SubmittedCoupon<'a>,
    customer: Option<&Customer>,
    input: &Evaluation<'_>,
) -> Result<(&'a Coupon, Offer<'a>), Rejected> {
    let normalized = normalize_code("code", &submitted.code).unwrap_or_else(|_| submitted.code.clone());
    let reject = |promotion_id, reason, message: &str| Rejected {
        promotion_id,
        coupon_code: Some(normalized.clone()),
        reason,
        message: message.to_owned(),
    };
    let Some((coupon, offer)) = submitted.found else {
        return Err(reject(
            None,
            RejectionReason::CouponNotFound,
            "This code does not exist.",
        ));
    };
    let promotion_id = Some(coupon.promotion_id);
    let window = &coupon.definition.window;
    if !coupon.active {
        return Err(reject(
            promotion_id,
            RejectionReason::CouponInactive,
            "This code is not active.",
        ));
    }
    if window.is_before(input.now) {
        return Err(reject(
            promotion_id,
            RejectionReason::CouponNotYetValid,
            "This code is not valid yet.",
        ));
    }
    if window.is_after(input.now) {
        return Err(reject(
            promotion_id,
            RejectionReason::CouponExpired,
            "This code has expired.",
        ));
    }
    let used_up = reached(coupon.definition.usage_limit, input.usage.coupon(coupon.id))
        || customer.is_some_and(|c| {
            reached(
                coupon.definition.usage_limit_per_customer,
                input.usage.coupon_customer(coupon.id, &c.id),
            )
        });
    if used_up {
        return Err(reject(
            promotion_id,
            RejectionReason::CouponUsageLimitReached,
            "This code has been used up.",
        ));
    }
    match offer {
        Some(offer) if offer.is_live(input.now) => Ok((coupon, offer)),
        _ => Err(reject(
            promotion_id,
            RejectionReason::PromotionInactive,
            "The offer of this code is not running.",
        )),
    }
}
