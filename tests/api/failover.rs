//! Redis Cluster failover on the real binary: two replicas of the service
//! apply orders against a cluster of their own (3 masters, 3 replicas)
//! while the master holding the event stream, then the one holding the
//! limited promotion's pools, is killed (each restarted after its failover,
//! rejoining as a replica, as an orchestrator would). Requests in the gap
//! fail, if at all, only with UNAVAILABLE and never get a wrong price; PostgreSQL never goes over a
//! limit; the pools serve again after the failover; every outbox row reaches
//! the stream (at least once), in commit order per aggregate.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use tokio::sync::{Mutex, Semaphore};

use crate::helpers::{
    Binary, OwnCluster, USAGE_DRIFT_SQL, checkout_at, db_scalar, free_port, fresh_database_url, fresh_prefix,
    graphql_at, promotion_input, redis_connection, until,
};

const APPLY: &str = r#"mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) {
    discountTotal applied { promotionId amount } redemption { orderId }
} }"#;
const ORDERS: usize = 1200;

fn cart(i: usize) -> Value {
    json!({
        "currency": "EUR",
        "customer": { "id": format!("c{}", i % 400) },
        "couponCodes": if i.is_multiple_of(2) { vec!["FAIL-B"] } else { Vec::<&str>::new() },
        "lines": [{ "id": "l1", "productId": "p", "quantity": 1, "unitPrice": 10_000 }]
    })
}

