//! previewPromotions over HTTP: the full result, coupons, cart limits, and
//! changes on one replica reaching another replica's snapshot.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, promotion_input, spawn_app};

const PREVIEW: &str = r#"query($cart: CartInput!) { previewPromotions(cart: $cart) {
    currency subtotal discountTotal shippingAmount shippingDiscount total
    lines { lineId quantity unitPrice subtotal discount total adjustments { promotionId couponCode amount } }
    applied { promotionId couponCode name amount promotion { id name } }
    rejected { promotionId couponCode reason message }
} }"#;

async fn preview(app: &TestApp, cart: Value) -> Value {
    app.data(PREVIEW, json!({ "cart": cart })).await["previewPromotions"].clone()
}

fn cart(codes: &[&str]) -> Value {
    json!({
        "currency": "EUR",
        "customer": { "id": "c-1", "segments": ["vip"], "reviewCount": 3, "orderCount": 0 },
        "shippingAmount": 499,
        "couponCodes": codes,
        "lines": [
            { "id": "l1", "productId": "shoe", "categoryIds": ["shoes"], "brandId": "acme", "quantity": 2, "unitPrice": 5000, "rating": 4.5 },
            { "id": "l2", "productId": "sock", "categoryIds": ["socks"], "quantity": 3, "unitPrice": 333 }
        ]
    })
}

#[tokio::test]
async fn a_preview_returns_totals_lines_applied_and_rejected() {
    let app = spawn_app().await;
    let shoes = app
        .create_promotion(promotion_input(
            json!({ "name": "Shoes 10%", "scope": "CATALOG", "target": { "categoryIds": ["shoes"] } }),
        ))
        .await;
    let shipping = app
        .create_promotion(promotion_input(
            json!({ "name": "Free shipping", "currency": "EUR", "action": { "freeShipping": { "maxDiscount": 400 } } }),
        ))
        .await;
    let coded = app.create_promotion(promotion_input(json!({ "name": "5 off", "currency": "EUR", "requiresCoupon": true, "action": { "amountOff": { "amount": 500 } } }))).await;
    app.create_coupon(json!({ "promotionId": coded, "code": "FIVE" })).await;
    let far = app
        .create_promotion(promotion_input(
            json!({ "name": "Big spenders", "currency": "EUR", "conditions": [{ "minSubtotal": 50000 }] }),
        ))
        .await;
    app.create_promotion(promotion_input(
        json!({ "name": "Hats", "target": { "productIds": ["hat"] } }),
    ))
    .await;

    // The snapshot follows changes within a second (NOTIFY, then a rebuild).
    eventually(|| async {
        let r = preview(&app, cart(&["five", "NOPE-1"])).await;
        r["applied"].as_array().unwrap().len() == 3 && r["rejected"].as_array().unwrap().len() == 2
    })
    .await;
    let r = preview(&app, cart(&["five", "NOPE-1"])).await;
    assert_eq!(r["subtotal"], 10_999, "{r:#}");
    // Shoes 10 % (catalog): 1000 on l1. Then cart rules in creation order:
    // free shipping 400; 5.00 off spread over 9000 and 999 -> 450 + 50; big spenders rejected.
    assert_eq!(
        r["applied"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["name"].as_str().unwrap(), a["amount"].as_i64().unwrap()))
            .collect::<Vec<_>>(),
        vec![("Shoes 10%", 1000), ("Free shipping", 400), ("5 off", 500)]
    );
    assert_eq!(r["applied"][2]["couponCode"], "FIVE");
    assert_eq!(r["applied"][0]["promotion"]["id"], shoes);
    assert_eq!(r["shippingDiscount"], 400);
    assert_eq!(r["discountTotal"], 1900);
    assert_eq!(r["total"], 10_999 + 499 - 1900);
    assert_eq!(r["lines"][0]["discount"], 1450);
    assert_eq!(r["lines"][1]["discount"], 50);
    assert_eq!(
        r["lines"][1]["adjustments"],
        json!([{ "promotionId": coded, "couponCode": "FIVE", "amount": 50 }])
    );
    assert_eq!(r["lines"][0]["unitPrice"], 5000);
    let rejected: Vec<(Value, Value, Value)> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (x["promotionId"].clone(), x["couponCode"].clone(), x["reason"].clone()))
        .collect();
    assert_eq!(
        rejected,
        vec![
            (Value::Null, json!("NOPE-1"), json!("COUPON_NOT_FOUND")),
            (json!(far), Value::Null, json!("MIN_SUBTOTAL_NOT_MET")),
        ]
    );
    assert!(
        r["rejected"][1]["message"].as_str().unwrap().contains("405.01 EUR"),
        "{}",
        r["rejected"][1]["message"]
    );
    let _ = shipping;
}

