//! The pricing engine: prices a cart against promotions and coupons exactly
//! as DESIGN.md sections 2 and 3 say. Pure and deterministic: no IO, no
//! clock (the caller passes `now` and the weekday in the service's time
//! zone), no hash-order dependence. Usage counts come in through
//! [`UsageCounts`] and are only read.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::campaign::CampaignStatus;
use super::cart::{Cart, CartLine, Customer};
use super::coupon::{Coupon, normalize_code};
use super::money::{basis_points_of, div_round_half_up, spread, to_i64};
use super::promotion::{Action, DayOfWeek, Promotion, Scope, Target, TierBasis, TierDiscount};
use super::validation::Window;

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

/// Whether a pool with `limit` and `count` uses is full. [`USED_UP`] is
/// full whatever the limit in hand: the store found the limit in force
/// reached (the definition in hand may be a moment behind a change).
fn reached(limit: Option<i32>, count: i64) -> bool {
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

struct Candidate<'a> {
    offer: Offer<'a>,
    coupon: Option<(&'a Coupon, String)>,
}

impl Candidate<'_> {
    fn promotion(&self) -> &Promotion {
        self.offer.promotion
    }
    fn code(&self) -> Option<String> {
        self.coupon.as_ref().map(|(_, code)| code.clone())
    }
}

