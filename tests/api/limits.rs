//! Usage limits that admins change: a limit counts every counted use of its
//! pool, whenever made; lowering, raising, adding and removing act at once
//! on every replica, whatever its snapshot says; any customer id is safe;
//! a reservation never recorded is given back within the counter's ttl.

use std::sync::Arc;
use std::time::Duration;

use promotions::limits::{Counters, Pool, Reserved, Scope};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{TestApp, USAGE_DRIFT_SQL, promotion_input, rows, spawn_app, spawn_app_with};

const APPLY: &str = "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) {
    rejected { promotionId couponCode reason } redemption { orderId } } }";

fn cart(customer: &str, codes: &[&str]) -> Value {
    json!({
        "currency": "EUR",
        "customer": { "id": customer },
        "couponCodes": codes,
        "lines": [{ "id": "l1", "productId": "p", "quantity": 1, "unitPrice": 10_000 }],
    })
}

/// Applies; Ok(()) when redeemed, Err(reasons) when nothing was recorded.
async fn apply(app: &TestApp, order: &str, customer: &str, codes: &[&str]) -> Result<(), Vec<String>> {
    let data = app
        .data(
            APPLY,
            json!({ "i": { "orderId": order, "cart": cart(customer, codes) } }),
        )
        .await;
    let result = &data["applyPromotions"];
    if result["redemption"].is_null() {
        Err(result["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["reason"].as_str().unwrap().to_owned())
            .collect())
    } else {
        Ok(())
    }
}

async fn release(app: &TestApp, order: &str) {
    app.data(
        "mutation($o: String!) { releaseRedemption(orderId: $o) { status } }",
        json!({ "o": order }),
    )
    .await;
}

/// Replaces the promotion's definition with these limits.
async fn set_limits(app: &TestApp, id: &str, total: Option<i32>, per_customer: Option<i32>) {
    app.data(
        "mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }",
        json!({ "id": id, "i": promotion_input(json!({ "totalUsageLimit": total, "usageLimitPerCustomer": per_customer })) }),
    )
    .await;
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    rows(app, sql).await[0].try_get_by_index::<i64>(0).unwrap()
}

/// Counted redemptions of a promotion in PostgreSQL.
async fn counted(app: &TestApp, promotion: &str) -> i64 {
    scalar(
        app,
        &format!(
            "SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id \
             WHERE r.status = 'REDEEMED' AND rp.promotion_id = '{promotion}'"
        ),
    )
    .await
}

/// A promotion with these limits, once the snapshot prices it.
async fn limited_promotion(app: &TestApp, total: Option<i32>, per_customer: Option<i32>) -> String {
    let id = app
        .create_promotion(promotion_input(
            json!({ "totalUsageLimit": total, "usageLimitPerCustomer": per_customer }),
        ))
        .await;
    app.wait_until_priced(&cart("someone", &[]), 1000).await;
    id
}

/// Applies `n` orders at once across `apps`; how many were redeemed.
async fn concurrent(apps: &[Arc<TestApp>], prefix: &str, n: usize) -> usize {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let app = apps[i % apps.len()].clone();
            let order = format!("{prefix}-{i}");
            tokio::spawn(async move { apply(&app, &order, &format!("c{i}"), &[]).await.is_ok() })
        })
        .collect();
    let mut redeemed = 0;
    for task in tasks {
        redeemed += usize::from(task.await.unwrap());
    }
    redeemed
}

#[tokio::test]
async fn lowering_a_limit_below_freed_uses_admits_exactly_up_to_the_new_limit_on_every_replica() {
    let app = Arc::new(spawn_app().await);
    let other = Arc::new(app.replica().await);
    let id = limited_promotion(&app, Some(10), None).await;
    for i in 0..8 {
        apply(&app, &format!("o-{i}"), &format!("c{i}"), &[]).await.unwrap();
    }
    for i in 0..4 {
        release(&app, &format!("o-{i}")).await;
    }
    assert_eq!(counted(&app, &id).await, 4);
    // No waiting for snapshots: PostgreSQL counts against the limit in force.
    set_limits(&app, &id, Some(5), None).await;
    assert_eq!(concurrent(&[app.clone(), other.clone()], "burst", 10).await, 1);
    assert_eq!(counted(&app, &id).await, 5);
    assert_eq!(scalar(&app, USAGE_DRIFT_SQL).await, 0);
}

