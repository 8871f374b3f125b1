//! applyPromotions and releaseRedemption: limits that cannot be exceeded,
//! under concurrency, several replicas, Redis losing its data or stopping.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::helpers::{OwnRedis, TestApp, promotion_input, spawn_app, spawn_app_with_redis, until};

const APPLY: &str = r#"mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) {
    discountTotal total
    applied { promotionId couponCode amount }
    rejected { promotionId couponCode reason }
    redemption { orderId customerId status discountTotal promotions { promotionId amount } }
} }"#;

fn cart(customer: &str, codes: &[&str]) -> Value {
    json!({
        "currency": "EUR",
        "customer": { "id": customer },
        "couponCodes": codes,
        "lines": [{ "id": "l1", "productId": "p", "quantity": 1, "unitPrice": 10_000 }]
    })
}

async fn apply(app: &TestApp, order: &str, cart: Value) -> Value {
    app.graphql(APPLY, json!({ "i": { "orderId": order, "cart": cart } }))
        .await
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap();
    row.try_get_by_index::<i64>(0).unwrap()
}

/// Waits until the preview on `app` applies `count` promotions (the snapshot follows changes within a second).
async fn wait_for_snapshot(app: &TestApp, codes: &[&str], count: usize) {
    let q = "query($c: CartInput!) { previewPromotions(cart: $c) { applied { promotionId } } }";
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let data = app.data(q, json!({ "c": cart("someone", codes) })).await;
        if data["previewPromotions"]["applied"].as_array().unwrap().len() == count {
            return;
        }
        assert!(Instant::now() < deadline, "the snapshot did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn eventually_eq(app: &TestApp, query: &str, vars: Value, pick: impl Fn(&Value) -> Value, want: Value) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let got = pick(&app.data(query, vars.clone()).await);
        if got == want {
            return;
        }
        assert!(Instant::now() < deadline, "{got} never became {want}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_limit_of_ten_admits_exactly_ten_of_twenty_concurrent_orders() {
    let app = Arc::new(spawn_app().await);
    let id = app
        .create_promotion(promotion_input(json!({ "totalUsageLimit": 10 })))
        .await;
    wait_for_snapshot(&app, &[], 1).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            apply(&app, &format!("order-{i}"), cart(&format!("c{i}"), &[])).await
        }));
    }
    let mut redeemed = 0;
    let mut limited = 0;
    for t in tasks {
        let r = t.await.unwrap();
        assert!(r.get("errors").is_none(), "{r}");
        let r = &r["data"]["applyPromotions"];
        if r["redemption"].is_null() {
            assert_eq!(
                r["rejected"],
                json!([{ "promotionId": id, "couponCode": null, "reason": "PROMOTION_USAGE_LIMIT_REACHED" }])
            );
            assert_eq!(r["discountTotal"], 0);
            limited += 1;
        } else {
            assert_eq!(r["redemption"]["status"], "REDEEMED");
            redeemed += 1;
        }
    }
    assert_eq!((redeemed, limited), (10, 10));
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM redemptions WHERE status = 'REDEEMED'").await,
        10
    );
    assert_eq!(
        scalar(&app, "SELECT COALESCE(sum(used), 0)::bigint FROM usage_counts").await,
        10
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'redemption.created'"
        )
        .await,
        10
    );
    let usage = "query($id: ID!) { promotion(id: $id) { status usage { redemptions remaining } } }";
    eventually_eq(
        &app,
        usage,
        json!({ "id": id }),
        |d| d["promotion"].clone(),
        json!({ "status": "EXHAUSTED", "usage": { "redemptions": 10, "remaining": 0 } }),
    )
    .await;
    // The live counter says the same: a preview is rejected too.
    let q = "query($c: CartInput!) { previewPromotions(cart: $c) { rejected { reason } } }";
    let data = app.data(q, json!({ "c": cart("late", &[]) })).await;
    assert_eq!(
        data["previewPromotions"]["rejected"],
        json!([{ "reason": "PROMOTION_USAGE_LIMIT_REACHED" }])
    );
}