/// The evaluation order: CATALOG then CART; priority high first; created first; id.
fn order(a: &Promotion, b: &Promotion) -> Ordering {
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

/// What an action gives: per-line amounts and a shipping amount.
struct Discount {
    lines: Vec<i64>,
    shipping: i64,
}

impl Discount {
    fn total(&self) -> i64 {
        self.lines.iter().sum::<i64>() + self.shipping
    }
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

fn check_coupon<'a>(
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

type Failure = (RejectionReason, String);

fn fail(reason: RejectionReason, message: impl Into<String>) -> Result<(), Failure> {
    Err((reason, message.into()))
}

fn try_apply(
    pricing: &mut Pricing<'_>,
    candidate: &Candidate<'_>,
    eligible: &[bool],
    input: &Evaluation<'_>,
) -> Result<(), Failure> {
    use RejectionReason::*;
    let cart = pricing.cart;
    let promotion = candidate.promotion();
    let def = &promotion.definition;
    let customer = cart.customer.as_ref();
    if let Some(currency) = &def.currency
        && *currency != cart.currency
    {
        return fail(CurrencyMismatch, format!("This offer is for carts in {currency}."));
    }
    let coupon_per_customer = candidate
        .coupon
        .as_ref()
        .is_some_and(|(c, _)| c.definition.usage_limit_per_customer.is_some());
    let needs_customer = !def.customer_segments.is_empty()
        || def.conditions.min_customer_reviews.is_some()
        || def.conditions.first_order_only
        || def.usage_limit_per_customer.is_some()
        || coupon_per_customer;
    if needs_customer && customer.is_none() {
        return fail(CustomerRequired, "Sign in to get this offer.");
    }
    if !def.customer_segments.is_empty()
        && !customer.is_some_and(|c| c.segments.iter().any(|s| def.customer_segments.contains(s)))
    {
        return fail(CustomerSegmentMismatch, "This offer is for selected customers.");
    }
    if !eligible.iter().any(|e| *e) {
        return fail(NoEligibleItems, "No item in the cart is part of this offer.");
    }
    let eligible_amount: i64 = pricing
        .remaining
        .iter()
        .zip(eligible)
        .filter(|(_, e)| **e)
        .map(|(r, _)| *r)
        .sum();
    let eligible_units: i64 = cart
        .lines
        .iter()
        .zip(eligible)
        .filter(|(_, e)| **e)
        .map(|(l, _)| l.quantity as i64)
        .sum();
    let c = &def.conditions;
    if let Some(min) = c.min_subtotal
        && eligible_amount < min
    {
        return fail(
            MinSubtotalNotMet,
            format!(
                "Add {} more to get this offer.",
                format_money(min - eligible_amount, &cart.currency)
            ),
        );
    }
    if let Some(min) = c.min_quantity
        && eligible_units < min as i64
    {
        return fail(
            MinQuantityNotMet,
            format!(
                "Add {} more eligible items to get this offer.",
                min as i64 - eligible_units
            ),
        );
    }
    if let Some(min) = c.min_customer_reviews
        && customer.is_none_or(|cu| cu.review_count < min)
    {
        return fail(
            MinCustomerReviewsNotMet,
            format!("This offer is for customers with at least {min} reviews."),
        );
    }
    if c.first_order_only && customer.is_none_or(|cu| cu.order_count > 0) {
        return fail(NotFirstOrder, "This offer is for a first order.");
    }
    if let Some(days) = c.days_of_week
        && !days.contains(input.weekday)
    {
        return fail(DayOfWeekMismatch, "This offer is not valid today.");
    }
    if pricing.closed || (!def.stackable && !pricing.applied.is_empty()) {
        return fail(
            NotStackable,
            "This offer cannot be combined with the others in the cart.",
        );
    }
    if pricing.stopped == Some(def.scope) {
        return fail(StoppedByHigherPriority, "A higher-priority offer excludes this one.");
    }
    if reached(def.total_usage_limit, input.usage.promotion(promotion.id)) {
        return fail(PromotionUsageLimitReached, "This offer has been used up.");
    }
    if let Some(cu) = customer
        && reached(
            def.usage_limit_per_customer,
            input.usage.promotion_customer(promotion.id, &cu.id),
        )
    {
        return fail(CustomerUsageLimitReached, "You have already used this offer.");
    }
    let discount = compute(pricing, &def.action, eligible, eligible_amount, eligible_units, cart);
    let amount = discount.total();
    if amount <= 0 {
        return fail(NothingToDiscount, "This offer gives nothing more on this cart.");
    }
    for (i, line_amount) in discount.lines.iter().enumerate() {
        if *line_amount > 0 {
            pricing.remaining[i] -= line_amount;
            pricing.adjustments[i].push(Adjustment {
                promotion_id: promotion.id,
                coupon_code: candidate.code(),
                amount: *line_amount,
            });
        }
    }
    pricing.shipping_remaining -= discount.shipping;
    pricing.shipping_discount += discount.shipping;
    pricing.applied.push(Applied {
        promotion_id: promotion.id,
        coupon_code: candidate.code(),
        coupon_id: candidate.coupon.as_ref().map(|(c, _)| c.id),
        name: def.name.clone(),
        amount,
    });
    if !def.stackable {
        pricing.closed = true;
    }
    if def.stop_further_rules {
        pricing.stopped = Some(def.scope);
    }
    Ok(())
}

/// A discount of `total` spread over the eligible lines by remaining amount.
fn spread_over(pricing: &Pricing<'_>, eligible: &[bool], total: i64) -> Vec<i64> {
    let weights: Vec<i64> = pricing
        .remaining
        .iter()
        .zip(eligible)
        .map(|(r, e)| if *e { *r } else { 0 })
        .collect();
    spread(total, &weights)
}

fn percentage(pricing: &Pricing<'_>, eligible: &[bool], eligible_amount: i64, bp: i32, cap: Option<i64>) -> Vec<i64> {
    let amount = basis_points_of(eligible_amount, bp);
    spread_over(pricing, eligible, cap.map_or(amount, |c| amount.min(c)))
}

fn compute(
    pricing: &Pricing<'_>,
    action: &Action,
    eligible: &[bool],
    eligible_amount: i64,
    eligible_units: i64,
    cart: &Cart,
) -> Discount {
    let per_line = |f: &dyn Fn(&CartLine, i64) -> i64| -> Vec<i64> {
        cart.lines
            .iter()
            .zip(&pricing.remaining)
            .zip(eligible)
            .map(|((line, r), e)| if *e { f(line, *r).clamp(0, *r) } else { 0 })
            .collect()
    };
    let lines = match action {
        Action::PercentageOff {
            basis_points,
            max_discount,
        } => percentage(pricing, eligible, eligible_amount, *basis_points, *max_discount),
        Action::AmountOff {
            amount,
            per_item: false,
        } => spread_over(pricing, eligible, (*amount).min(eligible_amount)),
        Action::AmountOff { amount, per_item: true } => per_line(&|line, r| (amount * line.quantity as i64).min(r)),
        Action::FixedPrice { unit_price } => per_line(&|line, r| r - unit_price * line.quantity as i64),
        Action::BuyXGetY {
            buy_quantity,
            get_quantity,
            basis_points_off,
            max_applications,
            get_target,
        } => {
            let get_eligible: Vec<bool> = match get_target {
                None => eligible.to_vec(),
                Some(t) => cart.lines.iter().map(|l| is_eligible(t, l)).collect(),
            };
            buy_x_get_y(
                cart,
                &pricing.remaining,
                eligible,
                &get_eligible,
                BuyXGetY {
                    buy: *buy_quantity as i64,
                    get: *get_quantity as i64,
                    bp: *basis_points_off,
                    max: max_applications.map(i64::from),
                    separate_get: get_target.is_some(),
                },
            )
        }
        Action::Tiered { basis, tiers } => {
            let reached = match basis {
                TierBasis::Subtotal => eligible_amount,
                TierBasis::Quantity => eligible_units,
            };
            match tiers.iter().rev().find(|t| t.threshold <= reached) {
                None => vec![0; cart.lines.len()],
                Some(tier) => match tier.discount {
                    TierDiscount::BasisPoints(bp) => percentage(pricing, eligible, eligible_amount, bp, None),
                    TierDiscount::Amount(a) => spread_over(pricing, eligible, a.min(eligible_amount)),
                },
            }
        }
        Action::FreeShipping { max_discount } => {
            let shipping = max_discount.map_or(pricing.shipping_remaining, |m| m.min(pricing.shipping_remaining));
            return Discount {
                lines: vec![0; cart.lines.len()],
                shipping,
            };
        }
    };
    Discount { lines, shipping: 0 }
}

struct BuyXGetY {
    buy: i64,
    get: i64,
    bp: i32,
    max: Option<i64>,
    separate_get: bool,
}

/// Compares the unit values r_a/q_a and r_b/q_b exactly.
fn unit_value_cmp(ra: i64, qa: i64, rb: i64, qb: i64) -> Ordering {
    (ra as i128 * qb as i128).cmp(&(rb as i128 * qa as i128))
}

/// Lines of `mask`, cheapest unit first (ties: cart order), or most valuable first.
fn lines_by_value(cart: &Cart, remaining: &[i64], mask: &[bool], cheapest_first: bool) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..cart.lines.len()).filter(|i| mask[*i]).collect();
    idx.sort_by(|a, b| {
        let ord = unit_value_cmp(
            remaining[*a],
            cart.lines[*a].quantity as i64,
            remaining[*b],
            cart.lines[*b].quantity as i64,
        );
        let ord = if cheapest_first { ord } else { ord.reverse() };
        ord.then(a.cmp(b))
    });
    idx
}