#[tokio::test]
async fn a_master_killed_mid_load_loses_no_event_and_exceeds_no_limit() {
    let cluster = Arc::new(Mutex::new(OwnCluster::start().await));
    let url = cluster.lock().await.url();
    let database_url = fresh_database_url().await;
    let prefix = fresh_prefix();
    let env = [("REDIS_URL", url.as_str())];
    let ports = [free_port(), free_port()];
    let _first = Binary::start(&database_url, &prefix, ports[0], true, &env).await;
    let _second = Binary::start(&database_url, &prefix, ports[1], true, &env).await;

    let create = "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }";
    let a = graphql_at(
        ports[0],
        create,
        json!({ "i": promotion_input(json!({ "name": "A", "totalUsageLimit": 500 })) }),
        None,
    )
    .await["data"]["createPromotion"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b_input = promotion_input(
        json!({ "name": "B", "requiresCoupon": true, "currency": "EUR", "action": { "amountOff": { "amount": 100 } } }),
    );
    let b = graphql_at(ports[0], create, json!({ "i": b_input }), None).await["data"]["createPromotion"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let coupon = "mutation($i: CouponInput!) { createCoupon(input: $i) { id } }";
    let created = graphql_at(
        ports[0],
        coupon,
        json!({ "i": { "promotionId": b, "code": "FAIL-B", "usageLimit": 200 } }),
        None,
    )
    .await;
    assert!(created.get("errors").is_none(), "{created}");
    let preview = "query($c: CartInput!) { previewPromotions(cart: $c) { applied { promotionId } } }";
    for port in ports {
        until("both replicas price A and B", Duration::from_secs(5), async || {
            let r = checkout_at(port, preview, json!({ "c": cart(0) }), None).await;
            r["data"]["previewPromotions"]["applied"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
        })
        .await;
    }

    let stream_key = format!("{prefix}promotions:events");
    let pool_key = format!("{prefix}{{promo:{a}}}:n:p");
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::new();
    let mut killed = Vec::new();
    for i in 0..ORDERS {
        if i == ORDERS / 3 || i == 2 * ORDERS / 3 {
            let mut cluster = cluster.lock().await;
            let alive = (0..6).find(|n| !killed.contains(n)).unwrap();
            // One failover at a time: a cluster that lost two masters at once
            // has no majority left to elect their replicas. A killed master
            // comes back (as an orchestrator restarts it) and rejoins as the
            // replica of its successor, so its shard has a replica again.
            cluster.wait_until_ok(alive).await;
            for node in &killed {
                cluster.restart(*node).await;
            }
            let victim = cluster
                .master_of(if i == ORDERS / 3 { &stream_key } else { &pool_key }, alive)
                .await;
            until("the victim has a replica", Duration::from_secs(20), async || {
                cluster.has_replica(victim, alive).await
            })
            .await;
            cluster.kill(victim);
            killed.retain(|n| *n != victim);
            killed.push(victim);
            eprintln!("order {i}: killed master {victim} (port {})", cluster.ports[victim]);
        }
        let gate = gate.clone();
        let port = ports[i % 2];
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
        // About 100 orders a second, so the load spans each failover.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }

    let (mut unavailable, mut got_a, mut got_b) = (0, 0, 0);
    for r in &results {
        if let Some(errors) = r.get("errors") {
            assert_eq!(
                errors[0]["extensions"]["code"], "UNAVAILABLE",
                "only UNAVAILABLE in the gap: {r}"
            );
            unavailable += 1;
            continue;
        }
        for applied in r["data"]["applyPromotions"]["applied"].as_array().unwrap() {
            let want = if applied["promotionId"] == a.as_str() {
                1000
            } else {
                100
            };
            assert_eq!(applied["amount"], want, "never a wrong price: {r}");
            if applied["promotionId"] == a.as_str() {
                got_a += 1;
            } else {
                got_b += 1;
            }
        }
    }
    eprintln!("{ORDERS} applies: {unavailable} UNAVAILABLE, A {got_a}, B {got_b}; killed {killed:?}");
    assert!(!killed.is_empty());

    let db = Database::connect(database_url.as_str()).await.unwrap();
    let count = |promotion: &str| {
        format!(
            "SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id \
             WHERE r.status = 'REDEEMED' AND rp.promotion_id = '{promotion}'"
        )
    };
    let (na, nb) = (db_scalar(&db, &count(&a)).await, db_scalar(&db, &count(&b)).await);
    assert!(na <= 500 && nb <= 200, "over a limit: A {na}, B {nb}");
    assert_eq!(
        (na, nb),
        (got_a, got_b),
        "what the checkout was told is what was recorded"
    );
    assert_eq!(
        db_scalar(&db, USAGE_DRIFT_SQL).await,
        0,
        "usage counts equal the redemptions"
    );

    // After the failover the pools serve again (seeded anew where Redis lost them).
    let survivor = (0..6).find(|n| !killed.contains(n)).unwrap();
    {
        let mut cluster = cluster.lock().await;
        cluster.wait_until_ok(survivor).await;
        for node in &killed {
            cluster.restart(*node).await;
        }
    }
    until("applies succeed again", Duration::from_secs(20), async || {
        let r = checkout_at(
            ports[0],
            APPLY,
            json!({ "i": { "orderId": format!("after-{}", uuid::Uuid::now_v7()), "cart": cart(1) } }),
            None,
        )
        .await;
        r.get("errors").is_none()
    })
    .await;

    // Every outbox row reaches the stream, in commit order per aggregate.
    until("every row PUBLISHED", Duration::from_secs(60), async || {
        db_scalar(&db, "SELECT count(*) FROM outbox_events WHERE status <> 'PUBLISHED'").await == 0
    })
    .await;
    let mut redis = redis_connection(&url).await;
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(&stream_key)
        .arg("-")
        .arg("+")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut first_seen: HashMap<String, usize> = HashMap::new();
    for (position, (_, fields)) in entries.iter().enumerate() {
        let envelope: Value = serde_json::from_str(&fields[1]).unwrap();
        first_seen
            .entry(envelope["id"].as_str().unwrap().to_owned())
            .or_insert(position);
    }
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT id::text AS id, aggregate_type || ':' || aggregate_id AS aggregate FROM outbox_events ORDER BY seq",
        ))
        .await
        .unwrap();
    let mut last_position: HashMap<String, usize> = HashMap::new();
    for row in &rows {
        let id: String = row.try_get("", "id").unwrap();
        let aggregate: String = row.try_get("", "aggregate").unwrap();
        let position = *first_seen
            .get(&id)
            .unwrap_or_else(|| panic!("event {id} of {aggregate} is not on the stream"));
        if let Some(before) = last_position.insert(aggregate.clone(), position) {
            assert!(
                before < position,
                "{aggregate}: its events are out of commit order on the stream"
            );
        }
    }
    eprintln!(
        "{} outbox rows, all on the stream ({} entries)",
        rows.len(),
        entries.len()
    );
}