#[tokio::test]
async fn a_preview_counts_nothing_and_writes_nothing() {
    let app = spawn_app().await;
    let id = app
        .create_promotion(promotion_input(json!({ "totalUsageLimit": 1 })))
        .await;
    let events = app.outbox().await.len();
    eventually(|| async { preview(&app, cart(&[])).await["applied"].as_array().unwrap().len() == 1 }).await;
    for _ in 0..3 {
        let r = preview(&app, cart(&[])).await;
        assert_eq!(r["applied"][0]["promotionId"], id);
    }
    let usage = app
        .data(
            "query($id: ID!) { promotion(id: $id) { usage { redemptions remaining } } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(usage["promotion"]["usage"], json!({ "redemptions": 0, "remaining": 1 }));
    assert_eq!(app.outbox().await.len(), events);
}

#[tokio::test]
async fn coupon_states_are_reported_with_their_reason() {
    let app = spawn_app().await;
    let coded = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    app.create_coupon(json!({ "promotionId": coded, "code": "OFF-1" }))
        .await;
    app.create_coupon(json!({ "promotionId": coded, "code": "LATER-1", "startsAt": "2099-01-01T00:00:00Z" }))
        .await;
    app.create_coupon(json!({ "promotionId": coded, "code": "OVER-1", "startsAt": "2020-01-01T00:00:00Z", "expiresAt": "2020-02-01T00:00:00Z" })).await;
    app.data(
        "mutation { setCouponActive(code: \"OFF-1\", active: false) { id } }",
        json!({}),
    )
    .await;
    let stopped = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    app.create_coupon(json!({ "promotionId": stopped, "code": "STOPPED-1" }))
        .await;
    // First see it running, so that the switch-off below is the newer state.
    eventually(|| async {
        preview(&app, cart(&["stopped-1"])).await["applied"]
            .as_array()
            .unwrap()
            .len()
            == 1
    })
    .await;
    app.data(
        "mutation($id: ID!) { setPromotionActive(id: $id, active: false) { id } }",
        json!({ "id": stopped }),
    )
    .await;
    eventually(|| async { preview(&app, cart(&["stopped-1"])).await["rejected"][0]["reason"] == "PROMOTION_INACTIVE" })
        .await;
    let r = preview(&app, cart(&["off-1", "later-1", "over-1", "stopped-1"])).await;
    let reasons: Vec<&str> = r["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["reason"].as_str().unwrap())
        .collect();
    assert_eq!(
        reasons,
        vec![
            "COUPON_INACTIVE",
            "COUPON_NOT_YET_VALID",
            "COUPON_EXPIRED",
            "PROMOTION_INACTIVE"
        ]
    );
    assert_eq!(r["discountTotal"], 0);
}

#[tokio::test]
async fn a_paused_campaign_stops_its_promotions() {
    let app = spawn_app().await;
    let campaign = app.create_campaign(json!({ "name": "C" })).await;
    app.create_promotion(promotion_input(json!({ "campaignId": campaign })))
        .await;
    assert_eq!(
        preview(&app, cart(&[])).await["applied"],
        json!([]),
        "a DRAFT campaign's promotions do not apply"
    );
    let set = "mutation($id: ID!, $s: CampaignStatus!) { setCampaignStatus(id: $id, status: $s) { id } }";
    app.data(set, json!({ "id": campaign, "s": "ACTIVE" })).await;
    eventually(|| async { preview(&app, cart(&[])).await["applied"].as_array().unwrap().len() == 1 }).await;
    app.data(set, json!({ "id": campaign, "s": "PAUSED" })).await;
    eventually(|| async { preview(&app, cart(&[])).await["applied"].as_array().unwrap().is_empty() }).await;
}

#[tokio::test]
async fn bad_carts_are_bad_user_input_on_their_path() {
    let app = spawn_app().await;
    let line = |q: i64, price: i64| json!({ "id": "l", "productId": "p", "quantity": q, "unitPrice": price });
    let many: Vec<Value> = (0..201)
        .map(|i| json!({ "id": format!("l{i}"), "productId": "p", "quantity": 1, "unitPrice": 1 }))
        .collect();
    let cases = [
        (json!({ "currency": "EURO", "lines": [] }), "cart.currency"),
        (
            json!({ "currency": "EUR", "lines": [line(0, 1)] }),
            "cart.lines[0].quantity",
        ),
        (
            json!({ "currency": "EUR", "lines": [line(10_001, 1)] }),
            "cart.lines[0].quantity",
        ),
        (
            json!({ "currency": "EUR", "lines": [line(1, -5)] }),
            "cart.lines[0].unitPrice",
        ),
        (
            json!({ "currency": "EUR", "lines": [line(1, 1), line(1, 1)] }),
            "cart.lines[1].id",
        ),
        (json!({ "currency": "EUR", "lines": many }), "cart.lines"),
        (
            json!({ "currency": "EUR", "lines": [], "couponCodes": vec!["A"; 11] }),
            "cart.couponCodes",
        ),
        (
            json!({ "currency": "EUR", "lines": [], "shippingAmount": -1 }),
            "cart.shippingAmount",
        ),
        (
            json!({ "currency": "EUR", "lines": [], "customer": { "id": "c", "reviewCount": -1 } }),
            "cart.customer.reviewCount",
        ),
        (
            json!({ "currency": "EUR", "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1, "rating": 7 }] }),
            "cart.lines[0].rating",
        ),
    ];
    for (cart, field) in cases {
        let (code, got) = app.error(PREVIEW, json!({ "cart": cart })).await;
        assert_eq!(
            (code.as_str(), got.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{cart}"
        );
    }
}

async fn eventually<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(1);
    while !check().await {
        assert!(Instant::now() < deadline, "not true within one second");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_change_on_one_replica_reaches_another_within_one_second() {
    let a = spawn_app().await;
    let b = a.replica().await;
    let applied = |app: &TestApp| {
        let app = app.address.clone();
        let client = crate::helpers::admin_client();
        async move {
            let response: Value = client
                .post(format!("{app}/graphql"))
                .json(&json!({ "query": PREVIEW, "variables": { "cart": cart(&[]) } }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            response["data"]["previewPromotions"]["applied"]
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(applied(&b).await, 0);
    let id = a.create_promotion(promotion_input(json!({}))).await;
    eventually(|| async { applied(&b).await == 1 }).await;
    a.data(
        "mutation($id: ID!) { setPromotionActive(id: $id, active: false) { id } }",
        json!({ "id": id }),
    )
    .await;
    eventually(|| async { applied(&b).await == 0 }).await;
    // Coupons created on A are found on B at once (B had cached their absence).
    let coded = a
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    eventually(|| async {
        b.data(PREVIEW, json!({ "cart": cart(&["LATE-1"]) })).await["previewPromotions"]["rejected"][0]["reason"]
            == "COUPON_NOT_FOUND"
    })
    .await;
    a.create_coupon(json!({ "promotionId": coded, "code": "LATE-1" })).await;
    eventually(|| async {
        applied(&b).await == 0
            && b.data(PREVIEW, json!({ "cart": cart(&["LATE-1"]) })).await["previewPromotions"]["applied"]
                .as_array()
                .unwrap()
                .len()
                == 1
    })
    .await;
}