/// Takes `count` units from `order`, at most `available[i]` from line i.
fn take_units(order: &[usize], available: &[i64], mut count: i64) -> Vec<i64> {
    let mut taken = vec![0; available.len()];
    for &i in order {
        if count <= 0 {
            break;
        }
        let t = available[i].min(count);
        taken[i] = t;
        count -= t;
    }
    taken
}

fn buy_x_get_y(cart: &Cart, remaining: &[i64], buy_mask: &[bool], get_mask: &[bool], p: BuyXGetY) -> Vec<i64> {
    let quantities: Vec<i64> = cart.lines.iter().map(|l| l.quantity as i64).collect();
    let buy_units: i64 = (0..cart.lines.len())
        .filter(|i| buy_mask[*i])
        .map(|i| quantities[i])
        .sum();
    let cap = |n: i64| p.max.map_or(n, |m| n.min(m));
    // (applications, units discounted per line)
    let discounted: Vec<i64> = if !p.separate_get {
        let n = cap(buy_units / (p.buy + p.get));
        let cheapest = lines_by_value(cart, remaining, buy_mask, true);
        let available: Vec<i64> = (0..quantities.len())
            .map(|i| if buy_mask[i] { quantities[i] } else { 0 })
            .collect();
        take_units(&cheapest, &available, n * p.get)
    } else {
        let most_valuable = lines_by_value(cart, remaining, buy_mask, false);
        let buy_available: Vec<i64> = (0..quantities.len())
            .map(|i| if buy_mask[i] { quantities[i] } else { 0 })
            .collect();
        // Units of getTarget lines left outside the n*X most valuable target units.
        let get_left = |n: i64| -> Vec<i64> {
            let bought = take_units(&most_valuable, &buy_available, n * p.buy);
            (0..quantities.len())
                .map(|i| if get_mask[i] { quantities[i] - bought[i] } else { 0 })
                .collect()
        };
        let feasible = |n: i64| get_left(n).iter().sum::<i64>() >= n * p.get;
        // Feasibility only shrinks as n grows: binary search the largest n.
        let (mut lo, mut hi) = (0, cap(buy_units / p.buy));
        while lo < hi {
            let mid = lo + (hi - lo + 1) / 2;
            if feasible(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        let left = get_left(lo);
        let cheapest = lines_by_value(cart, remaining, get_mask, true);
        take_units(&cheapest, &left, lo * p.get)
    };
    (0..quantities.len())
        .map(|i| {
            let k = discounted[i];
            if k == 0 {
                0
            } else {
                let exact = remaining[i] as i128 * k as i128 * p.bp as i128;
                to_i64(div_round_half_up(exact, quantities[i] as i128 * 10_000)).min(remaining[i])
            }
        })
        .collect()
}

fn finish(pricing: Pricing<'_>, rejected: Vec<Rejected>) -> PricedCart {
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

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
