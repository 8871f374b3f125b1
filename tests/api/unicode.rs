//! Any Unicode a client sends is safe: what PostgreSQL cannot store (NUL)
//! is refused as BAD_USER_INPUT naming its field, on every path a string
//! reaches SQL through, over HTTP and WebSocket; everything else is stored
//! and read back as sent.

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, connect, next_json, promotion_input, spawn_app};

const NUL: &str = "before\u{0}after";

/// The (code, field) of the one error of a request that must be refused.
async fn refused(app: &TestApp, query: &str, variables: Value) -> (String, Option<String>) {
    app.error(query, variables).await
}

#[tokio::test]
async fn a_nul_in_any_string_that_reaches_sql_is_bad_user_input_naming_its_field() {
    let app = spawn_app().await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    let cart = |customer: &str, product: &str, code: &str| {
        json!({
            "currency": "EUR",
            "customer": { "id": customer, "segments": ["gold"] },
            "lines": [{ "id": "1", "productId": product, "quantity": 1, "unitPrice": 1000 }],
            "couponCodes": [code],
        })
    };
    let bad = |field: &str| ("BAD_USER_INPUT".to_owned(), Some(field.to_owned()));
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "query($o: String!) { redemption(orderId: $o) { orderId } }",
            json!({ "o": NUL }),
            "orderId",
        ),
        (
            "mutation($o: String!) { releaseRedemption(orderId: $o) { orderId } }",
            json!({ "o": NUL }),
            "orderId",
        ),
        (
            "query($c: String!) { coupon(code: $c) { code } }",
            json!({ "c": NUL }),
            "code",
        ),
        (
            "mutation($c: String!) { setCouponActive(code: $c, active: false) { code } }",
            json!({ "c": NUL }),
            "code",
        ),
        (
            "mutation($i: CampaignInput!) { createCampaign(input: $i) { id } }",
            json!({ "i": { "name": NUL } }),
            "input.name",
        ),
        (
            "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
            json!({ "i": promotion_input(json!({ "customerSegments": ["gold", NUL] })) }),
            "input.customerSegments[1]",
        ),
        (
            "mutation($i: CouponInput!) { createCoupon(input: $i) { code } }",
            json!({ "i": { "promotionId": promotion, "code": NUL } }),
            "input.code",
        ),
        (
            "query($f: PromotionFilter) { promotions(filter: $f) { totalCount } }",
            json!({ "f": { "nameContains": NUL } }),
            "filter.nameContains",
        ),
        (
            "query($f: PromotionFilter) { promotions(filter: $f) { totalCount } }",
            json!({ "f": { "productId": NUL } }),
            "filter.productId",
        ),
        (
            "query($a: String) { campaigns(after: $a) { totalCount } }",
            json!({ "a": NUL }),
            "after",
        ),
        (
            "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) { total } }",
            json!({ "i": { "orderId": "o-1", "cart": cart(NUL, "p", "X") } }),
            "input.cart.customer.id",
        ),
        (
            "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) { total } }",
            json!({ "i": { "orderId": NUL, "cart": cart("c", "p", "X") } }),
            "input.orderId",
        ),
        // The checkout's compiled preview leaves such a cart to the same check.
        (
            "query($c: CartInput!) { previewPromotions(cart: $c) { total } }",
            json!({ "c": cart("c", "p", NUL) }),
            "cart.couponCodes[0]",
        ),
        (
            "query($c: CartInput!) { previewPromotions(cart: $c) { total } }",
            json!({ "c": cart(NUL, "p", "X") }),
            "cart.customer.id",
        ),
        (
            r#"{ redemption(orderId: "in\u0000line") { orderId } }"#,
            json!({}),
            "orderId",
        ),
    ];
    for (query, variables, field) in cases {
        assert_eq!(refused(&app, query, variables).await, bad(field), "{query}");
    }
    let (status, _) = app.get_json("/health/ready").await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_nul_sent_over_a_websocket_is_refused_the_same_way() {
    let app = spawn_app().await;
    let mut socket = connect(&app, "graphql-transport-ws").await;
    let query = "query($o: String!) { redemption(orderId: $o) { orderId } }";
    socket
        .send(Message::text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": { "o": NUL } } })
                .to_string(),
        ))
        .await
        .unwrap();
    let message = next_json(&mut socket, Duration::from_secs(2)).await.expect("an answer");
    let errors = message["payload"]["errors"]
        .as_array()
        .or_else(|| message["payload"].as_array());
    let error = &errors.unwrap_or_else(|| panic!("errors: {message:#}"))[0];
    assert_eq!(error["extensions"]["code"], "BAD_USER_INPUT", "{message:#}");
    assert_eq!(error["extensions"]["field"], "orderId");
}

#[tokio::test]
async fn any_other_unicode_is_stored_and_read_back_as_sent() {
    let app = spawn_app().await;
    // Names refuse control characters (a rule of their own); descriptions keep them.
    let name = "Été \u{202e}ßİ 😀 \u{fffd}\u{ffff}\u{10ffff} ; = {x} % _ \\ ' \" \u{301}";
    let description = format!("{name} \u{1}\u{7f}\u{1b}[0m\ttab");
    let campaign = app
        .create_campaign(json!({ "name": name, "description": description }))
        .await;
    let data = app
        .data(
            "query($id: ID!) { campaign(id: $id) { name description } }",
            json!({ "id": campaign }),
        )
        .await;
    assert_eq!(data["campaign"], json!({ "name": name, "description": description }));
    let found = app
        .data(
            "query($f: CampaignFilter) { campaigns(filter: $f) { totalCount } }",
            json!({ "f": { "nameContains": "😀 \u{fffd}\u{ffff}" } }),
        )
        .await;
    assert_eq!(found["campaigns"]["totalCount"], 1, "found by its exotic part");
}
