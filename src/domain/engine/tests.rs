#![allow(clippy::cloned_ref_to_slice_refs)] // `&[p.clone()]` reads better in tables

//! Table-driven tests of the engine with exact amounts, and proptest
//! invariants over random carts and promotions.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::domain::campaign::CampaignStatus;
use crate::domain::cart::Cart;
use crate::domain::cart::{CartDraft, CustomerDraft, LineDraft};
use crate::domain::coupon::Coupon;
use crate::domain::coupon::CouponDefinition;
use crate::domain::promotion::{Action, DayOfWeek, Promotion, Scope, TierBasis};
use crate::domain::promotion::{
    ActionDraft, ConditionDraft, PromotionDefinition, PromotionDraft, TargetDraft, TierDraft,
};
use crate::domain::validation::Window;

fn now() -> DateTime<Utc> {
    // A Thursday.
    Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap()
}

fn draft(action: ActionDraft) -> PromotionDraft {
    PromotionDraft {
        currency: Some("EUR".into()),
        ..PromotionDraft::new("promo", Scope::Cart, action)
    }
}

fn pct(bp: i32) -> ActionDraft {
    ActionDraft::PercentageOff {
        basis_points: bp,
        max_discount: None,
    }
}

/// Promotion number `n`: ids and creation times follow n.
fn promo(n: u128, d: PromotionDraft) -> Promotion {
    Promotion {
        id: Uuid::from_u128(n),
        definition: PromotionDefinition::new(&d).expect("valid test promotion"),
        redemption_count: 0,
        discount_total: 0,
        created_at: now() - Duration::days(30) + Duration::seconds(n as i64),
        updated_at: now(),
    }
}

fn line(id: &str, quantity: i32, unit_price: i64) -> LineDraft {
    LineDraft {
        id: id.into(),
        product_id: id.into(),
        category_ids: vec![],
        brand_id: None,
        quantity,
        unit_price,
        rating: None,
    }
}

fn cart(lines: Vec<LineDraft>) -> CartDraft {
    CartDraft {
        currency: "EUR".into(),
        customer: None,
        lines,
        shipping_amount: 0,
        coupon_codes: vec![],
    }
}

fn customer() -> CustomerDraft {
    CustomerDraft {
        id: "c1".into(),
        segments: vec![],
        review_count: 0,
        order_count: 0,
    }
}

fn coupon(n: u128, promotion: &Promotion, code: &str) -> Coupon {
    Coupon {
        id: Uuid::from_u128(1000 + n),
        promotion_id: promotion.id,
        batch_id: None,
        definition: CouponDefinition {
            code: code.into(),
            usage_limit: None,
            usage_limit_per_customer: None,
            window: Window::default(),
        },
        active: true,
        times_used: 0,
        created_at: now(),
    }
}

struct Counts(HashMap<Uuid, i64>);

impl UsageCounts for Counts {
    fn promotion(&self, id: Uuid) -> i64 {
        self.0.get(&id).copied().unwrap_or(0)
    }
    fn promotion_customer(&self, id: Uuid, _: &str) -> i64 {
        self.0.get(&Uuid::from_u128(id.as_u128() + 500)).copied().unwrap_or(0)
    }
    fn coupon(&self, id: Uuid) -> i64 {
        self.0.get(&id).copied().unwrap_or(0)
    }
    fn coupon_customer(&self, id: Uuid, _: &str) -> i64 {
        self.0.get(&Uuid::from_u128(id.as_u128() + 500)).copied().unwrap_or(0)
    }
}

/// Evaluates `cart` against automatic `promotions` and `coupons` (all live, no campaign).
fn run_with(promotions: &[Promotion], coupons: &[Coupon], cart: CartDraft, usage: &dyn UsageCounts) -> PricedCart {
    let cart = Cart::new("cart", &cart).expect("valid test cart");
    let offers: Vec<Offer> = promotions
        .iter()
        .map(|p| Offer {
            promotion: p,
            campaign: None,
        })
        .collect();
    let submitted = cart
        .coupon_codes
        .iter()
        .map(|code| SubmittedCoupon {
            code: code.clone(),
            found: coupons
                .iter()
                .find(|c| c.definition.code.eq_ignore_ascii_case(code))
                .map(|c| (c, offers.iter().copied().find(|o| o.promotion.id == c.promotion_id))),
        })
        .collect();
    evaluate(&Evaluation {
        cart: &cart,
        now: now(),
        weekday: DayOfWeek::Thursday,
        offers: offers.clone(),
        coupons: submitted,
        usage,
    })
}

fn run(promotions: &[Promotion], cart: CartDraft) -> PricedCart {
    run_with(promotions, &[], cart, &NoUsage)
}