#[tokio::test]
async fn a_limit_lowered_below_the_count_refuses_until_releases_bring_the_count_under_it() {
    let app = spawn_app().await;
    let id = limited_promotion(&app, Some(10), None).await;
    for i in 0..6 {
        apply(&app, &format!("o-{i}"), &format!("c{i}"), &[]).await.unwrap();
    }
    set_limits(&app, &id, Some(4), None).await;
    release(&app, "o-0").await;
    release(&app, "o-1").await;
    assert_eq!(counted(&app, &id).await, 4);
    assert_eq!(
        apply(&app, "more", "c-more", &[]).await,
        Err(vec!["PROMOTION_USAGE_LIMIT_REACHED".to_owned()])
    );
    release(&app, "o-2").await;
    apply(&app, "more", "c-more", &[]).await.unwrap();
    assert_eq!(counted(&app, &id).await, 4);
    // Raising frees exactly the difference.
    set_limits(&app, &id, Some(6), None).await;
    let app = Arc::new(app);
    assert_eq!(concurrent(std::slice::from_ref(&app), "raised", 5).await, 2);
    assert_eq!(counted(&app, &id).await, 6);
}

#[tokio::test]
async fn a_limit_put_on_a_used_pool_counts_the_uses_made_while_it_had_none() {
    let app = spawn_app().await;
    let id = limited_promotion(&app, None, None).await;
    for i in 0..6 {
        apply(&app, &format!("o-{i}"), "regular", &[]).await.unwrap();
    }
    set_limits(&app, &id, Some(4), None).await;
    for i in 0..3 {
        assert_eq!(
            apply(&app, &format!("late-{i}"), &format!("c{i}"), &[]).await,
            Err(vec!["PROMOTION_USAGE_LIMIT_REACHED".to_owned()])
        );
    }
    assert_eq!(counted(&app, &id).await, 6);

    // Per customer: the customer's earlier orders count.
    set_limits(&app, &id, None, Some(7)).await;
    apply(&app, "seventh", "regular", &[]).await.unwrap();
    set_limits(&app, &id, None, None).await;
    apply(&app, "eighth", "regular", &[]).await.unwrap();
    set_limits(&app, &id, None, Some(8)).await;
    assert_eq!(
        apply(&app, "ninth", "regular", &[]).await,
        Err(vec!["CUSTOMER_USAGE_LIMIT_REACHED".to_owned()]),
        "putting the limit back counts everything"
    );
    apply(&app, "first", "newcomer", &[]).await.unwrap();
    assert_eq!(scalar(&app, USAGE_DRIFT_SQL).await, 0);
}