#[tokio::test]
async fn retries_count_once_release_frees_the_order_and_is_idempotent() {
    let app = Arc::new(spawn_app().await);
    let id = app
        .create_promotion(promotion_input(
            json!({ "totalUsageLimit": 5, "usageLimitPerCustomer": 5 }),
        ))
        .await;
    wait_for_snapshot(&app, &[], 1).await;
    let first = apply(&app, "o-1", cart("c1", &[])).await;
    let again = apply(&app, "o-1", cart("c1", &[])).await;
    assert_eq!(first, again, "a sequential retry returns the recorded result");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move { apply(&app, "o-2", cart("c1", &[])).await }));
    }
    let results: Vec<Value> = futures_join(tasks).await;
    assert!(
        results.windows(2).all(|w| w[0] == w[1]),
        "concurrent retries see one result"
    );
    assert_eq!(scalar(&app, "SELECT count(*) FROM redemptions").await, 2);
    assert_eq!(
        scalar(&app, "SELECT COALESCE(sum(used), 0)::bigint FROM usage_counts").await,
        4,
        "2 orders x (total + per customer)"
    );

    let other_cart = app
        .graphql(APPLY, json!({ "i": { "orderId": "o-1", "cart": cart("c2", &[]) } }))
        .await;
    assert_eq!(other_cart["errors"][0]["extensions"]["code"], "CONFLICT");

    let release = "mutation($o: String!) { releaseRedemption(orderId: $o) { orderId status releasedAt } }";
    let released = app.data(release, json!({ "o": "o-1" })).await;
    assert_eq!(released["releaseRedemption"]["status"], "RELEASED");
    let twice = app.data(release, json!({ "o": "o-1" })).await;
    assert_eq!(twice, released, "release is idempotent");
    assert_eq!(
        scalar(&app, "SELECT COALESCE(sum(used), 0)::bigint FROM usage_counts").await,
        2
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT count(*) FROM outbox_events WHERE event_type = 'redemption.released'"
        )
        .await,
        1
    );
    let read = app.data("{ redemption(orderId: \"o-1\") { status } }", json!({})).await;
    assert_eq!(read["redemption"]["status"], "RELEASED");

    // After a release the order id is free again, even with another cart.
    let reapplied = apply(&app, "o-1", cart("c2", &[])).await;
    assert_eq!(reapplied["data"]["applyPromotions"]["redemption"]["customerId"], "c2");
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM redemptions WHERE order_id = 'o-1'").await,
        2
    );
    let (code, field) = app.error(release, json!({ "o": "never-applied" })).await;
    assert_eq!((code.as_str(), field.as_deref()), ("NOT_FOUND", Some("orderId")));
    let usage = "query($id: ID!) { promotion(id: $id) { usage { redemptions } } }";
    eventually_eq(
        &app,
        usage,
        json!({ "id": id }),
        |d| d["promotion"]["usage"]["redemptions"].clone(),
        json!(2),
    )
    .await;
}

#[tokio::test]
async fn an_order_that_gets_nothing_records_nothing() {
    let app = spawn_app().await;
    let r = apply(&app, "empty-1", cart("c1", &["NOPE-1"])).await;
    assert_eq!(r["data"]["applyPromotions"]["redemption"], Value::Null);
    assert_eq!(
        r["data"]["applyPromotions"]["rejected"][0]["reason"],
        "COUPON_NOT_FOUND"
    );
    assert_eq!(scalar(&app, "SELECT count(*) FROM redemptions").await, 0);
    let r = apply(&app, "empty-1", cart("c2", &[])).await;
    assert!(r.get("errors").is_none(), "nothing recorded: the order id stays free");
}

#[tokio::test]
async fn a_coupon_limit_and_a_per_customer_limit_reject_with_their_reasons() {
    let app = spawn_app().await;
    let coded = app
        .create_promotion(promotion_input(
            json!({ "requiresCoupon": true, "usageLimitPerCustomer": 1 }),
        ))
        .await;
    app.create_coupon(json!({ "promotionId": coded, "code": "ONCE-2", "usageLimit": 2 }))
        .await;
    wait_for_snapshot(&app, &["ONCE-2"], 1).await;
    let ok = apply(&app, "a", cart("c1", &["once-2"])).await;
    assert_eq!(ok["data"]["applyPromotions"]["applied"][0]["couponCode"], "ONCE-2");
    let again = apply(&app, "b", cart("c1", &["once-2"])).await;
    assert_eq!(
        again["data"]["applyPromotions"]["rejected"][0]["reason"],
        "CUSTOMER_USAGE_LIMIT_REACHED"
    );
    apply(&app, "c", cart("c2", &["once-2"])).await;
    let used_up = apply(&app, "d", cart("c3", &["once-2"])).await;
    assert_eq!(
        used_up["data"]["applyPromotions"]["rejected"][0]["reason"],
        "COUPON_USAGE_LIMIT_REACHED"
    );
    let coupon = "{ coupon(code: \"ONCE-2\") { timesUsed } }";
    eventually_eq(&app, coupon, json!({}), |d| d["coupon"]["timesUsed"].clone(), json!(2)).await;
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<Value>>) -> Vec<Value> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// 1,500 orders from 300 customers over three replicas: promotion A (total
/// 500, 2 per customer) and a coupon promotion B (coupon limit 300, 1 per customer).
async fn load(apps: &[Arc<TestApp>], during: impl Fn(usize) -> Option<tokio::task::JoinHandle<()>>) -> Vec<Value> {
    let gate = Arc::new(Semaphore::new(48));
    let mut tasks = Vec::new();
    for i in 0..1500 {
        if let Some(side) = during(i) {
            side.await.unwrap();
        }
        let app = apps[i % apps.len()].clone();
        let gate = gate.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            apply(
                &app,
                &format!("order-{i}"),
                cart(&format!("customer-{}", i % 300), &["SCALE-B"]),
            )
            .await
        }));
    }
    futures_join(tasks).await
}