fn line_discounts(result: &PricedCart) -> Vec<i64> {
    result.lines.iter().map(|l| l.discount).collect()
}

fn reasons(result: &PricedCart) -> Vec<RejectionReason> {
    result.rejected.iter().map(|r| r.reason).collect()
}

// ------------------------------------------------------------------ actions

#[test]
fn ten_percent_of_three_lines_of_3_33() {
    let r = run(
        &[promo(1, draft(pct(1000)))],
        cart(vec![line("a", 1, 333), line("b", 1, 333), line("c", 1, 333)]),
    );
    assert_eq!(r.discount_total, 100);
    assert_eq!(line_discounts(&r), vec![34, 33, 33]);
    assert_eq!(r.total, 899);
}

#[test]
fn percentage_is_capped_by_max_discount_before_spreading() {
    let p = promo(
        1,
        draft(ActionDraft::PercentageOff {
            basis_points: 5000,
            max_discount: Some(1000),
        }),
    );
    let r = run(&[p], cart(vec![line("a", 1, 3000), line("b", 1, 1000)]));
    assert_eq!(line_discounts(&r), vec![750, 250]);
}

#[test]
fn a_fixed_amount_larger_than_the_cart_discounts_it_to_zero() {
    let p = promo(
        1,
        draft(ActionDraft::AmountOff {
            amount: 5000,
            per_item: false,
        }),
    );
    let r = run(&[p], cart(vec![line("a", 2, 400), line("b", 1, 400)]));
    assert_eq!(line_discounts(&r), vec![800, 400]);
    assert_eq!(r.total, 0);
    assert_eq!(r.applied[0].amount, 1200);
}

#[test]
fn an_amount_once_is_spread_by_largest_remainder() {
    let p = promo(
        1,
        draft(ActionDraft::AmountOff {
            amount: 100,
            per_item: false,
        }),
    );
    let r = run(
        &[p],
        cart(vec![line("a", 1, 100), line("b", 1, 100), line("c", 1, 100)]),
    );
    assert_eq!(line_discounts(&r), vec![34, 33, 33]);
}

#[test]
fn amount_per_item_is_capped_per_line() {
    let p = promo(
        1,
        draft(ActionDraft::AmountOff {
            amount: 150,
            per_item: true,
        }),
    );
    let r = run(&[p], cart(vec![line("a", 3, 100), line("b", 2, 1000)]));
    assert_eq!(line_discounts(&r), vec![300, 300]);
}

#[test]
fn fixed_price_lowers_each_unit_and_never_raises_it() {
    let p = promo(1, draft(ActionDraft::FixedPrice { unit_price: 999 }));
    let r = run(&[p], cart(vec![line("a", 2, 1500), line("b", 1, 500)]));
    assert_eq!(line_discounts(&r), vec![1002, 0]);
    assert_eq!(r.lines[1].adjustments, vec![]);
}

#[test]
fn buy_one_get_one_with_mixed_prices_frees_the_cheapest_units() {
    let p = promo(
        1,
        draft(ActionDraft::BuyXGetY {
            buy_quantity: 1,
            get_quantity: 1,
            basis_points_off: 10_000,
            max_applications: None,
            get_target: None,
        }),
    );
    let r = run(
        &[p],
        cart(vec![line("a", 2, 1000), line("b", 1, 500), line("c", 1, 300)]),
    );
    assert_eq!(line_discounts(&r), vec![0, 500, 300]);
}

#[test]
fn buy_two_get_one_at_half_price_rounds_per_line() {
    let p = promo(
        1,
        draft(ActionDraft::BuyXGetY {
            buy_quantity: 2,
            get_quantity: 1,
            basis_points_off: 5000,
            max_applications: None,
            get_target: None,
        }),
    );
    // 7 units -> n = 2; the two cheapest: both units of "b" (333 each): 666 * 2 * 0.5 / 2 = 333.
    let r = run(&[p], cart(vec![line("a", 5, 1000), line("b", 2, 333)]));
    assert_eq!(line_discounts(&r), vec![0, 333]);
    // Equal unit values: the earlier line gives its units first.
    let p = promo(
        1,
        draft(ActionDraft::BuyXGetY {
            buy_quantity: 1,
            get_quantity: 1,
            basis_points_off: 5000,
            max_applications: None,
            get_target: None,
        }),
    );
    let r = run(&[p], cart(vec![line("a", 1, 999), line("b", 1, 999)]));
    assert_eq!(line_discounts(&r), vec![500, 0]);
}

#[test]
fn max_applications_caps_buy_x_get_y() {
    let p = promo(
        1,
        draft(ActionDraft::BuyXGetY {
            buy_quantity: 1,
            get_quantity: 1,
            basis_points_off: 10_000,
            max_applications: Some(1),
            get_target: None,
        }),
    );
    let r = run(&[p], cart(vec![line("a", 6, 100)]));
    assert_eq!(line_discounts(&r), vec![100]);
}

