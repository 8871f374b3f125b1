//! What an action gives: per-line amounts (percentage, amount, fixed
//! price, buy-X-get-Y, tiered) and a shipping amount, over the eligible
//! lines' remaining amounts.

use std::cmp::Ordering;

use crate::domain::cart::{Cart, CartLine};
use crate::domain::money::{basis_points_of, div_round_half_up, spread, to_i64};
use crate::domain::promotion::{Action, TierBasis, TierDiscount};

use super::{Pricing, is_eligible};

/// What an action gives: per-line amounts and a shipping amount.
pub(super) struct Discount {
    pub(super) lines: Vec<i64>,
    pub(super) shipping: i64,
}

impl Discount {
    pub(super) fn total(&self) -> i64 {
        self.lines.iter().sum::<i64>() + self.shipping
    }
}

/// A discount of `total` spread over the eligible lines by remaining amount.
pub(super) fn spread_over(pricing: &Pricing<'_>, eligible: &[bool], total: i64) -> Vec<i64> {
    let weights: Vec<i64> = pricing
        .remaining
        .iter()
        .zip(eligible)
        .map(|(r, e)| if *e { *r } else { 0 })
        .collect();
    spread(total, &weights)
}

pub(super) fn percentage(
    pricing: &Pricing<'_>,
    eligible: &[bool],
    eligible_amount: i64,
    bp: i32,
    cap: Option<i64>,
) -> Vec<i64> {
    let amount = basis_points_of(eligible_amount, bp);
    spread_over(pricing, eligible, cap.map_or(amount, |c| amount.min(c)))
}

pub(super) fn compute(
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

pub(super) struct BuyXGetY {
    pub(super) buy: i64,
    pub(super) get: i64,
    pub(super) bp: i32,
    pub(super) max: Option<i64>,
    pub(super) separate_get: bool,
}

/// Compares the unit values r_a/q_a and r_b/q_b exactly.
pub(super) fn unit_value_cmp(ra: i64, qa: i64, rb: i64, qb: i64) -> Ordering {
    (ra as i128 * qb as i128).cmp(&(rb as i128 * qa as i128))
}

/// Lines of `mask`, cheapest unit first (ties: cart order), or most valuable first.
pub(super) fn lines_by_value(cart: &Cart, remaining: &[i64], mask: &[bool], cheapest_first: bool) -> Vec<usize> {
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
pub(super) fn take_units(order: &[usize], available: &[i64], mut count: i64) -> Vec<i64> {
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

pub(super) fn buy_x_get_y(
    cart: &Cart,
    remaining: &[i64],
    buy_mask: &[bool],
    get_mask: &[bool],
    p: BuyXGetY,
) -> Vec<i64> {
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
