//! Whether a candidate applies to the cart as priced so far: its window,
//! campaign, limits, customer, conditions and stacking, then its action
//! ([`super::actions::compute`]) applied to the lines.

use super::actions::compute;
use super::candidates::Candidate;
use super::result::{Adjustment, Applied, RejectionReason};
use super::usage::reached;
use super::{Evaluation, Pricing, format_money};

pub(super) type Failure = (RejectionReason, String);

pub(super) fn fail(reason: RejectionReason, message: impl Into<String>) -> Result<(), Failure> {
    Err((reason, message.into()))
}

pub(super) fn try_apply(
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