#[test]
fn buy_x_get_y_with_a_get_target_discounts_the_cheapest_get_units_outside_the_bought_ones() {
    let mut d = draft(ActionDraft::BuyXGetY {
        buy_quantity: 2,
        get_quantity: 1,
        basis_points_off: 10_000,
        max_applications: None,
        get_target: Some(TargetDraft {
            product_ids: vec!["sock".into(), "cap".into()],
            ..Default::default()
        }),
    });
    d.target.product_ids = vec!["shoe".into()];
    let p = promo(1, d);
    // 5 shoes -> n <= 2; 2 get units exist (cap 800, socks 300 x2 = 3 units): 2 cheapest = both socks.
    let r = run(
        &[p],
        cart(vec![line("shoe", 5, 5000), line("sock", 2, 300), line("cap", 1, 800)]),
    );
    assert_eq!(line_discounts(&r), vec![0, 600, 0]);
}

#[test]
fn buy_x_get_y_with_an_overlapping_get_target_keeps_bought_units_out() {
    // Everything is a target and a get unit: buy 1 get 1 on 3 units of 1000 and 1 of 200.
    let p = promo(
        1,
        draft(ActionDraft::BuyXGetY {
            buy_quantity: 1,
            get_quantity: 1,
            basis_points_off: 10_000,
            max_applications: None,
            get_target: Some(TargetDraft::default()),
        }),
    );
    // n = 2: the 2 most valuable units (two of "a") are bought, the cheapest 2 left (b, one a) are free.
    let r = run(&[p], cart(vec![line("a", 3, 1000), line("b", 1, 200)]));
    assert_eq!(line_discounts(&r), vec![1000, 200]);
}

#[test]
fn tiers_pick_the_highest_reached_threshold() {
    let tiered = |basis, tiers| promo(1, draft(ActionDraft::Tiered { basis, tiers }));
    let bp = |threshold, bp| TierDraft {
        threshold,
        basis_points_off: Some(bp),
        amount_off: None,
    };
    let amt = |threshold, a| TierDraft {
        threshold,
        basis_points_off: None,
        amount_off: Some(a),
    };
    let by_subtotal = tiered(TierBasis::Subtotal, vec![bp(10_000, 500), bp(20_000, 1000)]);
    assert_eq!(
        run(&[by_subtotal.clone()], cart(vec![line("a", 1, 15_000)])).discount_total,
        750
    );
    assert_eq!(
        run(&[by_subtotal.clone()], cart(vec![line("a", 1, 25_000)])).discount_total,
        2500
    );
    let below = run(&[by_subtotal], cart(vec![line("a", 1, 5_000)]));
    assert_eq!(
        (below.discount_total, reasons(&below)),
        (0, vec![RejectionReason::NothingToDiscount])
    );
    let by_quantity = tiered(TierBasis::Quantity, vec![amt(2, 300), amt(5, 1000)]);
    assert_eq!(
        run(&[by_quantity.clone()], cart(vec![line("a", 3, 1000)])).discount_total,
        300
    );
    assert_eq!(run(&[by_quantity], cart(vec![line("a", 6, 100)])).discount_total, 600);
}

#[test]
fn free_shipping_is_capped_and_applies_once() {
    let capped = promo(
        1,
        draft(ActionDraft::FreeShipping {
            max_discount: Some(500),
        }),
    );
    let mut c = cart(vec![line("a", 1, 1000)]);
    c.shipping_amount = 700;
    let r = run(&[capped.clone()], c.clone());
    assert_eq!((r.shipping_discount, r.discount_total, r.total), (500, 500, 1200));
    let full = promo(2, draft(ActionDraft::FreeShipping { max_discount: None }));
    let r = run(&[capped, full], c);
    assert_eq!(r.shipping_discount, 700);
    assert_eq!(r.applied.len(), 2);
    c = cart(vec![line("a", 1, 1000)]);
    let r = run(&[promo(3, draft(ActionDraft::FreeShipping { max_discount: None }))], c);
    assert_eq!(reasons(&r), vec![RejectionReason::NothingToDiscount]);
}

// ------------------------------------------------------------------ order

#[test]
fn catalog_then_cart_percentage_compounds_on_remaining_amounts() {
    let mut catalog = draft(pct(1000));
    catalog.scope = Scope::Catalog;
    catalog.priority = -5;
    let cart_promo = draft(pct(1000));
    let r = run(
        &[promo(2, cart_promo), promo(1, catalog)],
        cart(vec![line("a", 1, 10_000)]),
    );
    assert_eq!(r.applied.iter().map(|a| a.amount).collect::<Vec<_>>(), vec![1000, 900]);
    assert_eq!(r.discount_total, 1900);
    assert_eq!(r.lines[0].adjustments.len(), 2);
    assert_eq!(r.lines[0].unit_price, 10_000, "unit price is shown as submitted");
}