fn check_exact(results: &[Value], a: &str, b: &str, tolerate_unavailable: bool) -> (usize, usize) {
    let (mut a_count, mut b_count) = (0, 0);
    let mut per_customer_a: HashMap<String, usize> = HashMap::new();
    for (i, r) in results.iter().enumerate() {
        if let Some(errors) = r.get("errors") {
            assert!(
                tolerate_unavailable && errors[0]["extensions"]["code"] == "UNAVAILABLE",
                "{r}"
            );
            continue;
        }
        for applied in r["data"]["applyPromotions"]["applied"].as_array().unwrap() {
            if applied["promotionId"] == a {
                a_count += 1;
                *per_customer_a.entry(format!("customer-{}", i % 300)).or_default() += 1;
            }
            if applied["promotionId"] == b {
                b_count += 1;
            }
        }
    }
    assert!(
        per_customer_a.values().all(|n| *n <= 2),
        "a customer got A more than twice"
    );
    (a_count, b_count)
}

async fn setup_scale(app: &TestApp) -> (String, String) {
    let a = app
        .create_promotion(promotion_input(
            json!({ "name": "A", "totalUsageLimit": 500, "usageLimitPerCustomer": 2 }),
        ))
        .await;
    let b = app.create_promotion(promotion_input(json!({ "name": "B", "requiresCoupon": true, "currency": "EUR", "action": { "amountOff": { "amount": 100 } } }))).await;
    app.create_coupon(json!({ "promotionId": b, "code": "SCALE-B", "usageLimit": 300, "usageLimitPerCustomer": 1 }))
        .await;
    (a, b)
}

async fn assert_database_within_limits(app: &TestApp, a: &str, b: &str) -> (i64, i64) {
    let count = |promotion: &str| {
        format!(
            "SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id \
         WHERE r.status = 'REDEEMED' AND rp.promotion_id = '{promotion}'"
        )
    };
    let (na, nb) = (scalar(app, &count(a)).await, scalar(app, &count(b)).await);
    assert!(na <= 500 && nb <= 300, "over a limit: A {na}, B {nb}");
    let worst = scalar(app, &format!(
        "SELECT COALESCE(max(n), 0) FROM (SELECT count(*) AS n FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id \
         WHERE r.status = 'REDEEMED' AND rp.promotion_id = '{a}' GROUP BY r.customer_id) s"
    )).await;
    assert!(worst <= 2, "a customer holds A {worst} times");
    assert_eq!(
        scalar(app, crate::helpers::USAGE_DRIFT_SQL).await,
        0,
        "usage counts equal the redemptions"
    );
    (na, nb)
}

#[tokio::test]
async fn three_replicas_keep_every_limit_exact_under_load() {
    let first = Arc::new(spawn_app().await);
    let apps = vec![
        first.clone(),
        Arc::new(first.replica().await),
        Arc::new(first.replica().await),
    ];
    let (a, b) = setup_scale(&first).await;
    for app in &apps {
        wait_for_snapshot(app, &["SCALE-B"], 2).await;
    }
    let results = load(&apps, |_| None).await;
    let (na, nb) = check_exact(&results, &a, &b, false);
    assert_eq!((na, nb), (500, 300), "every limit is reached exactly");
    assert_eq!(assert_database_within_limits(&first, &a, &b).await, (500, 300));
    // The stored counts: the three replicas' usage deltas, folded exactly once.
    let deadline = Instant::now() + Duration::from_secs(5);
    while scalar(&first, "SELECT count(*) FROM usage_deltas").await > 0 {
        assert!(Instant::now() < deadline, "the usage deltas are folded within seconds");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        (
            scalar(
                &first,
                &format!("SELECT redemption_count::bigint FROM promotions WHERE id = '{a}'")
            )
            .await,
            scalar(
                &first,
                &format!("SELECT discount_total FROM promotions WHERE id = '{a}'")
            )
            .await,
            scalar(&first, "SELECT times_used::bigint FROM coupons WHERE code = 'SCALE-B'").await,
        ),
        (500, 500 * 1000, 300),
        "stored counts equal the redemptions"
    );
}

