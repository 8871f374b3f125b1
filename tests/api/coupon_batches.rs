//! Bulk coupon generation: capacity errors, inline batches, background jobs
//! with progress, resuming after a SIGKILL, collisions in a nearly full
//! space, the CSV export and one event per batch.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    Binary, TestApp, connect, graphql_at, next_json, promotion_input, rows, spawn_app, spawn_app_on_database,
    spawn_app_with, until,
};

const GENERATE: &str = "mutation($i: GenerateCouponsInput!) {
    generateCoupons(input: $i) { id pattern requested generated status error finishedAt } }";

async fn generate(app: &TestApp, promotion: &str, count: i64, pattern: &str) -> Value {
    let data = app
        .data(
            GENERATE,
            json!({ "i": { "promotionId": promotion, "count": count, "pattern": pattern } }),
        )
        .await;
    data["generateCoupons"].clone()
}

async fn batch_codes(app: &TestApp, batch: &str) -> Vec<String> {
    rows(app, &format!("SELECT code FROM coupons WHERE batch_id = '{batch}'"))
        .await
        .iter()
        .map(|r| r.try_get("", "code").unwrap())
        .collect()
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    rows(app, sql).await[0].try_get("", "n").unwrap()
}

async fn batch_state(app: &TestApp, batch: &str) -> (i64, String) {
    let row = &rows(
        app,
        &format!("SELECT generated::bigint AS n, status FROM coupon_batches WHERE id = '{batch}'"),
    )
    .await[0];
    (row.try_get("", "n").unwrap(), row.try_get("", "status").unwrap())
}

async fn batch_events(app: &TestApp, batch: &str) -> Vec<String> {
    app.outbox()
        .await
        .into_iter()
        .filter(|(_, aggregate, id)| aggregate == "coupon_batch" && id == batch)
        .map(|(event, _, _)| event)
        .collect()
}

#[tokio::test]
async fn bad_patterns_counts_and_promotions_are_rejected_with_the_field() {
    let app = spawn_app().await;
    let cart = app.create_promotion(promotion_input(json!({}))).await;
    let catalog = app
        .create_promotion(promotion_input(json!({ "scope": "CATALOG" })))
        .await;
    let cases = [
        (
            json!({ "promotionId": cart, "count": 11, "pattern": "AB-###" }),
            "BAD_USER_INPUT",
            "input.pattern",
        ),
        (
            json!({ "promotionId": cart, "count": 1, "pattern": "SUMMER" }),
            "BAD_USER_INPUT",
            "input.pattern",
        ),
        (
            json!({ "promotionId": cart, "count": 1, "pattern": "AB*###" }),
            "BAD_USER_INPUT",
            "input.pattern",
        ),
        (
            json!({ "promotionId": cart, "count": 0, "pattern": "????????" }),
            "BAD_USER_INPUT",
            "input.count",
        ),
        (
            json!({ "promotionId": cart, "count": 1_000_001, "pattern": "????????" }),
            "BAD_USER_INPUT",
            "input.count",
        ),
        (
            json!({ "promotionId": cart, "count": 5, "pattern": "????????", "usageLimit": 0 }),
            "BAD_USER_INPUT",
            "input.usageLimit",
        ),
        (
            json!({ "promotionId": catalog, "count": 5, "pattern": "????????" }),
            "BAD_USER_INPUT",
            "input.promotionId",
        ),
        (
            json!({ "promotionId": uuid::Uuid::now_v7().to_string(), "count": 5, "pattern": "????????" }),
            "NOT_FOUND",
            "input.promotionId",
        ),
    ];
    for (input, code, field) in cases {
        let (got_code, got_field) = app.error(GENERATE, json!({ "i": input })).await;
        assert_eq!(
            (got_code.as_str(), got_field.as_deref()),
            (code, Some(field)),
            "{input}"
        );
    }
    let response = app
        .graphql(
            GENERATE,
            json!({ "i": { "promotionId": cart, "count": 11, "pattern": "AB-###" } }),
        )
        .await;
    let message = response["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("1000 codes") && message.contains("1100"),
        "names the space: {message}"
    );
    assert_eq!(scalar(&app, "SELECT count(*) AS n FROM coupon_batches").await, 0);
}