#[test]
fn two_non_stackable_promotions_apply_only_the_first() {
    let mut a = draft(pct(1000));
    a.stackable = false;
    a.priority = 2;
    let mut b = draft(pct(2000));
    b.stackable = false;
    let r = run(&[promo(2, b), promo(1, a)], cart(vec![line("x", 1, 1000)]));
    assert_eq!(
        r.applied.iter().map(|a| a.promotion_id.as_u128()).collect::<Vec<_>>(),
        vec![1]
    );
    assert_eq!(reasons(&r), vec![RejectionReason::NotStackable]);
}

#[test]
fn a_non_stackable_promotion_after_another_does_not_apply_and_one_first_blocks_the_rest() {
    let stackable = promo(1, draft(pct(1000)));
    let mut lone = draft(pct(2000));
    lone.stackable = false;
    lone.priority = -1;
    let r = run(
        &[stackable.clone(), promo(2, lone.clone())],
        cart(vec![line("x", 1, 1000)]),
    );
    assert_eq!((r.applied.len(), reasons(&r)), (1, vec![RejectionReason::NotStackable]));
    lone.priority = 10;
    let r = run(&[stackable, promo(2, lone)], cart(vec![line("x", 1, 1000)]));
    assert_eq!(r.applied[0].promotion_id, Uuid::from_u128(2));
    assert_eq!(reasons(&r), vec![RejectionReason::NotStackable]);
}

#[test]
fn a_stop_rules_promotion_between_two_others_stops_only_those_after_it() {
    let mut high = draft(pct(1000));
    high.priority = 3;
    let mut stop = draft(pct(1000));
    stop.priority = 2;
    stop.stop_further_rules = true;
    let mut low = draft(pct(1000));
    low.priority = 1;
    let mut shipping = draft(ActionDraft::FreeShipping { max_discount: None });
    shipping.priority = 2; // equal priority, created later: stopped too
    let mut c = cart(vec![line("x", 1, 10_000)]);
    c.shipping_amount = 500;
    let r = run(&[promo(4, shipping), promo(3, low), promo(2, stop), promo(1, high)], c);
    assert_eq!(r.applied.iter().map(|a| a.amount).collect::<Vec<_>>(), vec![1000, 900]);
    assert_eq!(
        reasons(&r),
        vec![
            RejectionReason::StoppedByHigherPriority,
            RejectionReason::StoppedByHigherPriority
        ]
    );
}

#[test]
fn stop_rules_in_the_catalog_scope_do_not_stop_cart_rules() {
    let mut catalog = draft(pct(1000));
    catalog.scope = Scope::Catalog;
    catalog.stop_further_rules = true;
    let r = run(
        &[promo(1, catalog), promo(2, draft(pct(1000)))],
        cart(vec![line("x", 1, 1000)]),
    );
    assert_eq!(r.applied.len(), 2);
}

#[test]
fn equal_priority_runs_in_creation_order() {
    let a = promo(
        1,
        draft(ActionDraft::AmountOff {
            amount: 100,
            per_item: false,
        }),
    );
    let b = promo(2, draft(pct(5000)));
    let r = run(&[b.clone(), a.clone()], cart(vec![line("x", 1, 1000)]));
    assert_eq!(r.applied.iter().map(|a| a.amount).collect::<Vec<_>>(), vec![100, 450]);
}

// ------------------------------------------------------------------ rejections

fn targeted(n: u128, product: &str) -> Promotion {
    let mut d = draft(pct(1000));
    d.target.product_ids = vec![product.into()];
    promo(n, d)
}

#[test]
fn coupon_rejections_come_first_in_the_designed_order() {
    let p = promo(1, draft(pct(1000)));
    let mut inactive = coupon(1, &p, "INACTIVE");
    inactive.active = false;
    let mut later = coupon(2, &p, "LATER");
    later.definition.window.starts_at = Some(now() + Duration::days(1));
    let mut over = coupon(3, &p, "OVER");
    over.definition.window.ends_at = Some(now());
    let mut used = coupon(4, &p, "USED");
    used.definition.usage_limit = Some(5);
    let mut counts = HashMap::new();
    counts.insert(used.id, 5);
    let mut c = cart(vec![line("x", 1, 1000)]);
    c.coupon_codes = ["nope-nope", "inactive", "later", "over", "used"]
        .map(String::from)
        .to_vec();
    let r = run_with(&[], &[inactive, later, over, used], c, &Counts(counts));
    use RejectionReason::*;
    assert_eq!(
        reasons(&r),
        vec![
            CouponNotFound,
            CouponInactive,
            CouponNotYetValid,
            CouponExpired,
            CouponUsageLimitReached
        ]
    );
    assert_eq!(r.rejected[0].coupon_code.as_deref(), Some("NOPE-NOPE"));
    assert_eq!(r.rejected[0].promotion_id, None);
    assert_eq!(r.rejected[1].promotion_id, Some(p.id));
}