#[tokio::test]
async fn redis_losing_its_data_twice_never_lets_postgres_record_too_many() {
    let redis = Arc::new(OwnRedis::start().await);
    let first = Arc::new(spawn_app_with_redis(&redis.url()).await);
    let apps = vec![
        first.clone(),
        Arc::new(first.replica().await),
        Arc::new(first.replica().await),
    ];
    let (a, b) = setup_scale(&first).await;
    for app in &apps {
        wait_for_snapshot(app, &["SCALE-B"], 2).await;
    }
    let flusher = redis.clone();
    let results = load(&apps, move |i| {
        (i == 400 || i == 900).then(|| {
            let r = flusher.clone();
            tokio::spawn(async move { r.flushall().await })
        })
    })
    .await;
    let (na, nb) = check_exact(&results, &a, &b, true);
    let stored = assert_database_within_limits(&first, &a, &b).await;
    assert_eq!(
        stored,
        (na as i64, nb as i64),
        "what the checkout was told is what was recorded"
    );
}

#[tokio::test]
async fn redis_stopping_keeps_previews_and_applies_exact_from_postgres_and_counts_exact_after() {
    let mut redis = OwnRedis::start().await;
    let app = spawn_app_with_redis(&redis.url()).await;
    app.create_promotion(promotion_input(json!({ "totalUsageLimit": 3 })))
        .await;
    wait_for_snapshot(&app, &[], 1).await;
    let once = app
        .create_promotion(promotion_input(json!({ "name": "Once", "totalUsageLimit": 1 })))
        .await;
    wait_for_snapshot(&app, &[], 2).await;
    assert!(apply(&app, "r-1", cart("c1", &[])).await.get("errors").is_none());
    redis.stop();
    // Previews go on with PostgreSQL's counts: the limit of 3 has room, "Once" is used up.
    let q = "query($c: CartInput!) { previewPromotions(cart: $c) { discountTotal applied { promotionId amount } rejected { promotionId reason } } }";
    let preview = app.data(q, json!({ "c": cart("c2", &[]) })).await;
    assert_eq!(preview["previewPromotions"]["discountTotal"], 1000, "{preview}");
    assert_eq!(
        preview["previewPromotions"]["applied"].as_array().unwrap().len(),
        1,
        "{preview}"
    );
    assert!(
        preview["previewPromotions"]["rejected"].to_string().contains(&once),
        "the used-up promotion is rejected by PostgreSQL's count: {preview}"
    );
    let (status, ready) = app.get_json("/health/ready").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("degraded")), "{ready}");
    // Applies go on, PostgreSQL alone counting: "Once" is found full by the
    // recording statement and the cart is priced again without it.
    let down = apply(&app, "r-2", cart("c2", &[])).await;
    assert_eq!(down["data"]["applyPromotions"]["discountTotal"], 1000, "{down}");
    assert_eq!(
        down["data"]["applyPromotions"]["redemption"]["status"], "REDEEMED",
        "{down}"
    );
    assert!(
        down["data"]["applyPromotions"]["rejected"].to_string().contains(&once),
        "{down}"
    );
    let third = apply(&app, "r-3", cart("c3", &[])).await;
    assert_eq!(
        third["data"]["applyPromotions"]["redemption"]["status"], "REDEEMED",
        "{third}"
    );
    let full = apply(&app, "r-4", cart("c4", &[])).await;
    assert!(
        full["data"]["applyPromotions"]["redemption"].is_null(),
        "the limit of 3 holds without Redis: {full}"
    );
    redis.restart().await;
    // Back with an empty Redis: its counters are seeded from PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app.get_json("/health/ready").await.1["status"] != "ok" {
        assert!(Instant::now() < deadline, "ready again after Redis returns");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let over = apply(&app, "r-last", cart("c-last", &[])).await;
    assert_eq!(
        over["data"]["applyPromotions"]["rejected"][0]["reason"], "PROMOTION_USAGE_LIMIT_REACHED",
        "{over}"
    );
    assert_eq!(
        scalar(&app, "SELECT count(*) FROM redemptions WHERE status = 'REDEEMED'").await,
        3
    );
    assert_eq!(
        scalar(&app, "SELECT COALESCE(sum(used), 0)::bigint FROM usage_counts").await,
        4,
        "3 uses of the limit of 3, the one use of Once"
    );
}

