//! Redis is an accelerator: three replicas of the real binary apply 1,500
//! orders against a total limit of 500 and a per-customer limit of 2 while
//! their Redis is killed a third of the way in and restarted two thirds of
//! the way in. No request fails (the breaker sends applies to PostgreSQL
//! alone); PostgreSQL is exact; the counts are exact after the recovery.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use sea_orm::Database;
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    Binary, OwnRedis, USAGE_DRIFT_SQL, checkout_at, connect_at, db_scalar, free_port, fresh_database_url, fresh_prefix,
    get_json_at, graphql_at, next_json, promotion_input, until,
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
            let r = checkout_at(port, preview, json!({ "c": cart(0) }), None).await;
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
            checkout_at(
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
    let after = checkout_at(
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

/// A replica started while its Redis is down serves at once, degraded,
/// counting in PostgreSQL; when Redis appears it connects, its outbox
/// reaches the stream, and its counters are seeded from PostgreSQL.
#[tokio::test]
async fn a_replica_started_without_redis_serves_degraded_and_connects_when_redis_appears() {
    let mut redis = OwnRedis::unstarted();
    let url = redis.url();
    let database_url = fresh_database_url().await;
    let prefix = fresh_prefix();
    let port = free_port();
    // Admins are let through the rate limit while Redis is away, to set up
    // the promotion (by default they are refused then: tests/api/security.rs).
    let env = [("REDIS_URL", url.as_str()), ("RATE_LIMIT_FAIL_CLOSED", "viewer")];
    let _replica = Binary::start(&database_url, &prefix, port, true, &env).await;
    let (status, ready) = get_json_at(port, "/health/ready").await;
    assert_eq!((status, ready["status"].as_str()), (200, Some("degraded")), "{ready}");
    // A dashboard watching from the start sees what happened while Redis was away.
    let mut dashboard = connect_at(&format!("http://127.0.0.1:{port}"), "graphql-transport-ws").await;
    let subscribe =
        json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { usageUpdated { orderId } }" } });
    dashboard.send(Message::text(subscribe.to_string())).await.unwrap();

    let create = "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }";
    let input = promotion_input(json!({ "name": "A", "totalUsageLimit": 2 }));
    let created = graphql_at(port, create, json!({ "i": input }), None).await;
    assert!(created.get("errors").is_none(), "{created}");
    let preview = "query($c: CartInput!) { previewPromotions(cart: $c) { discountTotal } }";
    until("the replica prices A", Duration::from_secs(5), async || {
        checkout_at(port, preview, json!({ "c": cart(1) }), None).await["data"]["previewPromotions"]["discountTotal"]
            == 1000
    })
    .await;
    let order = |id: &str, i: usize| json!({ "i": { "orderId": id, "cart": cart(i) } });
    let first = checkout_at(port, APPLY, order("o-1", 1), None).await;
    assert!(
        !first["data"]["applyPromotions"]["redemption"].is_null(),
        "applied without Redis: {first}"
    );

    redis.restart().await;
    until("ready, no longer degraded", Duration::from_secs(10), async || {
        get_json_at(port, "/health/ready").await.1["status"] == "ok"
    })
    .await;
    until("the breaker closes", Duration::from_secs(5), async || {
        get_json_at(port, "/health/detailed").await.1["redis_breaker"] == "closed"
    })
    .await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let stream = format!("{prefix}promotions:events");
    until("the outbox reaches the stream", Duration::from_secs(10), async || {
        let entries: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
            .arg(&stream)
            .arg("-")
            .arg("+")
            .query_async(&mut conn)
            .await
            .unwrap();
        let types: Vec<String> = entries
            .iter()
            .filter_map(|(_, fields)| fields.iter().find(|(k, _)| k == "event"))
            .filter_map(|(_, json)| serde_json::from_str::<Value>(json).ok())
            .filter_map(|event| event["type"].as_str().map(str::to_owned))
            .collect();
        types.iter().any(|t| t == "promotion.created") && types.iter().any(|t| t == "redemption.created")
    })
    .await;
    let seen = next_json(&mut dashboard, Duration::from_secs(10)).await;
    assert_eq!(
        seen.as_ref().map(|m| &m["payload"]["data"]["usageUpdated"]["orderId"]),
        Some(&json!("o-1")),
        "the redemption made while Redis was away reaches the subscription: {seen:?}"
    );
    // Redis counts again, seeded from PostgreSQL's 1: one use left.
    let second = checkout_at(port, APPLY, order("o-2", 2), None).await;
    assert!(!second["data"]["applyPromotions"]["redemption"].is_null(), "{second}");
    let third = checkout_at(port, APPLY, order("o-3", 3), None).await;
    assert!(third["data"]["applyPromotions"]["redemption"].is_null(), "{third}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}*:n:*"))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "the pool's counter lives in Redis again: {keys:?}");
    let counted: i64 = redis::cmd("HGET")
        .arg(&keys[0])
        .arg("n")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(counted, 2, "seeded from PostgreSQL, then counted");
}