#[test]
fn a_coupon_of_a_promotion_that_is_not_running_is_promotion_inactive() {
    let mut d = draft(pct(1000));
    d.requires_coupon = true;
    d.ends_at = Some(now() - Duration::days(1));
    d.starts_at = Some(now() - Duration::days(2));
    let over = promo(1, d);
    let paused = promo(2, draft(pct(1000)));
    let campaign = CampaignState {
        status: CampaignStatus::Paused,
        window: Window::default(),
    };
    let coupons = [
        coupon(1, &over, "OVER"),
        coupon(2, &paused, "PAUSED"),
        coupon(3, &over, "GONE"),
    ];
    let cart = Cart::new("cart", &{
        let mut c = cart(vec![line("x", 1, 1000)]);
        c.coupon_codes = vec!["over".into(), "paused".into(), "gone".into()];
        c
    })
    .unwrap();
    let offers = vec![
        Offer {
            promotion: &over,
            campaign: None,
        },
        Offer {
            promotion: &paused,
            campaign: Some(&campaign),
        },
    ];
    let submitted = vec![
        SubmittedCoupon {
            code: "over".into(),
            found: Some((&coupons[0], Some(offers[0]))),
        },
        SubmittedCoupon {
            code: "paused".into(),
            found: Some((&coupons[1], Some(offers[1]))),
        },
        SubmittedCoupon {
            code: "gone".into(),
            found: Some((&coupons[2], None)),
        },
    ];
    let r = evaluate(&Evaluation {
        cart: &cart,
        now: now(),
        weekday: DayOfWeek::Thursday,
        offers,
        coupons: submitted,
        usage: &NoUsage,
    });
    assert_eq!(reasons(&r), vec![RejectionReason::PromotionInactive; 3]);
    assert!(
        r.applied.is_empty(),
        "a paused campaign's automatic promotion does not apply either"
    );
}

#[test]
fn a_promotion_whose_campaign_state_is_unknown_is_never_a_candidate_and_its_coupon_is_promotion_inactive() {
    // The snapshot keeps no state for ENDED campaigns: such a promotion must
    // not pass for one without a campaign.
    let of_ended_campaign = |n: u128, requires_coupon: bool| {
        let mut d = draft(pct(1000));
        d.campaign_id = Some(Uuid::from_u128(900));
        d.requires_coupon = requires_coupon;
        promo(n, d)
    };
    let automatic = of_ended_campaign(1, false);
    let with_code = of_ended_campaign(2, true);
    let code = coupon(1, &with_code, "ENDED");
    let cart = Cart::new("cart", &{
        let mut c = cart(vec![line("x", 1, 1000)]);
        c.coupon_codes = vec!["ended".into()];
        c
    })
    .unwrap();
    let offers = vec![
        Offer {
            promotion: &automatic,
            campaign: None,
        },
        Offer {
            promotion: &with_code,
            campaign: None,
        },
    ];
    assert!(!offers[0].is_live(now()) && !offers[1].is_live(now()));
    let r = evaluate(&Evaluation {
        cart: &cart,
        now: now(),
        weekday: DayOfWeek::Thursday,
        offers: offers.clone(),
        coupons: vec![SubmittedCoupon {
            code: "ended".into(),
            found: Some((&code, Some(offers[1]))),
        }],
        usage: &NoUsage,
    });
    assert!(r.applied.is_empty(), "neither applies");
    assert_eq!(reasons(&r), vec![RejectionReason::PromotionInactive]);
}

