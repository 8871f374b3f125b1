//! Campaigns: create, read, update, status moves, filters.

use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use promotions::expiry;
use serde_json::{Value, json};

use crate::helpers::{TestApp, promotion_input, spawn_app, until};

const CAMPAIGN: &str = "id name description status startsAt endsAt usage { redemptions discountTotal limit remaining } createdAt updatedAt";

#[tokio::test]
async fn a_created_campaign_starts_as_draft_and_reads_back() {
    let app = spawn_app().await;
    let data = app
        .data(
            &format!("mutation($i: CampaignInput!) {{ createCampaign(input: $i) {{ {CAMPAIGN} }} }}"),
            json!({ "i": { "name": "  Summer  ", "description": "Hot deals", "startsAt": "2026-06-01T00:00:00Z", "endsAt": "2026-09-01T00:00:00Z" } }),
        )
        .await;
    let created = &data["createCampaign"];
    assert_eq!(created["name"], "Summer");
    assert_eq!(created["status"], "DRAFT");
    assert_eq!(created["startsAt"], "2026-06-01T00:00:00+00:00");
    assert_eq!(
        created["usage"],
        json!({ "redemptions": 0, "discountTotal": 0, "limit": null, "remaining": null })
    );
    let read = app
        .data(
            &format!("query($id: ID!) {{ campaign(id: $id) {{ {CAMPAIGN} }} }}"),
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(&read["campaign"], created);
}

#[tokio::test]
async fn an_unknown_campaign_id_reads_as_null_and_a_malformed_one_is_bad_input() {
    let app = spawn_app().await;
    let data = app
        .data(
            "{ campaign(id: \"01900000-0000-7000-8000-000000000000\") { id } }",
            json!({}),
        )
        .await;
    assert!(data["campaign"].is_null());
    let (code, field) = app.error("{ campaign(id: \"nope\") { id } }", json!({})).await;
    assert_eq!((code.as_str(), field.as_deref()), ("BAD_USER_INPUT", Some("id")));
}

#[tokio::test]
async fn update_replaces_the_definition_and_keeps_the_status() {
    let app = spawn_app().await;
    let id = app.create_campaign(json!({ "name": "Old", "description": "d" })).await;
    app.data(
        "mutation($id: ID!) { setCampaignStatus(id: $id, status: ACTIVE) { status } }",
        json!({ "id": id }),
    )
    .await;
    let data = app
        .data(
            "mutation($id: ID!, $i: CampaignInput!) { updateCampaign(id: $id, input: $i) { name description status } }",
            json!({ "id": id, "i": { "name": "New" } }),
        )
        .await;
    assert_eq!(
        data["updateCampaign"],
        json!({ "name": "New", "description": null, "status": "ACTIVE" })
    );
}

#[tokio::test]
async fn campaign_validation_names_the_field() {
    let app = spawn_app().await;
    let q = "mutation($i: CampaignInput!) { createCampaign(input: $i) { id } }";
    let cases = [
        (json!({ "name": "  " }), "input.name"),
        (json!({ "name": "x".repeat(201) }), "input.name"),
        (
            json!({ "name": "ok", "description": "d".repeat(2001) }),
            "input.description",
        ),
        (
            json!({ "name": "ok", "startsAt": "2026-06-01T00:00:00Z", "endsAt": "2026-06-01T00:00:00Z" }),
            "input.endsAt",
        ),
        (
            json!({ "name": "ok", "startsAt": "2026-06-01T00:00:00Z", "endsAt": "2026-05-01T00:00:00Z" }),
            "input.endsAt",
        ),
    ];
    for (input, field) in cases {
        let (code, got) = app.error(q, json!({ "i": input })).await;
        assert_eq!(
            (code.as_str(), got.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{input}"
        );
    }
    let (code, _) = app
        .error(q, json!({ "i": { "name": "ok", "startsAt": "yesterday" } }))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    assert!(app.outbox().await.is_empty(), "a failed mutation wrote an event");
}

#[tokio::test]
async fn status_moves_follow_the_lifecycle() {
    let app = spawn_app().await;
    let set = "mutation($id: ID!, $s: CampaignStatus!) { setCampaignStatus(id: $id, status: $s) { status } }";
    let id = app.create_campaign(json!({ "name": "Life" })).await;
    let (code, field) = app.error(set, json!({ "id": id, "s": "PAUSED" })).await;
    assert_eq!((code.as_str(), field.as_deref()), ("BAD_USER_INPUT", Some("status")));
    let (code, _) = app.error(set, json!({ "id": id, "s": "DRAFT" })).await;
    assert_eq!(code, "BAD_USER_INPUT");
    for status in ["ACTIVE", "PAUSED", "ACTIVE", "ENDED"] {
        let data = app.data(set, json!({ "id": id, "s": status })).await;
        assert_eq!(data["setCampaignStatus"]["status"], status);
    }
    for status in ["ACTIVE", "PAUSED", "DRAFT", "ENDED"] {
        let (code, _) = app.error(set, json!({ "id": id, "s": status })).await;
        assert_eq!(code, "BAD_USER_INPUT", "ENDED -> {status} was allowed");
    }
    let draft = app.create_campaign(json!({ "name": "Straight to the end" })).await;
    app.data(set, json!({ "id": draft, "s": "ENDED" })).await;
}

#[tokio::test]
async fn mutations_on_an_unknown_campaign_are_not_found() {
    let app = spawn_app().await;
    let unknown = "01900000-0000-7000-8000-000000000000";
    let (code, field) = app
        .error(
            "mutation($id: ID!) { setCampaignStatus(id: $id, status: ACTIVE) { id } }",
            json!({ "id": unknown }),
        )
        .await;
    assert_eq!((code.as_str(), field.as_deref()), ("NOT_FOUND", Some("id")));
    let (code, _) = app
        .error(
            "mutation($id: ID!) { updateCampaign(id: $id, input: {name: \"x\"}) { id } }",
            json!({ "id": unknown }),
        )
        .await;
    assert_eq!(code, "NOT_FOUND");
}

#[tokio::test]
async fn campaigns_are_filtered_by_status_name_and_activity_in_sql() {
    let app = spawn_app().await;
    let set = "mutation($id: ID!, $s: CampaignStatus!) { setCampaignStatus(id: $id, status: $s) { status } }";
    let summer = app
        .create_campaign(
            json!({ "name": "Summer 50%_off", "startsAt": "2026-06-01T00:00:00Z", "endsAt": "2026-09-01T00:00:00Z" }),
        )
        .await;
    let winter = app.create_campaign(json!({ "name": "Winter sale" })).await;
    let _draft = app.create_campaign(json!({ "name": "Spring" })).await;
    app.data(set, json!({ "id": summer, "s": "ACTIVE" })).await;
    app.data(set, json!({ "id": winter, "s": "ACTIVE" })).await;
    let names = |filter: serde_json::Value| {
        let app = &app;
        async move {
            let data = app
                .data(
                    "query($f: CampaignFilter) { campaigns(filter: $f) { totalCount edges { node { name } } } }",
                    json!({ "f": filter }),
                )
                .await;
            let names: Vec<String> = data["campaigns"]["edges"]
                .as_array()
                .expect("edges")
                .iter()
                .map(|e| e["node"]["name"].as_str().expect("name").to_owned())
                .collect();
            assert_eq!(data["campaigns"]["totalCount"], names.len());
            names
        }
    };
    assert_eq!(names(json!({ "status": "DRAFT" })).await, vec!["Spring"]);
    assert_eq!(names(json!({ "nameContains": "SALE" })).await, vec!["Winter sale"]);
    assert_eq!(names(json!({ "nameContains": "%_" })).await, vec!["Summer 50%_off"]);
    assert_eq!(names(json!({ "nameContains": "_" })).await, vec!["Summer 50%_off"]);
    assert_eq!(
        names(json!({ "activeAt": "2026-07-01T00:00:00Z" })).await,
        vec!["Winter sale", "Summer 50%_off"]
    );
    assert_eq!(
        names(json!({ "activeAt": "2026-10-01T00:00:00Z" })).await,
        vec!["Winter sale"]
    );
    assert_eq!(
        names(json!({ "activeAt": "2026-07-01T00:00:00Z", "nameContains": "summer" })).await,
        vec!["Summer 50%_off"]
    );
    assert_eq!(
        names(json!(null)).await,
        vec!["Spring", "Winter sale", "Summer 50%_off"]
    );
}

/// What previewing `cart` gives: (applied promotion ids, rejected (code, reason)).
async fn applied_and_rejected(app: &TestApp, cart: &Value) -> (Vec<String>, Vec<(String, String)>) {
    let data = app
        .data(
            "query($c: CartInput!) { previewPromotions(cart: $c) {
                applied { promotionId } rejected { couponCode reason } } }",
            json!({ "c": cart }),
        )
        .await;
    let result = &data["previewPromotions"];
    let applied = result["applied"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["promotionId"].as_str().unwrap().to_owned())
        .collect();
    let rejected = result["rejected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["couponCode"].as_str().unwrap_or_default().to_owned(),
                r["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (applied, rejected)
}

/// A campaign with an automatic promotion and a coupon promotion (code
/// `ENDS-TODAY`); returns (campaign, automatic, coupon promotion, cart).
async fn campaign_with_two_promotions(app: &TestApp, campaign: Value) -> (String, String, String, Value) {
    let campaign = app.create_campaign(campaign).await;
    let automatic = app
        .create_promotion(promotion_input(json!({ "campaignId": campaign, "name": "automatic" })))
        .await;
    let with_code = app
        .create_promotion(promotion_input(json!({
            "campaignId": campaign, "name": "with code", "requiresCoupon": true,
            "action": { "percentageOff": { "basisPoints": 500 } },
        })))
        .await;
    app.create_coupon(json!({ "promotionId": with_code, "code": "ENDS-TODAY" }))
        .await;
    let cart = json!({
        "currency": "EUR",
        "lines": [{ "id": "1", "productId": "p", "quantity": 1, "unitPrice": 10000 }],
        "couponCodes": ["ENDS-TODAY"],
    });
    (campaign, automatic, with_code, cart)
}

async fn set_status(app: &TestApp, campaign: &str, status: &str) {
    app.data(
        "mutation($id: ID!, $s: CampaignStatus!) { setCampaignStatus(id: $id, status: $s) { id } }",
        json!({ "id": campaign, "s": status }),
    )
    .await;
}

/// Waits until `app` prices `cart` with nothing applied and the coupon PROMOTION_INACTIVE.
async fn until_nothing_applies(app: &TestApp, cart: &Value) {
    until("nothing applies", Duration::from_secs(3), async || {
        applied_and_rejected(app, cart).await
            == (vec![], vec![("ENDS-TODAY".to_owned(), "PROMOTION_INACTIVE".to_owned())])
    })
    .await;
}

#[tokio::test]
async fn promotions_of_an_ended_campaign_never_apply_again_on_any_replica() {
    let app = spawn_app().await;
    let other = app.replica().await;
    let (campaign, automatic, with_code, cart) =
        campaign_with_two_promotions(&app, json!({ "name": "Black Friday" })).await;

    until_nothing_applies(&app, &cart).await;
    set_status(&app, &campaign, "ACTIVE").await;
    for replica in [&app, &other] {
        until("both apply", Duration::from_secs(3), async || {
            applied_and_rejected(replica, &cart).await == (vec![automatic.clone(), with_code.clone()], vec![])
        })
        .await;
    }

    set_status(&app, &campaign, "ENDED").await;
    for replica in [&app, &other] {
        until_nothing_applies(replica, &cart).await;
    }
    let applied = app
        .data(
            "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) {
                discountTotal rejected { couponCode reason } redemption { orderId } } }",
            json!({ "i": { "orderId": "after-the-end", "cart": cart } }),
        )
        .await;
    assert_eq!(
        applied["applyPromotions"],
        json!({
            "discountTotal": 0,
            "rejected": [{ "couponCode": "ENDS-TODAY", "reason": "PROMOTION_INACTIVE" }],
            "redemption": null,
        }),
        "an order placed after the end gets nothing and records nothing"
    );
}

#[tokio::test]
async fn promotions_of_a_campaign_the_housekeeping_ended_never_apply_again() {
    let app = spawn_app().await;
    let ends = Utc::now() + ChronoDuration::days(1);
    let (campaign, automatic, with_code, cart) =
        campaign_with_two_promotions(&app, json!({ "name": "Cyber Monday", "endsAt": ends.to_rfc3339() })).await;
    set_status(&app, &campaign, "ACTIVE").await;
    until("both apply", Duration::from_secs(3), async || {
        applied_and_rejected(&app, &cart).await == (vec![automatic.clone(), with_code.clone()], vec![])
    })
    .await;

    // The worker runs as if a day and a half had passed: the campaign ends,
    // while the promotions' own windows (open) and the wall clock (before
    // the campaign's end) would still let them apply.
    let ended = expiry::expire(&app.db, ends + ChronoDuration::hours(12)).await.unwrap();
    assert_eq!(ended.campaigns, 1);
    until_nothing_applies(&app, &cart).await;
}
