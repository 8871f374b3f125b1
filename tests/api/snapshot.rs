//! The pricing snapshot kept by change notifications alone: after every step
//! of a seeded sequence of admin changes (promotions created, replaced,
//! switched off and on; campaigns created, moved, paused, ended; coupons
//! created, switched, re-limited), a replica's snapshot, updated with only
//! what each change touched, equals one loaded from scratch, and its coupon
//! cache serves the coupon as stored. Replay a failure with
//! `SNAPSHOT_SEED=<seed>`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use promotions::domain::cart::{Cart, CartDraft};
use promotions::limits::Counters;
use promotions::pricing::Pricing;
use promotions::store::changes;
use promotions::workers::Supervisor;
use promotions::workers::snapshot::SnapshotRefresh;
use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use crate::helpers::{TestApp, promotion_input, redis_connection, seeded, spawn_app, until};

const STEPS: usize = 120;

/// What the sequence has made so far.
#[derive(Default)]
struct Made {
    promotions: Vec<String>,
    campaigns: Vec<(String, &'static str)>,
    coupons: Vec<String>,
}

fn pick<'a>(rng: &mut StdRng, pool: &'a [&'a str], at_most: usize) -> Vec<&'a str> {
    let n = rng.random_range(0..=at_most);
    pool.choose_multiple(rng, n).copied().collect()
}

/// A window that holds still for the test's length: none, over, running or to come.
fn window(rng: &mut StdRng) -> (Value, Value) {
    let at = |hours: i64| json!((Utc::now() + chrono::Duration::hours(hours)).to_rfc3339());
    match rng.random_range(0..4) {
        0 => (Value::Null, Value::Null),
        1 => (at(-48), at(-24)),
        2 => (at(-24), at(240)),
        _ => (at(24), at(48)),
    }
}

fn promotion(rng: &mut StdRng, made: &Made) -> Value {
    let (starts_at, ends_at) = window(rng);
    let campaign = if rng.random_bool(0.4) {
        made.campaigns.choose(rng).map(|(id, _)| json!(id))
    } else {
        None
    };
    promotion_input(json!({
        "name": format!("p{}", rng.random_range(0..1000)),
        "campaignId": campaign,
        "priority": rng.random_range(0..5),
        "startsAt": starts_at,
        "endsAt": ends_at,
        "active": rng.random_bool(0.8),
        "target": {
            "productIds": pick(rng, &["p1", "p2", "p3", "p4", "p5"], 3),
            "categoryIds": pick(rng, &["c1", "c2", "c3"], 2),
            "brandIds": pick(rng, &["b1", "b2"], 1),
            "excludeProductIds": pick(rng, &["p1", "p6"], 1),
        },
        "action": { "percentageOff": { "basisPoints": rng.random_range(1..10_000) } },
    }))
}

fn next_status(rng: &mut StdRng, status: &str) -> Option<&'static str> {
    let to: &[&'static str] = match status {
        "DRAFT" => &["ACTIVE", "ENDED"],
        "ACTIVE" => &["PAUSED", "ENDED"],
        "PAUSED" => &["ACTIVE", "ENDED"],
        _ => &[],
    };
    to.choose(rng).copied()
}

/// One random admin change; returns what it did (for the failure message)
/// and the coupon code it changed, if any.
async fn change(app: &TestApp, rng: &mut StdRng, made: &mut Made) -> (String, Option<String>) {
    let id_of = |v: &Value, field: &str| v[field]["id"].as_str().expect("an id").to_owned();
    match rng.random_range(0..10) {
        0 | 1 => {
            let input = promotion(rng, made);
            let created = app
                .data(
                    "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
                    json!({ "i": input }),
                )
                .await;
            made.promotions.push(id_of(&created, "createPromotion"));
            (format!("create promotion {input}"), None)
        }
        2 | 3 if !made.promotions.is_empty() => {
            let id = made.promotions.choose(rng).expect("one").clone();
            let input = promotion(rng, made);
            app.data(
                "mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }",
                json!({ "id": id, "i": input }),
            )
            .await;
            (format!("update promotion {id} to {input}"), None)
        }
        4 if !made.promotions.is_empty() => {
            let id = made.promotions.choose(rng).expect("one").clone();
            let active = rng.random_bool(0.5);
            app.data(
                "mutation($id: ID!, $a: Boolean!) { setPromotionActive(id: $id, active: $a) { id } }",
                json!({ "id": id, "a": active }),
            )
            .await;
            (format!("set promotion {id} active {active}"), None)
        }
        5 => {
            let (starts_at, ends_at) = window(rng);
            let input = json!({ "name": "c", "startsAt": starts_at, "endsAt": ends_at });
            let created = app
                .data(
                    "mutation($i: CampaignInput!) { createCampaign(input: $i) { id } }",
                    json!({ "i": input }),
                )
                .await;
            made.campaigns.push((id_of(&created, "createCampaign"), "DRAFT"));
            (format!("create campaign {input}"), None)
        }
        6 if !made.campaigns.is_empty() => {
            let (id, _) = made.campaigns.choose(rng).expect("one").clone();
            let (starts_at, ends_at) = window(rng);
            let input = json!({ "name": "c", "startsAt": starts_at, "endsAt": ends_at });
            app.data(
                "mutation($id: ID!, $i: CampaignInput!) { updateCampaign(id: $id, input: $i) { id } }",
                json!({ "id": id, "i": input }),
            )
            .await;
            (format!("move campaign {id} to {input}"), None)
        }
        7 if !made.campaigns.is_empty() => {
            let at = rng.random_range(0..made.campaigns.len());
            let (id, status) = made.campaigns[at].clone();
            let Some(to) = next_status(rng, status) else {
                return (format!("campaign {id} stays {status}"), None);
            };
            app.data(
                "mutation($id: ID!, $s: CampaignStatus!) { setCampaignStatus(id: $id, status: $s) { id } }",
                json!({ "id": id, "s": to }),
            )
            .await;
            made.campaigns[at].1 = to;
            (format!("campaign {id} {status} -> {to}"), None)
        }
        8 if !made.promotions.is_empty() => {
            let code = format!("SNAP-{}", made.coupons.len());
            let promotion = made.promotions.choose(rng).expect("one").clone();
            app.data(
                "mutation($i: CouponInput!) { createCoupon(input: $i) { code } }",
                json!({ "i": { "promotionId": promotion, "code": code, "usageLimit": rng.random_range(1..5) } }),
            )
            .await;
            made.coupons.push(code.clone());
            (format!("create coupon {code}"), Some(code))
        }
        9 if !made.coupons.is_empty() => {
            let code = made.coupons.choose(rng).expect("one").clone();
            if rng.random_bool(0.5) {
                let active = rng.random_bool(0.5);
                app.data(
                    "mutation($c: String!, $a: Boolean!) { setCouponActive(code: $c, active: $a) { code } }",
                    json!({ "c": code, "a": active }),
                )
                .await;
                (format!("set coupon {code} active {active}"), Some(code))
            } else {
                let limit = rng.random_range(1..50);
                app.data(
                    "mutation($c: String!, $i: UpdateCouponInput!) { updateCoupon(code: $c, input: $i) { code } }",
                    json!({ "c": code, "i": { "usageLimit": limit } }),
                )
                .await;
                (format!("limit coupon {code} to {limit}"), Some(code))
            }
        }
        _ => ("nothing".to_owned(), None),
    }
}

/// The coupon `pricing` finds for `code` (through its cache), as JSON.
async fn coupon_seen(pricing: &Pricing, code: &str) -> String {
    let cart = Cart::new(
        "cart",
        &CartDraft {
            currency: "EUR".into(),
            customer: None,
            lines: vec![],
            shipping_amount: 0,
            coupon_codes: vec![code.to_owned()],
        },
    )
    .expect("a valid cart");
    let (_, found) = pricing.inputs(pricing.db(), &cart).await.expect("coupons read");
    format!("{:?}", found)
}

#[tokio::test]
async fn a_snapshot_kept_by_change_notifications_equals_one_loaded_from_scratch_after_every_change() {
    let (seed, mut rng) = seeded("SNAPSHOT_SEED");
    let app = spawn_app().await;
    let counters = Counters::new(
        redis_connection(&app.redis_url).await,
        &app.redis_key_prefix,
        Duration::from_secs(60),
        Default::default(),
    );
    let scratch = async || {
        Pricing::start(app.db.clone(), counters.clone(), chrono_tz::UTC)
            .await
            .expect("a snapshot loads")
    };
    let replica: Arc<Pricing> = scratch().await;
    let workers = Supervisor::new(Default::default());
    workers.spawn(SnapshotRefresh::new(replica.clone()));
    until("the replica listens", Duration::from_secs(5), async || {
        workers.record().states().iter().any(|w| w.runs > 0)
    })
    .await;
    let mut made = Made::default();
    for step in 0..STEPS {
        // Cached copies of every coupon, and the absence of the next one:
        // a change must evict what it changes.
        for code in made
            .coupons
            .iter()
            .cloned()
            .chain([format!("SNAP-{}", made.coupons.len())])
        {
            coupon_seen(&replica, &code).await;
        }
        let (what, coupon) = change(&app, &mut rng, &mut made).await;
        let context = format!("SNAPSHOT_SEED={seed}, step {step}: {what}");
        let version = changes::version(&app.db).await.expect("the pricing version");
        until(
            &format!("the replica reaches version {version} ({context})"),
            Duration::from_secs(5),
            async || replica.snapshot().version() >= version,
        )
        .await;
        let expected = scratch().await.snapshot();
        assert_eq!(expected.version(), version, "{context}");
        assert!(
            *replica.snapshot() == *expected,
            "{context}: the replica's snapshot differs from a fresh load"
        );
        if let Some(code) = coupon {
            let fresh = scratch().await;
            let stored = coupon_seen(&fresh, &code).await;
            until(
                &format!("the replica sees coupon {code} as stored ({context})"),
                Duration::from_secs(3),
                async || coupon_seen(&replica, &code).await == stored,
            )
            .await;
        }
    }
    assert_eq!(
        replica.full_reloads(),
        1,
        "SNAPSHOT_SEED={seed}: after the first load, every change was applied by itself"
    );
    assert!(
        made.promotions.len() > 10,
        "SNAPSHOT_SEED={seed}: the sequence made promotions"
    );
    workers.shutdown().await;
}
