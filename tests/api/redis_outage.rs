//! Redis is an accelerator: three replicas of the real binary apply 1,500
//! orders against a total limit of 500 and a per-customer limit of 2 while
//! their Redis is killed a third of the way in and restarted two thirds of
//! the way in. No request fails (the breaker sends applies to PostgreSQL
//! alone); PostgreSQL is exact; the counts are exact after the recovery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::Database;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use crate::helpers::{
    Binary, OwnRedis, USAGE_DRIFT_SQL, db_scalar, free_port, fresh_database_url, fresh_prefix, graphql_at,
    promotion_input, until,
};

const APPLY: &str = r#"mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) {
    applied { promotionId amount } redemption { orderId }
} }"#;
const ORDERS: usize = 1500;

/// A third of the orders come from ten regulars (their per-customer limit
/// is soon reached), the rest from 400 customers: about a third of the limit
/// is left when Redis dies, and it runs out while Redis is gone.
fn customer(i: usize) -> String {
    if i.is_multiple_of(3) {
        format!("r{}", i % 10)
    } else {
        format!("c{}", i % 400)
    }
}

fn cart(i: usize) -> Value {
    json!({
        "currency": "EUR",
        "customer": { "id": customer(i) },
        "lines": [{ "id": "l1", "productId": "p", "quantity": 1, "unitPrice": 10_000 }]
    })
}

#[tokio::test]
async fn three_replicas_keep_applying_exactly_while_their_redis_is_killed_and_restarted() {
    let redis = Arc::new(Mutex::new(OwnRedis::start().await));
    let url = redis.lock().await.url();
    let database_url = fresh_database_url().await;
    let prefix = fresh_prefix();
    let env = [("REDIS_URL", url.as_str())];
    let ports = [free_port(), free_port(), free_port()];
    let mut replicas = Vec::new();
    for port in ports {
        replicas.push(Binary::start(&database_url, &prefix, port, port == ports[0], &env).await);
    }
    let create = "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }";
    let input = promotion_input(json!({ "name": "A", "totalUsageLimit": 500, "usageLimitPerCustomer": 2 }));
    let a = graphql_at(ports[0], create, json!({ "i": input }), None).await["data"]["createPromotion"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let preview = "query($c: CartInput!) { previewPromotions(cart: $c) { applied { promotionId } } }";
    for port in ports {
        until("every replica prices A", Duration::from_secs(5), async || {
            let r = graphql_at(port, preview, json!({ "c": cart(0) }), None).await;
            r["data"]["previewPromotions"]["applied"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        })
        .await;
    }

    let gate = Arc::new(Semaphore::new(48));
    let mut tasks = Vec::new();
    for i in 0..ORDERS {
        if i == ORDERS / 3 {
            redis.lock().await.stop();
            eprintln!("order {i}: Redis killed");
        }
        if i == 2 * ORDERS / 3 {
            redis.lock().await.restart().await;
            eprintln!("order {i}: Redis restarted, empty");
        }
        let gate = gate.clone();
        let port = ports[i % 3];
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.unwrap();
            graphql_at(
                port,
                APPLY,
                json!({ "i": { "orderId": format!("o-{i}"), "cart": cart(i) } }),
                None,
            )
            .await
        }));
        // About 250 orders a second: the load spans the outage.
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }

    let mut failed = Vec::new();
    let mut per_customer: HashMap<String, i64> = HashMap::new();
    let mut got = 0;
    for (i, r) in results.iter().enumerate() {
        if let Some(errors) = r.get("errors") {
            assert_eq!(
                errors[0]["extensions"]["code"], "UNAVAILABLE",
                "only a clear error: {r}"
            );
            failed.push(i);
            continue;
        }
        for applied in r["data"]["applyPromotions"]["applied"].as_array().unwrap() {
            assert_eq!(applied["amount"], 1000, "never a wrong price: {r}");
            got += 1;
            *per_customer.entry(customer(i)).or_default() += 1;
        }
    }
    let before_kill = results[..ORDERS / 3]
        .iter()
        .filter(|r| !r["data"]["applyPromotions"]["redemption"].is_null())
        .count();
    eprintln!(
        "{ORDERS} applies: {} failed ({failed:?}), A applied {got}, {before_kill} before the kill",
        failed.len()
    );
    assert!(before_kill < 500, "the limit runs out while Redis is down, not before");
    assert!(failed.is_empty(), "no apply fails while Redis is down: {failed:?}");
    assert_eq!(got, 500, "the limit is reached exactly, not passed");
    assert!(
        per_customer.values().all(|n| *n <= 2),
        "a customer got A more than twice"
    );

    let db = Database::connect(database_url.as_str()).await.unwrap();
    let counted = format!(
        "SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id \
         WHERE r.status = 'REDEEMED' AND rp.promotion_id = '{a}'"
    );
    assert_eq!(db_scalar(&db, &counted).await, 500, "PostgreSQL exact");
    assert_eq!(
        db_scalar(&db, USAGE_DRIFT_SQL).await,
        0,
        "usage counts equal the redemptions"
    );
    // After the recovery Redis is seeded from PostgreSQL: the pool is full.
    let after = graphql_at(
        ports[1],
        APPLY,
        json!({ "i": { "orderId": "after", "cart": cart(7) } }),
        None,
    )
    .await;
    assert!(after["data"]["applyPromotions"]["redemption"].is_null(), "{after}");
    until("the stored count folds to 500", Duration::from_secs(5), async || {
        db_scalar(
            &db,
            &format!("SELECT redemption_count::bigint FROM promotions WHERE id = '{a}'"),
        )
        .await
            == 500
    })
    .await;
}