#[test]
fn each_rule_rejects_a_coupon_promotion_with_its_reason() {
    use RejectionReason::*;
    let with = |f: &dyn Fn(&mut PromotionDraft)| {
        let mut d = draft(pct(1000));
        d.requires_coupon = true;
        f(&mut d);
        d
    };
    let member = || CustomerDraft {
        segments: vec!["gold".into()],
        ..customer()
    };
    let cases: Vec<(PromotionDraft, Option<CustomerDraft>, RejectionReason)> = vec![
        (with(&|d| d.currency = Some("USD".into())), None, CurrencyMismatch),
        (
            with(&|d| d.customer_segments = vec!["vip".into()]),
            None,
            CustomerRequired,
        ),
        (with(&|d| d.usage_limit_per_customer = Some(1)), None, CustomerRequired),
        (
            with(&|d| d.conditions = vec![ConditionDraft::FirstOrderOnly(true)]),
            None,
            CustomerRequired,
        ),
        (
            with(&|d| d.customer_segments = vec!["vip".into()]),
            Some(member()),
            CustomerSegmentMismatch,
        ),
        (
            with(&|d| d.target.product_ids = vec!["other".into()]),
            None,
            NoEligibleItems,
        ),
        (with(&|d| d.target.min_rating = Some(4.0)), None, NoEligibleItems),
        (
            with(&|d| d.conditions = vec![ConditionDraft::MinSubtotal(2000)]),
            None,
            MinSubtotalNotMet,
        ),
        (
            with(&|d| d.conditions = vec![ConditionDraft::MinQuantity(2)]),
            None,
            MinQuantityNotMet,
        ),
        (
            with(&|d| d.conditions = vec![ConditionDraft::MinCustomerReviews(3)]),
            Some(customer()),
            MinCustomerReviewsNotMet,
        ),
        (
            with(&|d| d.conditions = vec![ConditionDraft::FirstOrderOnly(true)]),
            Some(CustomerDraft {
                order_count: 1,
                ..customer()
            }),
            NotFirstOrder,
        ),
        (
            with(&|d| d.conditions = vec![ConditionDraft::DaysOfWeek(vec![DayOfWeek::Friday])]),
            None,
            DayOfWeekMismatch,
        ),
        (
            with(&|d| d.total_usage_limit = Some(3)),
            None,
            PromotionUsageLimitReached,
        ),
        (
            with(&|d| d.usage_limit_per_customer = Some(2)),
            Some(customer()),
            CustomerUsageLimitReached,
        ),
        (
            with(&|d| d.action = ActionDraft::FixedPrice { unit_price: 5000 }),
            None,
            NothingToDiscount,
        ),
        // The first failing reason wins.
        (
            with(&|d| {
                d.currency = Some("USD".into());
                d.customer_segments = vec!["vip".into()];
            }),
            None,
            CurrencyMismatch,
        ),
        (
            with(&|d| {
                d.conditions = vec![ConditionDraft::MinSubtotal(5000), ConditionDraft::MinQuantity(5)];
            }),
            None,
            MinSubtotalNotMet,
        ),
    ];
    for (d, customer, want) in cases {
        let p = promo(1, d.clone());
        let mut counts = HashMap::new();
        counts.insert(p.id, 3);
        counts.insert(Uuid::from_u128(p.id.as_u128() + 500), 2);
        let mut c = cart(vec![line("x", 1, 1000)]);
        c.customer = customer;
        c.coupon_codes = vec!["CODE".into()];
        let r = run_with(&[p.clone()], &[coupon(1, &p, "CODE")], c, &Counts(counts));
        assert_eq!(reasons(&r), vec![want], "{d:?}");
        assert_eq!(r.rejected[0].coupon_code.as_deref(), Some("CODE"));
        assert!(!r.rejected[0].message.is_empty());
    }
}

#[test]
fn min_subtotal_says_how_much_more_to_add() {
    let mut d = draft(ActionDraft::FreeShipping { max_discount: None });
    d.conditions = vec![ConditionDraft::MinSubtotal(5000)];
    let mut c = cart(vec![line("x", 1, 4000)]);
    c.shipping_amount = 499;
    let r = run(&[promo(1, d)], c);
    assert_eq!(r.rejected[0].message, "Add 10.00 EUR more to get this offer.");
}

#[test]
fn automatic_promotions_are_reported_only_when_they_target_the_cart() {
    let mut needs_code = draft(pct(1000));
    needs_code.requires_coupon = true;
    let mut far = targeted(2, "x");
    far.definition.conditions.min_quantity = Some(5);
    let r = run(
        &[targeted(1, "other"), far, promo(3, needs_code)],
        cart(vec![line("x", 1, 1000)]),
    );
    assert_eq!(reasons(&r), vec![RejectionReason::MinQuantityNotMet]);
    assert_eq!(r.rejected[0].promotion_id, Some(Uuid::from_u128(2)));
    assert_eq!(r.discount_total, 0);
}

#[test]
fn a_second_code_for_the_same_promotion_is_rejected() {
    let mut d = draft(pct(1000));
    d.requires_coupon = true;
    let p = promo(1, d);
    let mut c = cart(vec![line("x", 1, 1000)]);
    c.coupon_codes = vec!["ONE".into(), "TWO".into()];
    let r = run_with(&[p.clone()], &[coupon(1, &p, "ONE"), coupon(2, &p, "TWO")], c, &NoUsage);
    assert_eq!(r.applied.len(), 1);
    assert_eq!(r.applied[0].coupon_code.as_deref(), Some("ONE"));
    assert_eq!(reasons(&r), vec![RejectionReason::NotStackable]);
}