#[tokio::test]
async fn a_coupons_limits_change_under_the_same_rules() {
    let app = spawn_app().await;
    let promotion = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "SHARED" }))
        .await;
    app.wait_until_priced(&cart("someone", &["SHARED"]), 1000).await;
    for i in 0..3 {
        apply(&app, &format!("o-{i}"), "loyal", &["SHARED"]).await.unwrap();
    }
    let update = |input: Value| {
        let app = &app;
        async move {
            app.data(
                "mutation($i: UpdateCouponInput!) { updateCoupon(code: \"shared\", input: $i) { code usageLimit usageLimitPerCustomer } }",
                json!({ "i": input }),
            )
            .await["updateCoupon"]
                .clone()
        }
    };
    assert_eq!(
        update(json!({ "usageLimit": 2 })).await,
        json!({ "code": "SHARED", "usageLimit": 2, "usageLimitPerCustomer": null })
    );
    assert_eq!(
        apply(&app, "o-3", "other", &["SHARED"]).await,
        Err(vec!["COUPON_USAGE_LIMIT_REACHED".to_owned()])
    );
    update(json!({ "usageLimit": 4 })).await;
    apply(&app, "o-4", "other", &["SHARED"]).await.unwrap();
    assert!(
        apply(&app, "o-5", "other", &["SHARED"]).await.is_err(),
        "exactly one more"
    );
    update(json!({ "usageLimit": null, "usageLimitPerCustomer": 3 })).await;
    assert_eq!(
        apply(&app, "o-6", "loyal", &["SHARED"]).await,
        Err(vec!["COUPON_USAGE_LIMIT_REACHED".to_owned()]),
        "the customer's three earlier uses count"
    );
    apply(&app, "o-7", "other", &["SHARED"]).await.unwrap();
    // Left-out fields stay; a bad window or limit names its field.
    assert_eq!(
        update(json!({})).await,
        json!({ "code": "SHARED", "usageLimit": null, "usageLimitPerCustomer": 3 })
    );
    let (code, field) = app
        .error(
            "mutation { updateCoupon(code: \"SHARED\", input: { usageLimit: 0 }) { code } }",
            json!({}),
        )
        .await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("BAD_USER_INPUT", Some("input.usageLimit"))
    );
    let (code, field) = app
        .error(
            "mutation { updateCoupon(code: \"NO-SUCH\", input: {}) { code } }",
            json!({}),
        )
        .await;
    assert_eq!((code.as_str(), field.as_deref()), ("NOT_FOUND", Some("code")));
    let events = app.outbox().await;
    assert_eq!(events.iter().filter(|(t, _, _)| t == "coupon.updated").count(), 4);
    assert_eq!(scalar(&app, USAGE_DRIFT_SQL).await, 0);
}

#[tokio::test]
async fn any_customer_id_is_safe_in_every_key_and_encoding() {
    let app = spawn_app().await;
    let id = limited_promotion(&app, Some(100), Some(1)).await;
    for (i, customer) in ["a;b=c", "a", "a;b", "=;|:{}", "}{promo:x}", "é😀\u{202e}", "pc:a"]
        .iter()
        .enumerate()
    {
        apply(&app, &format!("o-{i}"), customer, &[]).await.unwrap();
        assert_eq!(
            apply(&app, &format!("again-{i}"), customer, &[]).await,
            Err(vec!["CUSTOMER_USAGE_LIMIT_REACHED".to_owned()]),
            "{customer}"
        );
    }
    release(&app, "o-0").await;
    apply(&app, "again-0", "a;b=c", &[]).await.unwrap();
    assert_eq!(counted(&app, &id).await, 7);
    assert_eq!(scalar(&app, USAGE_DRIFT_SQL).await, 0);
}

#[tokio::test]
async fn a_single_use_code_reserved_by_an_order_that_died_is_usable_again_within_the_counter_ttl() {
    let app = spawn_app_with(None, |c| c.usage_counter_ttl = Duration::from_secs(2)).await;
    let promotion = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "ONCE", "usageLimit": 1 }))
        .await;
    app.wait_until_priced(&cart("someone", &["ONCE"]), 1000).await;
    let coupon: Uuid = rows(&app, "SELECT id FROM coupons WHERE code = 'ONCE'").await[0]
        .try_get("", "id")
        .unwrap();

    // What an apply killed between its reservation and its commit leaves.
    let redis = crate::helpers::redis_connection(&app.redis_url).await;
    let counters = Counters::new(redis, &app.redis_key_prefix, Duration::from_secs(2), Default::default());
    let pool = Pool {
        scope: Scope::Coupon,
        owner: coupon,
        customer: None,
        limit: Some(1),
    };
    let promotion: Uuid = promotion.parse().unwrap();
    counters.seed(promotion, &pool, 0).await.unwrap();
    assert!(matches!(
        counters.reserve(promotion, std::slice::from_ref(&pool)).await.unwrap(),
        Reserved::Taken(_)
    ));
    assert_eq!(
        apply(&app, "next", "shopper", &["ONCE"]).await,
        Err(vec!["COUPON_USAGE_LIMIT_REACHED".to_owned()]),
        "held by the dead order's reservation"
    );
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    apply(&app, "next", "shopper", &["ONCE"]).await.unwrap();
    assert_eq!(
        apply(&app, "after", "shopper-2", &["ONCE"]).await,
        Err(vec!["COUPON_USAGE_LIMIT_REACHED".to_owned()]),
        "and still used once only"
    );
}
