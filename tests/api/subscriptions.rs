//! Subscriptions over a real WebSocket: a redemption on replica A reaches a
//! dashboard on replica B within a second, over both protocols, filtered by
//! campaign.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{Socket, TestApp, connect, next_json, promotion_input, spawn_app_with};

const USAGE: &str = "subscription($c: ID) { usageUpdated(campaignId: $c) { promotionId campaignId orderId change amount redemptions remaining } }";

async fn subscribe(socket: &mut Socket, start: &str, campaign: &str) {
    let message = json!({ "id": "1", "type": start, "payload": { "query": USAGE, "variables": { "c": campaign } } });
    socket.send(Message::text(message.to_string())).await.unwrap();
}

async fn apply(app: &TestApp, order: &str) {
    let cart =
        json!({ "currency": "EUR", "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1000 }] });
    let r = app
        .data("mutation($o: String!, $c: CartInput!) { applyPromotions(input: {orderId: $o, cart: $c}) { redemption { orderId } } }", json!({ "o": order, "c": cart }))
        .await;
    assert_eq!(r["applyPromotions"]["redemption"]["orderId"], order);
}

#[tokio::test]
async fn a_redemption_on_one_replica_reaches_subscribers_on_another_within_a_second() {
    let a = spawn_app_with(None, |c| c.run_workers = true).await;
    let b = a.replica().await;
    let campaign = a.create_campaign(json!({ "name": "Live" })).await;
    let other = a.create_campaign(json!({ "name": "Other" })).await;
    a.data(
        "mutation($id: ID!) { setCampaignStatus(id: $id, status: ACTIVE) { id } }",
        json!({ "id": campaign }),
    )
    .await;
    let promotion = a
        .create_promotion(promotion_input(
            json!({ "campaignId": campaign, "totalUsageLimit": 10 }),
        ))
        .await;
    let q = "query($c: CartInput!) { previewPromotions(cart: $c) { applied { promotionId } } }";
    let cart =
        json!({ "currency": "EUR", "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1000 }] });
    let deadline = Instant::now() + Duration::from_secs(2);
    while a.data(q, json!({ "c": cart })).await["previewPromotions"]["applied"]
        .as_array()
        .unwrap()
        .is_empty()
    {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let mut modern = connect(&b, "graphql-transport-ws").await;
    subscribe(&mut modern, "subscribe", &campaign).await;
    let mut legacy = connect(&b, "graphql-ws").await;
    subscribe(&mut legacy, "start", &campaign).await;
    let mut elsewhere = connect(&b, "graphql-transport-ws").await;
    subscribe(&mut elsewhere, "subscribe", &other).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    let started = Instant::now();
    apply(&a, "live-1").await;
    let update = next_json(&mut modern, Duration::from_secs(1))
        .await
        .expect("an update within one second");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert_eq!(update["type"], "next");
    let expected = json!({ "promotionId": promotion, "campaignId": campaign, "orderId": "live-1", "change": "REDEEMED", "amount": 100, "redemptions": 1, "remaining": 9 });
    assert_eq!(update["payload"]["data"]["usageUpdated"], expected);
    let legacy_update = next_json(&mut legacy, Duration::from_secs(1))
        .await
        .expect("legacy protocol update");
    assert_eq!(legacy_update["type"], "data");
    assert_eq!(legacy_update["payload"]["data"]["usageUpdated"], expected);
    assert!(
        next_json(&mut elsewhere, Duration::from_millis(500)).await.is_none(),
        "another campaign's subscriber got it"
    );

    a.data(
        "mutation { releaseRedemption(orderId: \"live-1\") { status } }",
        json!({}),
    )
    .await;
    let released = next_json(&mut modern, Duration::from_secs(1))
        .await
        .expect("a release update");
    assert_eq!(released["payload"]["data"]["usageUpdated"]["change"], "RELEASED");
    assert_eq!(released["payload"]["data"]["usageUpdated"]["redemptions"], 0);
}

#[tokio::test]
async fn a_progress_subscription_for_an_unknown_batch_is_not_found() {
    let a = spawn_app_with(None, |_| {}).await;
    let mut socket = connect(&a, "graphql-transport-ws").await;
    let message = json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { couponBatchProgress(batchId: \"01900000-0000-7000-8000-000000000000\") { id } }" } });
    socket.send(Message::text(message.to_string())).await.unwrap();
    let reply = next_json(&mut socket, Duration::from_secs(2)).await.unwrap();
    assert_eq!(
        reply["payload"]["errors"][0]["extensions"]["code"], "NOT_FOUND",
        "{reply}"
    );
    assert_eq!(reply["payload"]["errors"][0]["extensions"]["field"], "batchId");
}

#[tokio::test]
async fn shutting_down_ends_subscriptions_and_closes_their_sockets() {
    let app = spawn_app_with(None, |_| {}).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    subscribe(&mut socket, "subscribe", "01900000-0000-7000-8000-000000000000").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    app.shut_down();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .expect("no close frame within 3 s");
        match tokio::time::timeout(left, socket.next())
            .await
            .expect("no close frame within 3 s")
        {
            Some(Ok(Message::Close(Some(frame)))) => {
                assert_eq!(u16::from(frame.code), 1001);
                break;
            }
            Some(Ok(_)) => continue,
            other => panic!("the socket ended without a close frame: {other:?}"),
        }
    }
}

/// The errors of a socket's answer to operation `id`.
async fn socket_errors(socket: &mut Socket, id: &str, query: &str) -> serde_json::Value {
    let subscribe = json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
    socket.send(Message::text(subscribe.to_string())).await.unwrap();
    let message = next_json(socket, Duration::from_secs(2)).await.expect("an answer");
    let errors = message["payload"]["errors"]
        .as_array()
        .or_else(|| message["payload"].as_array())
        .unwrap_or_else(|| panic!("errors: {message:#}"));
    errors[0].clone()
}

#[tokio::test]
async fn a_socket_gets_the_same_limits_and_codes_as_http() {
    let app = spawn_app_with(None, |_| {}).await;
    let deep = format!(
        "subscription {{ usageUpdated {}orderId{} }}",
        "{".repeat(60),
        "}".repeat(60)
    );
    let aliases: String = (0..60).map(|i| format!("a{i}: __typename ")).collect();
    let many = format!("subscription {{ usageUpdated {{ {aliases} }} }}");
    for (query, field) in [(deep.as_str(), Some("query")), (many.as_str(), None)] {
        let over_http = app.graphql(query, json!({})).await;
        let mut socket = connect(&app, "graphql-transport-ws").await;
        let over_socket = socket_errors(&mut socket, "1", query).await;
        assert_eq!(over_socket["extensions"]["code"], "BAD_USER_INPUT", "{over_socket:#}");
        assert_eq!(
            over_socket["extensions"]["code"], over_http["errors"][0]["extensions"]["code"],
            "{over_http:#}"
        );
        assert_eq!(over_socket["extensions"]["field"].as_str(), field, "{over_socket:#}");
    }
}