#[test]
fn a_promotion_that_requires_a_coupon_applies_with_it_and_names_it() {
    let mut d = draft(pct(1000));
    d.requires_coupon = true;
    let p = promo(1, d);
    let mut c = cart(vec![line("x", 1, 1000)]);
    c.coupon_codes = vec!["save10".into()];
    let r = run_with(&[p.clone()], &[coupon(1, &p, "SAVE10")], c, &NoUsage);
    assert_eq!(r.applied[0].coupon_code.as_deref(), Some("SAVE10"));
    assert_eq!(r.lines[0].adjustments[0].coupon_code.as_deref(), Some("SAVE10"));
    assert!(r.rejected.is_empty());
}

#[test]
fn eligibility_uses_products_categories_brands_exclusions_and_rating() {
    let target = Target {
        product_ids: Box::new(["p1".into()]),
        category_ids: Box::new(["shoes".into()]),
        brand_ids: Box::new(["acme".into()]),
        exclude_product_ids: Box::new(["p9".into()]),
        min_rating: None,
    };
    let mk = |product: &str, categories: &[&str], brand: Option<&str>, rating: Option<f64>| CartLine {
        id: "l".into(),
        product_id: product.into(),
        category_ids: categories.iter().map(|c| c.to_string()).collect(),
        brand_id: brand.map(String::from),
        quantity: 1,
        unit_price: 1,
        rating,
    };
    assert!(is_eligible(&target, &mk("p1", &[], None, None)));
    assert!(is_eligible(&target, &mk("p2", &["shoes"], None, None)));
    assert!(is_eligible(&target, &mk("p2", &[], Some("acme"), None)));
    assert!(!is_eligible(&target, &mk("p2", &["hats"], Some("other"), None)));
    assert!(!is_eligible(&target, &mk("p9", &["shoes"], None, None)));
    let rated = Target {
        min_rating: Some(4.0),
        ..Target::default()
    };
    assert!(is_eligible(&rated, &mk("p", &[], None, Some(4.0))));
    assert!(!is_eligible(&rated, &mk("p", &[], None, Some(3.9))));
    assert!(!is_eligible(&rated, &mk("p", &[], None, None)));
}

#[test]
fn money_in_messages_uses_the_currency_exponent() {
    assert_eq!(format_money(1000, "EUR"), "10.00 EUR");
    assert_eq!(format_money(1005, "JPY"), "1005 JPY");
    assert_eq!(format_money(1005, "KWD"), "1.005 KWD");
}

// ------------------------------------------------------------------ invariants

mod invariants {
    use proptest::prelude::*;

    use super::*;

    fn action() -> impl Strategy<Value = ActionDraft> {
        prop_oneof![
            (1..=10_000i32, proptest::option::of(1..5_000i64)).prop_map(|(bp, cap)| {
                ActionDraft::PercentageOff {
                    basis_points: bp,
                    max_discount: cap,
                }
            }),
            (1..5_000i64, any::<bool>()).prop_map(|(amount, per_item)| ActionDraft::AmountOff { amount, per_item }),
            (1..3_000i64).prop_map(|unit_price| ActionDraft::FixedPrice { unit_price }),
            (
                1..4i32,
                1..3i32,
                1..=10_000i32,
                proptest::option::of(1..4i32),
                any::<bool>()
            )
                .prop_map(|(buy, get, bp, max, separate)| {
                    ActionDraft::BuyXGetY {
                        buy_quantity: buy,
                        get_quantity: get,
                        basis_points_off: bp,
                        max_applications: max,
                        get_target: separate.then(|| TargetDraft {
                            product_ids: vec!["p1".into(), "p3".into()],
                            ..Default::default()
                        }),
                    }
                }),
            (1..2_000i64, 1..=10_000i32, 1..1_000i64).prop_map(|(t, bp, a)| ActionDraft::Tiered {
                basis: TierBasis::Subtotal,
                tiers: vec![
                    TierDraft {
                        threshold: t,
                        basis_points_off: Some(bp),
                        amount_off: None
                    },
                    TierDraft {
                        threshold: t * 3,
                        basis_points_off: None,
                        amount_off: Some(a)
                    },
                ],
            }),
            proptest::option::of(1..1_000i64).prop_map(|cap| ActionDraft::FreeShipping { max_discount: cap }),
        ]
    }

