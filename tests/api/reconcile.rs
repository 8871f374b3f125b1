//! The reservation reconciler: a reservation whose order never committed (a
//! crash between reserving and recording) is given back; one whose order
//! did commit keeps its slot.

use std::time::Duration;

use chrono::Utc;
use promotions::pricing::Pricing;
use promotions::redemption::pools::{Pool, Pools, Reserved, Scope};
use promotions::redemption::reconcile::Reconciler;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{promotion_input, spawn_app};

/// Pools and a reconciler of the app's Redis prefix, and the promotion's total pool.
async fn reconciler_for(
    app: &crate::helpers::TestApp,
    id: Uuid,
) -> (
    redis::aio::ConnectionManager,
    Pools,
    std::sync::Arc<Reconciler>,
    [Pool; 1],
) {
    let redis = redis::Client::open(app.redis_url.as_str())
        .unwrap()
        .get_connection_manager()
        .await
        .unwrap();
    let pools = Pools::new(redis.clone(), &app.redis_key_prefix, Default::default());
    let pricing = Pricing::start(app.db.clone(), pools.clone(), chrono_tz::UTC)
        .await
        .unwrap();
    let reconciler = Reconciler::start(app.db.clone(), pools.clone(), pricing, Default::default());
    (
        redis,
        pools,
        reconciler,
        [Pool {
            scope: Scope::Promotion,
            owner: id,
            customer: None,
            limit: 5,
        }],
    )
}

#[tokio::test]
async fn a_reservation_never_committed_is_given_back_and_a_committed_one_is_kept() {
    let app = spawn_app().await;
    let id: Uuid = app
        .create_promotion(promotion_input(json!({ "totalUsageLimit": 5 })))
        .await
        .parse()
        .unwrap();
    let (_, pools, reconciler, total) = reconciler_for(&app, id).await;

    // A committed order, through the API.
    let cart =
        json!({ "currency": "EUR", "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1000 }] });
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    loop {
        let r = app
            .graphql("mutation($c: CartInput!) { applyPromotions(input: {orderId: \"kept\", cart: $c}) { redemption { orderId } } }", json!({ "c": cart }))
            .await;
        if !r["data"]["applyPromotions"]["redemption"].is_null() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{r}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A crashed order: reserved two minutes ago, never recorded.
    let old = Utc::now().timestamp() - 120;
    assert!(matches!(
        pools.reserve(id, "crashed", &total, old).await.unwrap(),
        Reserved::Taken(_)
    ));
    assert_eq!(pools.counts(id, &total).await.unwrap(), vec![Some(2)]);

    reconciler.sweep(&[id], Duration::from_secs(60)).await;
    assert_eq!(
        pools.counts(id, &total).await.unwrap(),
        vec![Some(1)],
        "the crashed order's slot is free again"
    );
    // Nothing pending is left, and a second sweep changes nothing.
    assert!(
        pools
            .stale_pending(id, Utc::now().timestamp() + 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
    reconciler.sweep(&[id], Duration::ZERO).await;
    assert_eq!(pools.counts(id, &total).await.unwrap(), vec![Some(1)]);
}

#[tokio::test]
async fn a_counter_that_drifted_from_postgres_is_reseeded() {
    let app = spawn_app().await;
    let id: Uuid = app
        .create_promotion(promotion_input(json!({ "totalUsageLimit": 5 })))
        .await
        .parse()
        .unwrap();
    let (redis, pools, reconciler, total) = reconciler_for(&app, id).await;
    pools.seed(id, &total[0], &[]).await.unwrap();
    // Drift: Redis believes three slots are taken; PostgreSQL holds none.
    let _: () = redis::cmd("SET")
        .arg(format!("{}:p:next", pools.base(id)))
        .arg(4)
        .query_async(&mut redis.clone())
        .await
        .unwrap();
    assert_eq!(pools.counts(id, &total).await.unwrap(), vec![Some(3)]);
    reconciler.sweep(&[id], Duration::from_secs(60)).await;
    assert_eq!(
        pools.counts(id, &total).await.unwrap(),
        vec![None],
        "dropped, to be reseeded"
    );
    assert!(matches!(
        pools.reserve(id, "next", &total, Utc::now().timestamp()).await.unwrap(),
        Reserved::NeedsSeed(0)
    ));
}
