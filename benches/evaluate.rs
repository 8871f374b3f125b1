//! Evaluation cost of a 20-line cart against 100 .. 100,000 active
//! promotions, most targeted at other products: candidate look-up in the
//! snapshot plus the engine. `cargo bench --bench evaluate`.

use std::collections::HashMap;

use chrono::{Duration, TimeZone, Utc};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use promotions::domain::cart::{Cart, CartDraft, LineDraft};
use promotions::domain::engine::{Evaluation, NoUsage, evaluate};
use promotions::domain::promotion::{
    ActionDraft, DayOfWeek, Promotion, PromotionDefinition, PromotionDraft, Scope, TargetDraft,
};
use promotions::pricing::snapshot::Snapshot;
use uuid::Uuid;

/// Promotion i: the first 10 untargeted, the next 20 targeted at the cart's
/// products (sku-0 .. sku-19), all others at products not in the cart.
fn promotion(i: u128) -> Promotion {
    let action = match i % 3 {
        0 => ActionDraft::PercentageOff {
            basis_points: 500 + (i % 50) as i32,
            max_discount: None,
        },
        1 => ActionDraft::BuyXGetY {
            buy_quantity: 2,
            get_quantity: 1,
            basis_points_off: 10_000,
            max_applications: None,
            get_target: None,
        },
        _ => ActionDraft::AmountOff {
            amount: 100,
            per_item: true,
        },
    };
    let product = match i {
        0..10 => None,
        10..30 => Some(format!("sku-{}", i - 10)),
        _ => Some(format!("other-{i}")),
    };
    let target = TargetDraft {
        product_ids: product.into_iter().collect(),
        ..Default::default()
    };
    let draft = PromotionDraft {
        priority: (i % 7) as i32,
        currency: Some("EUR".into()),
        target,
        ..PromotionDraft::new(format!("promotion {i}"), Scope::Cart, action)
    };
    let created = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap() + Duration::seconds(i as i64);
    Promotion {
        id: Uuid::from_u128(i + 1),
        definition: PromotionDefinition::new(&draft).expect("valid"),
        redemption_count: 0,
        discount_total: 0,
        created_at: created,
        updated_at: created,
    }
}

fn cart() -> Cart {
    let lines = (0..20)
        .map(|i| LineDraft {
            id: format!("l{i}"),
            product_id: format!("sku-{i}"),
            category_ids: vec![format!("cat-{}", i % 4)],
            brand_id: Some(format!("brand-{}", i % 3)),
            quantity: 1 + i % 3,
            unit_price: 999 + 100 * i as i64,
            rating: Some(4.0),
        })
        .collect();
    Cart::new(
        "cart",
        &CartDraft {
            currency: "EUR".into(),
            customer: None,
            lines,
            shipping_amount: 499,
            coupon_codes: vec![],
        },
    )
    .expect("valid cart")
}

fn bench(c: &mut Criterion) {
    let now = Utc.with_ymd_and_hms(2026, 11, 26, 12, 0, 0).unwrap();
    let cart = cart();
    let mut group = c.benchmark_group("evaluate_20_lines");
    for n in [100u128, 1_000, 10_000, 100_000] {
        let snapshot = Snapshot::new((0..n).map(promotion), HashMap::new());
        group.bench_with_input(BenchmarkId::from_parameter(n), &snapshot, |b, snapshot| {
            b.iter(|| {
                evaluate(&Evaluation {
                    cart: &cart,
                    now,
                    weekday: DayOfWeek::Thursday,
                    offers: snapshot.offers_for(&cart),
                    coupons: vec![],
                    usage: &NoUsage,
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