    fn promotion(n: u128) -> impl Strategy<Value = Promotion> {
        (
            action(),
            -2..3i32,
            any::<bool>(),
            any::<bool>(),
            proptest::option::of(prop::sample::select(vec!["p1", "p2", "p3"])),
            any::<bool>(),
        )
            .prop_map(move |(action, priority, stackable, stop, product, catalog)| {
                let mut d = draft(action);
                d.priority = priority;
                d.stackable = stackable || !n.is_multiple_of(3);
                d.stop_further_rules = stop && n.is_multiple_of(4);
                if let Some(p) = product {
                    d.target.product_ids = vec![p.into()];
                }
                let fits_catalog = matches!(
                    d.action,
                    ActionDraft::PercentageOff { .. }
                        | ActionDraft::FixedPrice { .. }
                        | ActionDraft::AmountOff { per_item: true, .. }
                );
                if catalog && fits_catalog {
                    d.scope = Scope::Catalog;
                }
                promo(n, d)
            })
    }

    fn promotions() -> impl Strategy<Value = Vec<Promotion>> {
        (1..8usize).prop_flat_map(|k| (0..k).map(|i| promotion(i as u128 + 1)).collect::<Vec<_>>())
    }

    fn lines() -> impl Strategy<Value = Vec<LineDraft>> {
        prop::collection::vec(
            (prop::sample::select(vec!["p1", "p2", "p3", "p4"]), 1..6i32, 0..5_000i64),
            0..6,
        )
        .prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(i, (product, q, price))| LineDraft {
                    product_id: product.into(),
                    ..line(&format!("l{i}"), q, price)
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn adjustments_sum_to_each_amount_and_nothing_goes_below_zero(ps in promotions(), ls in lines(), shipping in 0..2_000i64) {
            let mut c = cart(ls);
            c.shipping_amount = shipping;
            let r = run(&ps, c);
            for applied in &r.applied {
                let on_lines: i64 = r.lines.iter().flat_map(|l| &l.adjustments).filter(|a| a.promotion_id == applied.promotion_id).map(|a| a.amount).sum();
                let is_shipping = ps.iter().any(|p| p.id == applied.promotion_id && matches!(p.definition.action, Action::FreeShipping { .. }));
                prop_assert!(applied.amount > 0);
                if !is_shipping {
                    prop_assert_eq!(on_lines, applied.amount);
                }
            }
            for l in &r.lines {
                prop_assert!(l.total >= 0 && l.discount == l.adjustments.iter().map(|a| a.amount).sum::<i64>());
                prop_assert_eq!(l.total, l.subtotal - l.discount);
            }
            prop_assert!(r.shipping_discount >= 0 && r.shipping_discount <= r.shipping_amount);
            prop_assert_eq!(r.total, r.subtotal + r.shipping_amount - r.discount_total);
            prop_assert_eq!(r.discount_total, r.applied.iter().map(|a| a.amount).sum::<i64>());
        }

        #[test]
        fn the_same_input_twice_gives_the_same_output(ps in promotions(), ls in lines()) {
            let mut reversed = ps.clone();
            reversed.reverse();
            prop_assert_eq!(run(&ps, cart(ls.clone())), run(&reversed, cart(ls)));
        }

        #[test]
        fn line_order_does_not_change_totals_of_order_independent_rules(bps in prop::collection::vec(1..=10_000i32, 1..4), ls in lines()) {
            let ps: Vec<Promotion> = bps.iter().enumerate().map(|(i, bp)| promo(i as u128 + 1, draft(pct(*bp)))).collect();
            let mut reversed = ls.clone();
            reversed.reverse();
            let (a, b) = (run(&ps, cart(ls)), run(&ps, cart(reversed)));
            prop_assert_eq!(a.discount_total, b.discount_total);
            prop_assert_eq!(a.total, b.total);
        }
    }
}

#[test]
fn a_pool_found_used_up_by_the_store_rejects_even_where_the_definition_in_hand_has_no_limit() {
    // The snapshot may be a moment behind a limit that was just put on.
    let p = promo(1, draft(pct(1000)));
    let mut c = cart(vec![line("x", 1, 1000)]);
    c.customer = Some(CustomerDraft {
        id: "k".into(),
        segments: vec![],
        review_count: 0,
        order_count: 0,
    });
    let total = run_with(&[p.clone()], &[], c.clone(), &Counts(HashMap::from([(p.id, USED_UP)])));
    assert_eq!(reasons(&total), vec![RejectionReason::PromotionUsageLimitReached]);
    let per_customer = Counts(HashMap::from([(Uuid::from_u128(p.id.as_u128() + 500), USED_UP)]));
    let r = run_with(&[p.clone()], &[], c.clone(), &per_customer);
    assert_eq!(reasons(&r), vec![RejectionReason::CustomerUsageLimitReached]);
    let r = run_with(&[p], &[], c, &Counts(HashMap::from([(Uuid::from_u128(1), 5)])));
    assert!(r.rejected.is_empty(), "a count without a limit rejects nothing");
}