#[tokio::test]
async fn a_hung_redis_opens_the_breaker_requests_stop_waiting_and_it_closes_after() {
    let redis = OwnRedis::start().await;
    let app = spawn_app_with_redis(&redis.url()).await;
    app.create_promotion(promotion_input(json!({ "totalUsageLimit": 3 })))
        .await;
    wait_for_snapshot(&app, &[], 1).await;
    assert!(apply(&app, "h-1", cart("c1", &[])).await.get("errors").is_none());
    let q = "query($c: CartInput!) { previewPromotions(cart: $c) { discountTotal } }";
    redis.pause(true);
    // The first call waits for Redis's response timeout (3 s) and opens the breaker.
    let first = app.data(q, json!({ "c": cart("c2", &[]) })).await;
    assert_eq!(first["previewPromotions"]["discountTotal"], 1000, "{first}");
    let (_, health) = app.get_json("/health/detailed").await;
    assert_eq!(health["redis_breaker"], "open", "{health}");
    // Then no call waits for Redis: each preview is priced from PostgreSQL's
    // counts well within the timeout, and an apply is counted by PostgreSQL alone.
    for i in 0..20 {
        let started = Instant::now();
        let preview = app.data(q, json!({ "c": cart(&format!("p{i}"), &[]) })).await;
        assert_eq!(preview["previewPromotions"]["discountTotal"], 1000, "{preview}");
        assert!(started.elapsed() < Duration::from_secs(1), "a preview waited for Redis");
    }
    let started = Instant::now();
    let down = apply(&app, "h-2", cart("c2", &[])).await;
    assert_eq!(
        down["data"]["applyPromotions"]["redemption"]["status"], "REDEEMED",
        "{down}"
    );
    assert!(started.elapsed() < Duration::from_secs(1), "an apply waited for Redis");
    let metrics = crate::helpers::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("redis_breaker_open 1"), "the gauge says open");

    redis.pause(false);
    until("the probe closes the breaker", Duration::from_secs(5), async || {
        app.get_json("/health/detailed").await.1["redis_breaker"] == "closed"
    })
    .await;
    assert!(
        apply(&app, "h-3", cart("c3", &[])).await.get("errors").is_none(),
        "applies resume"
    );
}

#[tokio::test]
async fn a_release_redis_missed_is_rebuilt_from_postgres_before_the_breaker_closes() {
    let redis = OwnRedis::start().await;
    let app = spawn_app_with_redis(&redis.url()).await;
    app.create_promotion(promotion_input(json!({ "totalUsageLimit": 2 })))
        .await;
    wait_for_snapshot(&app, &[], 1).await;
    for order in ["s-1", "s-2"] {
        let r = apply(&app, order, cart(order, &[])).await;
        assert_eq!(r["data"]["applyPromotions"]["redemption"]["status"], "REDEEMED", "{r}");
    }
    // Redis hangs (it keeps its data: a count of 2) while an order is
    // released: PostgreSQL counts 1, the release cannot reach Redis.
    redis.pause(true);
    let release = "mutation($o: String!) { releaseRedemption(orderId: $o) { status } }";
    let released = app.data(release, json!({ "o": "s-1" })).await;
    assert_eq!(released["releaseRedemption"]["status"], "RELEASED", "{released}");
    redis.pause(false);
    until("the breaker closes", Duration::from_secs(5), async || {
        app.get_json("/health/detailed").await.1["redis_breaker"] == "closed"
    })
    .await;
    // Redis's stale count of 2 was dropped before it served again: the
    // freed use is there, and only it.
    let again = apply(&app, "s-3", cart("s-3", &[])).await;
    assert_eq!(
        again["data"]["applyPromotions"]["redemption"]["status"], "REDEEMED",
        "the released use is free again: {again}"
    );
    let over = apply(&app, "s-4", cart("s-4", &[])).await;
    assert_eq!(
        over["data"]["applyPromotions"]["rejected"][0]["reason"], "PROMOTION_USAGE_LIMIT_REACHED",
        "{over}"
    );
}
