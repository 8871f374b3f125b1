//! Every admin mutation writes exactly one outbox event in its own
//! transaction (same `xmin` as the row it changed); a failed one writes none.

use serde_json::json;

use crate::helpers::{promotion_input, spawn_app};

#[tokio::test]
async fn each_mutation_writes_one_event_in_the_same_transaction() {
    let app = spawn_app().await;
    let mut expected: Vec<(String, String, String)> = Vec::new();
    let mut check = |event: &str, aggregate: &str, id: &str| {
        expected.push((event.to_owned(), aggregate.to_owned(), id.to_owned()));
        expected.clone()
    };

    let campaign = app.create_campaign(json!({ "name": "C" })).await;
    assert_eq!(app.outbox().await, check("campaign.created", "campaign", &campaign));
    assert_eq!(
        app.xmin("campaigns", "id", &campaign).await,
        app.xmin("outbox_events", "aggregate_id", &campaign).await
    );

    app.data(
        "mutation($id: ID!) { updateCampaign(id: $id, input: {name: \"D\"}) { id } }",
        json!({ "id": campaign }),
    )
    .await;
    assert_eq!(app.outbox().await, check("campaign.updated", "campaign", &campaign));

    app.data(
        "mutation($id: ID!) { setCampaignStatus(id: $id, status: ACTIVE) { id } }",
        json!({ "id": campaign }),
    )
    .await;
    assert_eq!(
        app.outbox().await,
        check("campaign.status_changed", "campaign", &campaign)
    );
    let campaign_xmin = app.xmin("campaigns", "id", &campaign).await;

    let promotion = app
        .create_promotion(promotion_input(json!({ "campaignId": campaign })))
        .await;
    assert_eq!(app.outbox().await, check("promotion.created", "promotion", &promotion));
    assert_eq!(
        app.xmin("promotions", "id", &promotion).await,
        app.xmin("outbox_events", "aggregate_id", &promotion).await
    );
    assert_eq!(
        app.xmin("campaigns", "id", &campaign).await,
        campaign_xmin,
        "creating a promotion did not touch its campaign"
    );

    app.data(
        "mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }",
        json!({ "id": promotion, "i": promotion_input(json!({ "target": { "productIds": ["p"] } })) }),
    )
    .await;
    assert_eq!(app.outbox().await, check("promotion.updated", "promotion", &promotion));

    app.data(
        "mutation($id: ID!) { setPromotionActive(id: $id, active: false) { id } }",
        json!({ "id": promotion }),
    )
    .await;
    assert_eq!(
        app.outbox().await,
        check("promotion.deactivated", "promotion", &promotion)
    );
    app.data(
        "mutation($id: ID!) { setPromotionActive(id: $id, active: true) { id } }",
        json!({ "id": promotion }),
    )
    .await;
    assert_eq!(
        app.outbox().await,
        check("promotion.activated", "promotion", &promotion)
    );

    let data = app
        .data(
            "mutation($p: ID!) { createCoupon(input: {promotionId: $p, code: \"EVT-1\"}) { id } }",
            json!({ "p": promotion }),
        )
        .await;
    let coupon = data["createCoupon"]["id"].as_str().expect("id").to_owned();
    assert_eq!(app.outbox().await, check("coupon.created", "coupon", &coupon));
    assert_eq!(
        app.xmin("coupons", "id", &coupon).await,
        app.xmin("outbox_events", "aggregate_id", &coupon).await
    );

    app.data("{ __typename }", json!({})).await;
    app.data(
        "mutation { setCouponActive(code: \"evt-1\", active: false) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(app.outbox().await, check("coupon.deactivated", "coupon", &coupon));

    // Failures leave nothing behind.
    app.error(
        "mutation($id: ID!) { setCampaignStatus(id: $id, status: DRAFT) { id } }",
        json!({ "id": campaign }),
    )
    .await;
    app.error(
        "mutation($p: ID!) { createCoupon(input: {promotionId: $p, code: \"EVT-1\"}) { id } }",
        json!({ "p": promotion }),
    )
    .await;
    app.error(
        "mutation($id: ID!) { setPromotionActive(id: $id, active: true) { id } }",
        json!({ "id": "01900000-0000-7000-8000-000000000000" }),
    )
    .await;
    assert_eq!(app.outbox().await, expected);
}

#[tokio::test]
async fn an_event_payload_holds_the_aggregate_as_json() {
    use sea_orm::{ConnectionTrait, DbBackend, Statement};
    let app = spawn_app().await;
    let promotion = app
        .create_promotion(promotion_input(
            json!({ "name": "Payload", "target": { "brandIds": ["b"] } }),
        ))
        .await;
    let row = app
        .db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT payload, status, attempts FROM outbox_events WHERE aggregate_id = $1",
            [promotion.clone().into()],
        ))
        .await
        .expect("query")
        .expect("row");
    let payload: serde_json::Value = row.try_get("", "payload").expect("payload");
    assert_eq!(payload["id"], promotion);
    assert_eq!(payload["name"], "Payload");
    assert_eq!(payload["target"]["brandIds"], json!(["b"]));
    assert_eq!(
        payload["action"],
        json!({ "percentageOff": { "basisPoints": 1000, "maxDiscount": null } })
    );
    assert_eq!(row.try_get::<String>("", "status").expect("status"), "PENDING");
    assert_eq!(row.try_get::<i32>("", "attempts").expect("attempts"), 0);
}