#[tokio::test]
async fn ten_thousand_codes_are_generated_inline_unique_matching_and_exported() {
    let app = spawn_app().await;
    let promotion = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    let batch = generate(&app, &promotion, 10_000, "summer-????-####").await;
    assert_eq!(batch["status"], "DONE");
    assert_eq!(batch["pattern"], "SUMMER-????-####");
    assert_eq!(
        (batch["requested"].as_i64(), batch["generated"].as_i64()),
        (Some(10_000), Some(10_000))
    );
    assert!(batch["finishedAt"].is_string());
    let id = batch["id"].as_str().unwrap();

    let codes = batch_codes(&app, id).await;
    assert_eq!(codes.len(), 10_000);
    assert_eq!(codes.iter().collect::<HashSet<_>>().len(), 10_000, "unique");
    let shape = regex_free_matcher();
    assert!(codes.iter().all(|c| shape(c)), "every code matches SUMMER-????-####");
    assert_eq!(
        scalar(
            &app,
            &format!("SELECT count(*) AS n FROM coupons WHERE batch_id = '{id}' AND usage_limit = 1 AND active")
        )
        .await,
        10_000,
        "usageLimit defaults to 1"
    );
    assert_eq!(
        batch_events(&app, id).await,
        ["coupon_batch.completed"],
        "one event per batch"
    );

    // A generated code works at the checkout (once the new promotion is in the snapshot).
    let cart = json!({ "currency": "EUR", "couponCodes": [codes[0].to_lowercase()],
        "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1000 }] });
    app.wait_until_priced(&cart, 100).await;

    let data = app
        .data(
            "query($id: ID!) { couponBatch(id: $id) { coupons(first: 500) {
                totalCount edges { node { code batch { id } promotion { id campaign { id } } } } } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(data["couponBatch"]["coupons"]["totalCount"], 10_000);
    // A full page resolves every coupon's batch and promotion (batched loads, one query each).
    let edges = data["couponBatch"]["coupons"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 500);
    for edge in edges {
        assert_eq!(edge["node"]["batch"]["id"], id);
        assert_eq!(edge["node"]["promotion"]["id"], promotion);
    }

    let response = app
        .client
        .get(format!("{}/coupon-batches/{id}/codes.csv", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = response.text().await.unwrap();
    let mut lines = body.lines();
    assert_eq!(lines.next(), Some("code"));
    let exported: HashSet<&str> = lines.collect();
    assert_eq!(exported.len(), 10_000, "one row per generated code");
    assert_eq!(exported, codes.iter().map(String::as_str).collect::<HashSet<_>>());
}

/// `SUMMER-????-####` with '?' from the unambiguous alphabet.
fn regex_free_matcher() -> impl Fn(&str) -> bool {
    |code: &str| {
        let b = code.as_bytes();
        code.len() == 16
            && code.starts_with("SUMMER-")
            && b[11] == b'-'
            && b[7..11]
                .iter()
                .all(|c| promotions::domain::code_pattern::ALPHABET.contains(c))
            && b[12..].iter().all(u8::is_ascii_digit)
    }
}

#[tokio::test]
async fn the_export_answers_unknown_and_malformed_batch_ids() {
    let app = spawn_app().await;
    let (status, body) = app
        .get_json(&format!("/coupon-batches/{}/codes.csv", uuid::Uuid::now_v7()))
        .await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
    let (status, body) = app.get_json("/coupon-batches/nope/codes.csv").await;
    assert_eq!(
        (status, body["errors"][0]["extensions"]["code"].as_str()),
        (400, Some("BAD_USER_INPUT"))
    );
}

#[tokio::test]
async fn a_200k_job_reports_progress_to_a_subscription_and_finishes_exactly() {
    let app = spawn_app_with(None, |c| c.run_workers = true).await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    let batch = generate(&app, &promotion, 200_000, "BIG-????????").await;
    assert!(
        ["PENDING", "RUNNING"].contains(&batch["status"].as_str().unwrap()),
        "{batch}"
    );
    let id = batch["id"].as_str().unwrap();
    let subscribe = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($b: ID!) { couponBatchProgress(batchId: $b) { generated status } }",
        "variables": { "b": id } } });
    socket.send(Message::text(subscribe.to_string())).await.unwrap();

    let mut seen = Vec::new();
    loop {
        let message = next_json(&mut socket, Duration::from_secs(60))
            .await
            .expect("progress within a minute");
        if message["type"] == "complete" {
            break;
        }
        assert_eq!(message["type"], "next", "{message}");
        let update = &message["payload"]["data"]["couponBatchProgress"];
        seen.push((
            update["generated"].as_i64().unwrap(),
            update["status"].as_str().unwrap().to_owned(),
        ));
    }
    assert_eq!(seen.last(), Some(&(200_000, "DONE".to_owned())), "{seen:?}");
    assert!(
        seen.iter().any(|(n, s)| s == "RUNNING" && *n > 0 && *n < 200_000),
        "progress between start and end: {seen:?}"
    );
    assert!(
        seen.windows(2).all(|w| w[0].0 <= w[1].0),
        "generated never goes back: {seen:?}"
    );
    assert_eq!(
        scalar(
            &app,
            &format!("SELECT count(DISTINCT code) AS n FROM coupons WHERE batch_id = '{id}'")
        )
        .await,
        200_000
    );
    until("the completion event", Duration::from_secs(2), async || {
        batch_events(&app, id).await == ["coupon_batch.completed"]
    })
    .await;
}

#[tokio::test]
async fn a_job_killed_midway_resumes_to_exactly_the_requested_count() {
    let database_url = crate::helpers::fresh_database_url().await;
    let (port, prefix) = (crate::helpers::free_port(), crate::helpers::fresh_prefix());
    let binary = Binary::start(&database_url, &prefix, port, true, &[("COUPON_BATCH_LEASE_SECS", "1")]).await;
    let post = async |query: &str, variables: Value| graphql_at(port, query, variables, None).await;
    let created = post(
        "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
        json!({ "i": promotion_input(json!({})) }),
    )
    .await;
    let promotion = created["data"]["createPromotion"]["id"].as_str().unwrap().to_owned();
    let started = post(
        GENERATE,
        json!({ "i": { "promotionId": promotion, "count": 300_000, "pattern": "KILL-????????" } }),
    )
    .await;
    let id = started["data"]["generateCoupons"]["id"].as_str().unwrap().to_owned();

    let app = spawn_app_on_database(database_url.clone(), |_| {}).await;
    until("the job is under way", Duration::from_secs(30), async || {
        batch_state(&app, &id).await.0 > 0
    })
    .await;
    binary.kill();
    let (at_kill, status) = batch_state(&app, &id).await;
    assert!(
        at_kill < 300_000 && status == "RUNNING",
        "killed midway: {at_kill} {status}"
    );
    let committed = scalar(
        &app,
        &format!("SELECT count(*) AS n FROM coupons WHERE batch_id = '{id}'"),
    )
    .await;
    assert_eq!(committed, at_kill, "generated counts exactly the committed codes");

    let resumed = spawn_app_on_database(database_url, |c| {
        c.run_workers = true;
        c.coupon_batch_lease_secs = 1;
    })
    .await;
    until("the job resumes and finishes", Duration::from_secs(90), async || {
        batch_state(&resumed, &id).await.1 == "DONE"
    })
    .await;
    assert_eq!(batch_state(&resumed, &id).await, (300_000, "DONE".to_owned()));
    assert_eq!(
        scalar(
            &resumed,
            &format!("SELECT count(DISTINCT code) AS n FROM coupons WHERE batch_id = '{id}'")
        )
        .await,
        300_000,
        "no gap, no duplicate"
    );
    assert_eq!(batch_events(&resumed, &id).await, ["coupon_batch.completed"]);
}

#[tokio::test]
async fn collisions_are_drawn_again_until_a_nearly_full_space_is_filled() {
    let app = spawn_app().await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    // NEAR-### holds 1,000 codes; take all but ten of them.
    let free: HashSet<String> = [3, 141, 271, 333, 500, 618, 707, 808, 911, 999]
        .iter()
        .map(|n| format!("NEAR-{n:03}"))
        .collect();
    let taken = (0..1000)
        .map(|n| format!("NEAR-{n:03}"))
        .filter(|c| !free.contains(c))
        .map(|c| format!("'{c}'"))
        .collect::<Vec<_>>()
        .join(",");
    rows(
        &app,
        &format!(
            "INSERT INTO coupons (id, code, promotion_id) SELECT gen_random_uuid(), c, '{promotion}' FROM unnest(ARRAY[{taken}]) AS c RETURNING id"
        ),
    )
    .await;

    let batch = generate(&app, &promotion, 10, "NEAR-###").await;
    assert_eq!(
        (batch["status"].as_str(), batch["generated"].as_i64()),
        (Some("DONE"), Some(10)),
        "{batch}"
    );
    let codes: HashSet<String> = batch_codes(&app, batch["id"].as_str().unwrap())
        .await
        .into_iter()
        .collect();
    assert_eq!(codes, free, "exactly the ten free codes");

    // The space is now full: the batch fails and says so; nothing is dropped silently.
    let full = generate(&app, &promotion, 1, "NEAR-###").await;
    assert_eq!(
        (full["status"].as_str(), full["generated"].as_i64()),
        (Some("FAILED"), Some(0)),
        "{full}"
    );
    assert!(full["error"].as_str().unwrap().contains("exhausted"), "{full}");
    assert_eq!(
        batch_events(&app, full["id"].as_str().unwrap()).await,
        ["coupon_batch.failed"]
    );
}
