//! Coupons: create, look up case-insensitively, switch, list, validate.

use serde_json::json;

use crate::helpers::{promotion_input, spawn_app};

#[tokio::test]
async fn a_coupon_is_stored_upper_case_and_found_case_insensitively() {
    let app = spawn_app().await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    let data = app
        .data(
            "mutation($i: CouponInput!) { createCoupon(input: $i) { id code active usageLimit usageLimitPerCustomer timesUsed startsAt expiresAt batch { id } promotion { id } } }",
            json!({ "i": { "promotionId": promotion, "code": " summer-10 ", "usageLimit": 5, "usageLimitPerCustomer": 1, "expiresAt": "2036-01-01T00:00:00Z" } }),
        )
        .await;
    let coupon = &data["createCoupon"];
    assert_eq!(coupon["code"], "SUMMER-10");
    assert_eq!(coupon["active"], true);
    assert_eq!(coupon["timesUsed"], 0);
    assert_eq!(coupon["usageLimit"], 5);
    assert_eq!(coupon["batch"], serde_json::Value::Null);
    assert_eq!(coupon["promotion"]["id"], promotion);
    let found = app.data("{ coupon(code: \"Summer-10\") { id code } }", json!({})).await;
    assert_eq!(found["coupon"]["id"], coupon["id"]);
    let missing = app
        .data(
            "{ a: coupon(code: \"NOPE-NOPE\") { id } b: coupon(code: \"!!\") { id } }",
            json!({}),
        )
        .await;
    assert!(missing["a"].is_null() && missing["b"].is_null());
}

#[tokio::test]
async fn a_taken_code_is_a_conflict_whatever_its_case() {
    let app = spawn_app().await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "TWICE" }))
        .await;
    let events = app.outbox().await.len();
    let (code, field) = app
        .error(
            "mutation($i: CouponInput!) { createCoupon(input: $i) { id } }",
            json!({ "i": { "promotionId": promotion, "code": "twice" } }),
        )
        .await;
    assert_eq!((code.as_str(), field.as_deref()), ("CONFLICT", Some("input.code")));
    assert_eq!(app.outbox().await.len(), events, "the failed mutation wrote an event");
}

#[tokio::test]
async fn coupon_validation_names_the_field() {
    let app = spawn_app().await;
    let cart = app.create_promotion(promotion_input(json!({}))).await;
    let catalog = app
        .create_promotion(promotion_input(json!({ "scope": "CATALOG" })))
        .await;
    let q = "mutation($i: CouponInput!) { createCoupon(input: $i) { id } }";
    let cases = [
        (
            json!({ "promotionId": cart, "code": "AB" }),
            "BAD_USER_INPUT",
            "input.code",
        ),
        (
            json!({ "promotionId": cart, "code": "HAS SPACE" }),
            "BAD_USER_INPUT",
            "input.code",
        ),
        (
            json!({ "promotionId": cart, "code": "C".repeat(65) }),
            "BAD_USER_INPUT",
            "input.code",
        ),
        (
            json!({ "promotionId": cart, "code": "OK-1", "usageLimit": 0 }),
            "BAD_USER_INPUT",
            "input.usageLimit",
        ),
        (
            json!({ "promotionId": cart, "code": "OK-1", "usageLimitPerCustomer": 0 }),
            "BAD_USER_INPUT",
            "input.usageLimitPerCustomer",
        ),
        (
            json!({ "promotionId": cart, "code": "OK-1", "startsAt": "2026-02-01T00:00:00Z", "expiresAt": "2026-01-01T00:00:00Z" }),
            "BAD_USER_INPUT",
            "input.expiresAt",
        ),
        (
            json!({ "promotionId": "x", "code": "OK-1" }),
            "BAD_USER_INPUT",
            "input.promotionId",
        ),
        (
            json!({ "promotionId": catalog, "code": "OK-1" }),
            "BAD_USER_INPUT",
            "input.promotionId",
        ),
        (
            json!({ "promotionId": "01900000-0000-7000-8000-000000000000", "code": "OK-1" }),
            "NOT_FOUND",
            "input.promotionId",
        ),
    ];
    for (input, want_code, want_field) in cases {
        let (code, field) = app.error(q, json!({ "i": input })).await;
        assert_eq!(
            (code.as_str(), field.as_deref()),
            (want_code, Some(want_field)),
            "{input}"
        );
    }
    assert_eq!(app.outbox().await.len(), 2, "only the two promotions wrote events");
}

#[tokio::test]
async fn set_coupon_active_switches_by_code() {
    let app = spawn_app().await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "FLIP" }))
        .await;
    let q = "mutation($c: String!, $a: Boolean!) { setCouponActive(code: $c, active: $a) { code active } }";
    let off = app.data(q, json!({ "c": "flip", "a": false })).await;
    assert_eq!(off["setCouponActive"], json!({ "code": "FLIP", "active": false }));
    let read = app.data("{ coupon(code: \"FLIP\") { active } }", json!({})).await;
    assert_eq!(read["coupon"]["active"], false);
    let (code, field) = app.error(q, json!({ "c": "NOPE-NOPE", "a": true })).await;
    assert_eq!((code.as_str(), field.as_deref()), ("NOT_FOUND", Some("code")));
}

#[tokio::test]
async fn a_promotion_lists_its_coupons_newest_first() {
    let app = spawn_app().await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    let other = app.create_promotion(promotion_input(json!({}))).await;
    for code in ["FIRST", "SECOND", "THIRD"] {
        app.create_coupon(json!({ "promotionId": promotion, "code": code }))
            .await;
    }
    app.create_coupon(json!({ "promotionId": other, "code": "ELSEWHERE" }))
        .await;
    let data = app
        .data("query($id: ID!) { promotion(id: $id) { coupons(first: 2) { totalCount pageInfo { hasNextPage } edges { node { code } } } } }", json!({ "id": promotion }))
        .await;
    let coupons = &data["promotion"]["coupons"];
    assert_eq!(coupons["totalCount"], 3);
    assert_eq!(coupons["pageInfo"]["hasNextPage"], true);
    assert_eq!(
        coupons["edges"],
        json!([{ "node": { "code": "THIRD" } }, { "node": { "code": "SECOND" } }])
    );
}

#[tokio::test]
async fn an_unknown_coupon_batch_reads_as_null() {
    let app = spawn_app().await;
    let data = app
        .data(
            "{ couponBatch(id: \"01900000-0000-7000-8000-000000000000\") { id } }",
            json!({}),
        )
        .await;
    assert!(data["couponBatch"].is_null());
}
