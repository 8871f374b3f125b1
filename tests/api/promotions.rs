//! Promotions: every action and condition round-trips, every validation
//! rule is BAD_USER_INPUT on its field, and every filter runs in SQL.

use serde_json::{Value, json};

use crate::helpers::{promotion_input, spawn_app};

const DEFINITION: &str = r#"
    name description scope active status priority stackable stopFurtherRules requiresCoupon
    startsAt endsAt currency totalUsageLimit usageLimitPerCustomer customerSegments
    target { productIds categoryIds brandIds excludeProductIds minRating }
    conditions {
      __typename
      ... on MinSubtotalCondition { amount }
      ... on MinQuantityCondition { quantity }
      ... on MinCustomerReviewsCondition { reviews }
      ... on FirstOrderCondition { firstOrderOnly }
      ... on DaysOfWeekCondition { days }
    }
    action {
      __typename
      ... on PercentageOff { basisPoints maxDiscount }
      ... on AmountOff { amount perItem }
      ... on FixedPrice { unitPrice }
      ... on BuyXGetY { buyQuantity getQuantity basisPointsOff maxApplications getTarget { productIds categoryIds brandIds excludeProductIds minRating } }
      ... on Tiered { basis tiers { threshold basisPointsOff amountOff } }
      ... on FreeShipping { maxDiscount }
    }
    usage { redemptions discountTotal limit remaining }
"#;

async fn create(app: &crate::helpers::TestApp, input: Value) -> Value {
    let data = app
        .data(
            &format!("mutation($i: PromotionInput!) {{ createPromotion(input: $i) {{ id {DEFINITION} }} }}"),
            json!({ "i": input }),
        )
        .await;
    data["createPromotion"].clone()
}

#[tokio::test]
async fn a_full_definition_round_trips_through_create_and_read() {
    let app = spawn_app().await;
    let campaign = app.create_campaign(json!({ "name": "C" })).await;
    let input = json!({
        "campaignId": campaign,
        "name": "Everything",
        "description": "All the fields",
        "scope": "CART",
        "priority": 7,
        "stackable": false,
        "stopFurtherRules": true,
        "requiresCoupon": true,
        "active": true,
        "startsAt": "2026-01-01T00:00:00Z",
        "endsAt": "2036-01-01T00:00:00Z",
        "currency": "eur",
        "totalUsageLimit": 100,
        "usageLimitPerCustomer": 2,
        "customerSegments": ["vip", "gold", "vip"],
        "target": { "productIds": ["p2", "p1"], "categoryIds": ["c"], "brandIds": ["b"], "excludeProductIds": ["x"], "minRating": 3.5 },
        "conditions": [
            { "daysOfWeek": ["SUNDAY", "MONDAY"] },
            { "minSubtotal": 5000 },
            { "minQuantity": 2 },
            { "minCustomerReviews": 1 },
            { "firstOrderOnly": true }
        ],
        "action": { "buyXGetY": { "buyQuantity": 2, "getQuantity": 1, "maxApplications": 3, "getTarget": { "brandIds": ["g"] } } }
    });
    let created = create(&app, input).await;
    assert_eq!(created["currency"], "EUR");
    assert_eq!(created["status"], "ACTIVE");
    assert_eq!(created["customerSegments"], json!(["vip", "gold"]));
    assert_eq!(created["target"]["productIds"], json!(["p1", "p2"]));
    assert_eq!(created["target"]["minRating"], 3.5);
    assert_eq!(
        created["conditions"],
        json!([
            { "__typename": "MinSubtotalCondition", "amount": 5000 },
            { "__typename": "MinQuantityCondition", "quantity": 2 },
            { "__typename": "MinCustomerReviewsCondition", "reviews": 1 },
            { "__typename": "FirstOrderCondition", "firstOrderOnly": true },
            { "__typename": "DaysOfWeekCondition", "days": ["MONDAY", "SUNDAY"] }
        ])
    );
    assert_eq!(
        created["action"],
        json!({ "__typename": "BuyXGetY", "buyQuantity": 2, "getQuantity": 1, "basisPointsOff": 10000, "maxApplications": 3,
                "getTarget": { "productIds": [], "categoryIds": [], "brandIds": ["g"], "excludeProductIds": [], "minRating": null } })
    );
    assert_eq!(
        created["usage"],
        json!({ "redemptions": 0, "discountTotal": 0, "limit": 100, "remaining": 100 })
    );
    let read = app
        .data(
            &format!("query($id: ID!) {{ promotion(id: $id) {{ id {DEFINITION} campaign {{ id }} }} }}"),
            json!({ "id": created["id"] }),
        )
        .await;
    assert_eq!(read["promotion"]["campaign"]["id"], campaign);
    let mut read = read["promotion"].clone();
    read.as_object_mut().expect("object").remove("campaign");
    assert_eq!(read, created);
}

#[tokio::test]
async fn every_action_type_round_trips() {
    let app = spawn_app().await;
    let actions = [
        json!({ "percentageOff": { "basisPoints": 1500, "maxDiscount": 2000 } }),
        json!({ "amountOff": { "amount": 500 } }),
        json!({ "amountOff": { "amount": 100, "perItem": true } }),
        json!({ "fixedPrice": { "unitPrice": 999 } }),
        json!({ "buyXGetY": { "buyQuantity": 1, "getQuantity": 1, "basisPointsOff": 5000 } }),
        json!({ "tiered": { "basis": "SUBTOTAL", "tiers": [{ "threshold": 10000, "basisPointsOff": 500 }, { "threshold": 20000, "amountOff": 1500 }] } }),
        json!({ "tiered": { "basis": "QUANTITY", "tiers": [{ "threshold": 3, "basisPointsOff": 500 }] } }),
        json!({ "freeShipping": {} }),
        json!({ "freeShipping": { "maxDiscount": 499 } }),
    ];
    let expected = [
        json!({ "__typename": "PercentageOff", "basisPoints": 1500, "maxDiscount": 2000 }),
        json!({ "__typename": "AmountOff", "amount": 500, "perItem": false }),
        json!({ "__typename": "AmountOff", "amount": 100, "perItem": true }),
        json!({ "__typename": "FixedPrice", "unitPrice": 999 }),
        json!({ "__typename": "BuyXGetY", "buyQuantity": 1, "getQuantity": 1, "basisPointsOff": 5000, "maxApplications": null, "getTarget": null }),
        json!({ "__typename": "Tiered", "basis": "SUBTOTAL", "tiers": [{ "threshold": 10000, "basisPointsOff": 500, "amountOff": null }, { "threshold": 20000, "basisPointsOff": null, "amountOff": 1500 }] }),
        json!({ "__typename": "Tiered", "basis": "QUANTITY", "tiers": [{ "threshold": 3, "basisPointsOff": 500, "amountOff": null }] }),
        json!({ "__typename": "FreeShipping", "maxDiscount": null }),
        json!({ "__typename": "FreeShipping", "maxDiscount": 499 }),
    ];
    for (action, expected) in actions.into_iter().zip(expected) {
        let created = create(&app, promotion_input(json!({ "currency": "EUR", "action": action }))).await;
        assert_eq!(created["action"], expected);
        let read = app.data("query($id: ID!) { promotion(id: $id) { action { __typename ... on PercentageOff { basisPoints maxDiscount } ... on AmountOff { amount perItem } ... on FixedPrice { unitPrice } ... on BuyXGetY { buyQuantity getQuantity basisPointsOff maxApplications getTarget { productIds } } ... on Tiered { basis tiers { threshold basisPointsOff amountOff } } ... on FreeShipping { maxDiscount } } } }", json!({ "id": created["id"] })).await;
        assert_eq!(read["promotion"]["action"]["__typename"], expected["__typename"]);
    }
}

#[tokio::test]
async fn defaults_apply_when_fields_are_omitted() {
    let app = spawn_app().await;
    let created = create(
        &app,
        json!({ "name": "Min", "scope": "CART", "action": { "percentageOff": { "basisPoints": 1 } } }),
    )
    .await;
    assert_eq!(created["priority"], 0);
    assert_eq!(created["stackable"], true);
    assert_eq!(created["stopFurtherRules"], false);
    assert_eq!(created["requiresCoupon"], false);
    assert_eq!(created["active"], true);
    assert_eq!(created["customerSegments"], json!([]));
    assert_eq!(created["conditions"], json!([]));
    assert_eq!(created["currency"], Value::Null);
}

#[tokio::test]
async fn every_validation_rule_is_bad_user_input_on_its_field() {
    let app = spawn_app().await;
    let eur = |extra: Value| {
        let mut input = promotion_input(extra);
        input["currency"] = json!("EUR");
        input
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            promotion_input(json!({ "action": { "percentageOff": { "basisPoints": 0 } } })),
            "input.action.percentageOff.basisPoints",
        ),
        (
            promotion_input(json!({ "action": { "percentageOff": { "basisPoints": 10001 } } })),
            "input.action.percentageOff.basisPoints",
        ),
        (
            eur(json!({ "action": { "percentageOff": { "basisPoints": 10, "maxDiscount": 0 } } })),
            "input.action.percentageOff.maxDiscount",
        ),
        (
            promotion_input(json!({ "action": { "amountOff": { "amount": 500 } } })),
            "input.currency",
        ),
        (
            promotion_input(json!({ "action": { "fixedPrice": { "unitPrice": 500 } } })),
            "input.currency",
        ),
        (
            promotion_input(json!({ "action": { "percentageOff": { "basisPoints": 10, "maxDiscount": 100 } } })),
            "input.currency",
        ),
        (
            promotion_input(json!({ "action": { "freeShipping": { "maxDiscount": 100 } } })),
            "input.currency",
        ),
        (
            promotion_input(json!({ "conditions": [{ "minSubtotal": 100 }] })),
            "input.currency",
        ),
        (
            promotion_input(
                json!({ "action": { "tiered": { "basis": "SUBTOTAL", "tiers": [{ "threshold": 1, "basisPointsOff": 10 }] } } }),
            ),
            "input.currency",
        ),
        (
            promotion_input(
                json!({ "action": { "tiered": { "basis": "QUANTITY", "tiers": [{ "threshold": 1, "amountOff": 10 }] } } }),
            ),
            "input.currency",
        ),
        (
            eur(json!({ "action": { "amountOff": { "amount": 0 } } })),
            "input.action.amountOff.amount",
        ),
        (
            eur(json!({ "action": { "amountOff": { "amount": 1_000_000_000_001i64 } } })),
            "input.action.amountOff.amount",
        ),
        (
            eur(json!({ "action": { "fixedPrice": { "unitPrice": -1 } } })),
            "input.action.fixedPrice.unitPrice",
        ),
        (
            promotion_input(json!({ "action": { "buyXGetY": { "buyQuantity": 0, "getQuantity": 1 } } })),
            "input.action.buyXGetY.buyQuantity",
        ),
        (
            promotion_input(
                json!({ "action": { "buyXGetY": { "buyQuantity": 1, "getQuantity": 1, "basisPointsOff": 0 } } }),
            ),
            "input.action.buyXGetY.basisPointsOff",
        ),
        (
            promotion_input(
                json!({ "action": { "buyXGetY": { "buyQuantity": 1, "getQuantity": 1, "maxApplications": 0 } } }),
            ),
            "input.action.buyXGetY.maxApplications",
        ),
        (
            promotion_input(
                json!({ "action": { "buyXGetY": { "buyQuantity": 1, "getQuantity": 1, "getTarget": { "minRating": 6 } } } }),
            ),
            "input.action.buyXGetY.getTarget.minRating",
        ),
        (
            promotion_input(json!({ "action": { "tiered": { "basis": "QUANTITY", "tiers": [] } } })),
            "input.action.tiered.tiers",
        ),
        (
            promotion_input(
                json!({ "action": { "tiered": { "basis": "QUANTITY", "tiers": [{ "threshold": 5, "basisPointsOff": 10 }, { "threshold": 5, "basisPointsOff": 20 }] } } }),
            ),
            "input.action.tiered.tiers[1].threshold",
        ),
        (
            promotion_input(
                json!({ "action": { "tiered": { "basis": "QUANTITY", "tiers": [{ "threshold": 5, "basisPointsOff": 10 }, { "threshold": 3, "basisPointsOff": 20 }] } } }),
            ),
            "input.action.tiered.tiers[1].threshold",
        ),
        (
            eur(
                json!({ "action": { "tiered": { "basis": "QUANTITY", "tiers": [{ "threshold": 5, "basisPointsOff": 10, "amountOff": 5 }] } } }),
            ),
            "input.action.tiered.tiers[0]",
        ),
        (
            promotion_input(json!({ "action": { "tiered": { "basis": "QUANTITY", "tiers": [{ "threshold": 5 }] } } })),
            "input.action.tiered.tiers[0]",
        ),
        (
            promotion_input(
                json!({ "action": { "tiered": { "basis": "QUANTITY", "tiers": [{ "threshold": 0, "basisPointsOff": 10 }] } } }),
            ),
            "input.action.tiered.tiers[0].threshold",
        ),
        (promotion_input(json!({ "name": "" })), "input.name"),
        (promotion_input(json!({ "name": "n".repeat(201) })), "input.name"),
        (promotion_input(json!({ "currency": "EURO" })), "input.currency"),
        (
            promotion_input(json!({ "totalUsageLimit": 0 })),
            "input.totalUsageLimit",
        ),
        (
            promotion_input(json!({ "usageLimitPerCustomer": -3 })),
            "input.usageLimitPerCustomer",
        ),
        (
            promotion_input(json!({ "startsAt": "2026-02-01T00:00:00Z", "endsAt": "2026-01-01T00:00:00Z" })),
            "input.endsAt",
        ),
        (
            promotion_input(json!({ "customerSegments": ["ok", " "] })),
            "input.customerSegments[1]",
        ),
        (
            promotion_input(json!({ "target": { "productIds": [""] } })),
            "input.target.productIds[0]",
        ),
        (
            promotion_input(json!({ "target": { "minRating": 5.5 } })),
            "input.target.minRating",
        ),
        (
            promotion_input(json!({ "target": { "minRating": -0.1 } })),
            "input.target.minRating",
        ),
        (
            promotion_input(json!({ "conditions": [{ "minQuantity": 0 }] })),
            "input.conditions[0].minQuantity",
        ),
        (
            promotion_input(json!({ "conditions": [{ "minCustomerReviews": 0 }] })),
            "input.conditions[0].minCustomerReviews",
        ),
        (
            promotion_input(json!({ "conditions": [{ "daysOfWeek": [] }] })),
            "input.conditions[0].daysOfWeek",
        ),
        (
            promotion_input(json!({ "conditions": [{ "minQuantity": 1 }, { "minQuantity": 2 }] })),
            "input.conditions[1]",
        ),
        (
            promotion_input(json!({ "scope": "CATALOG", "requiresCoupon": true })),
            "input.requiresCoupon",
        ),
        (
            promotion_input(json!({ "scope": "CATALOG", "action": { "freeShipping": {} } })),
            "input.action",
        ),
        (
            promotion_input(
                json!({ "scope": "CATALOG", "action": { "buyXGetY": { "buyQuantity": 1, "getQuantity": 1 } } }),
            ),
            "input.action",
        ),
        (
            eur(json!({ "scope": "CATALOG", "action": { "amountOff": { "amount": 100 } } })),
            "input.action",
        ),
        (
            promotion_input(json!({ "scope": "CATALOG", "conditions": [{ "minQuantity": 2 }] })),
            "input.conditions",
        ),
        (
            promotion_input(json!({ "campaignId": "not-an-id" })),
            "input.campaignId",
        ),
    ];
    let q = "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }";
    for (input, field) in cases {
        let (code, got) = app.error(q, json!({ "i": input })).await;
        assert_eq!(
            (code.as_str(), got.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{input}"
        );
    }
    // oneOf inputs with zero or two members, and wrong types, are rejected by the schema.
    for action in [
        json!({}),
        json!({ "percentageOff": { "basisPoints": 1 }, "freeShipping": {} }),
        json!({ "percentageOff": { "basisPoints": 1.5 } }),
    ] {
        let (code, _) = app
            .error(q, json!({ "i": promotion_input(json!({ "action": action })) }))
            .await;
        assert_eq!(code, "BAD_USER_INPUT", "{action}");
    }
    let (code, _) = app
        .error(q, json!({ "i": promotion_input(json!({ "conditions": [{}] })) }))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app
        .error(
            q,
            json!({ "i": promotion_input(json!({ "action": { "amountOff": { "amount": "9223372036854775808" } } })) }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, field) = app
        .error(
            q,
            json!({ "i": promotion_input(json!({ "campaignId": "01900000-0000-7000-8000-000000000000" })) }),
        )
        .await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("NOT_FOUND", Some("input.campaignId"))
    );
    assert!(app.outbox().await.is_empty(), "a failed mutation wrote an event");
    let total = app.data("{ promotions { totalCount } }", json!({})).await;
    assert_eq!(total["promotions"]["totalCount"], 0);
}

#[tokio::test]
async fn a_promotion_whose_window_is_over_is_accepted_as_expired() {
    let app = spawn_app().await;
    let created = create(
        &app,
        promotion_input(json!({ "startsAt": "2020-01-01T00:00:00Z", "endsAt": "2020-02-01T00:00:00Z" })),
    )
    .await;
    assert_eq!(created["status"], "EXPIRED");
    let later = create(&app, promotion_input(json!({ "startsAt": "2099-01-01T00:00:00Z" }))).await;
    assert_eq!(later["status"], "SCHEDULED");
}

#[tokio::test]
async fn update_replaces_the_whole_definition_and_keeps_identity() {
    let app = spawn_app().await;
    let before = create(
        &app,
        promotion_input(
            json!({ "target": { "productIds": ["a"] }, "conditions": [{ "minQuantity": 2 }], "priority": 5 }),
        ),
    )
    .await;
    let data = app
        .data(
            &format!("mutation($id: ID!, $i: PromotionInput!) {{ updatePromotion(id: $id, input: $i) {{ id createdAt {DEFINITION} }} }}"),
            json!({ "id": before["id"], "i": { "name": "Replaced", "scope": "CART", "currency": "USD", "action": { "tiered": { "basis": "SUBTOTAL", "tiers": [{ "threshold": 100, "amountOff": 10 }] } } } }),
        )
        .await;
    let after = &data["updatePromotion"];
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["name"], "Replaced");
    assert_eq!(
        after["priority"], 0,
        "omitted fields take their defaults: the whole definition is replaced"
    );
    assert_eq!(after["target"]["productIds"], json!([]));
    assert_eq!(after["conditions"], json!([]));
    assert_eq!(after["action"]["__typename"], "Tiered");
    let (code, field) = app
        .error("mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }", json!({ "id": before["id"], "i": promotion_input(json!({ "action": { "percentageOff": { "basisPoints": 0 } } })) }))
        .await;
    assert_eq!(
        (code.as_str(), field.as_deref()),
        ("BAD_USER_INPUT", Some("input.action.percentageOff.basisPoints"))
    );
    let (code, field) = app
        .error("mutation($i: PromotionInput!) { updatePromotion(id: \"01900000-0000-7000-8000-000000000000\", input: $i) { id } }", json!({ "i": promotion_input(json!({})) }))
        .await;
    assert_eq!((code.as_str(), field.as_deref()), ("NOT_FOUND", Some("id")));
}

#[tokio::test]
async fn set_promotion_active_switches_the_status() {
    let app = spawn_app().await;
    let id = app.create_promotion(promotion_input(json!({}))).await;
    let q = "mutation($id: ID!, $a: Boolean!) { setPromotionActive(id: $id, active: $a) { active status } }";
    let off = app.data(q, json!({ "id": id, "a": false })).await;
    assert_eq!(
        off["setPromotionActive"],
        json!({ "active": false, "status": "INACTIVE" })
    );
    let on = app.data(q, json!({ "id": id, "a": true })).await;
    assert_eq!(on["setPromotionActive"], json!({ "active": true, "status": "ACTIVE" }));
    let (code, _) = app
        .error(q, json!({ "id": "01900000-0000-7000-8000-000000000000", "a": true }))
        .await;
    assert_eq!(code, "NOT_FOUND");
}

async fn names(app: &crate::helpers::TestApp, filter: Value) -> Vec<String> {
    let data = app
        .data(
            "query($f: PromotionFilter) { promotions(first: 100, filter: $f) { totalCount edges { node { name } } } }",
            json!({ "f": filter }),
        )
        .await;
    let mut names: Vec<String> = data["promotions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(
        data["promotions"]["totalCount"],
        names.len(),
        "totalCount agrees with the edges"
    );
    names.sort();
    names
}

#[tokio::test]
async fn promotions_are_filtered_by_what_they_can_discount() {
    let app = spawn_app().await;
    for (name, target) in [
        ("everything", json!({})),
        ("everything but p1", json!({ "excludeProductIds": ["p1"] })),
        ("product p1", json!({ "productIds": ["p1"] })),
        ("product p2", json!({ "productIds": ["p2"] })),
        ("category shoes", json!({ "categoryIds": ["shoes"] })),
        ("brand acme", json!({ "brandIds": ["acme"] })),
        (
            "shoes but p1",
            json!({ "categoryIds": ["shoes"], "excludeProductIds": ["p1"] }),
        ),
    ] {
        app.create_promotion(promotion_input(json!({ "name": name, "target": target })))
            .await;
    }
    assert_eq!(
        names(&app, json!({ "productId": "p1" })).await,
        vec!["everything", "product p1"]
    );
    assert_eq!(
        names(&app, json!({ "productId": "p9" })).await,
        vec!["everything", "everything but p1"]
    );
    // With another filter the item condition runs inside the general query.
    assert_eq!(
        names(&app, json!({ "productId": "p1", "nameContains": "product" })).await,
        vec!["product p1"]
    );
    assert_eq!(
        names(&app, json!({ "productId": "p1", "scope": "CART" })).await,
        vec!["everything", "product p1"]
    );
    assert_eq!(
        names(&app, json!({ "categoryId": "shoes" })).await,
        vec!["category shoes", "everything", "everything but p1", "shoes but p1"]
    );
    assert_eq!(
        names(
            &app,
            json!({ "productId": "p1", "categoryId": "shoes", "brandId": "acme" })
        )
        .await,
        vec!["brand acme", "category shoes", "everything", "product p1"]
    );
    assert_eq!(
        names(&app, json!({ "brandId": "acme", "productId": "p2" })).await,
        vec!["brand acme", "everything", "everything but p1", "product p2"]
    );
}

#[tokio::test]
async fn promotions_are_filtered_by_campaign_scope_status_activity_and_name() {
    let app = spawn_app().await;
    let campaign = app.create_campaign(json!({ "name": "C" })).await;
    app.create_promotion(promotion_input(
        json!({ "name": "in campaign", "campaignId": campaign }),
    ))
    .await;
    app.create_promotion(promotion_input(json!({ "name": "catalog 100%", "scope": "CATALOG" })))
        .await;
    let off = app
        .create_promotion(promotion_input(json!({ "name": "switched off" })))
        .await;
    app.data(
        "mutation($id: ID!) { setPromotionActive(id: $id, active: false) { id } }",
        json!({ "id": off }),
    )
    .await;
    app.create_promotion(promotion_input(
        json!({ "name": "later", "startsAt": "2099-01-01T00:00:00Z" }),
    ))
    .await;
    app.create_promotion(promotion_input(
        json!({ "name": "over", "endsAt": "2020-01-01T00:00:00Z" }),
    ))
    .await;
    app.create_promotion(promotion_input(
        json!({ "name": "summer", "startsAt": "2026-06-01T00:00:00Z", "endsAt": "2026-09-01T00:00:00Z" }),
    ))
    .await;
    assert_eq!(
        names(&app, json!({ "campaignId": campaign })).await,
        vec!["in campaign"]
    );
    assert_eq!(names(&app, json!({ "scope": "CATALOG" })).await, vec!["catalog 100%"]);
    assert_eq!(names(&app, json!({ "status": "INACTIVE" })).await, vec!["switched off"]);
    assert_eq!(names(&app, json!({ "status": "SCHEDULED" })).await, vec!["later"]);
    assert_eq!(
        names(&app, json!({ "status": "EXPIRED" })).await,
        vec!["over", "summer"]
    );
    assert_eq!(
        names(&app, json!({ "status": "EXHAUSTED" })).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&app, json!({ "status": "ACTIVE" })).await,
        vec!["catalog 100%", "in campaign"]
    );
    assert_eq!(
        names(&app, json!({ "activeAt": "2026-07-01T00:00:00Z" })).await,
        vec!["catalog 100%", "in campaign", "summer"]
    );
    assert_eq!(
        names(&app, json!({ "nameContains": "100%" })).await,
        vec!["catalog 100%"]
    );
    assert_eq!(
        names(&app, json!({ "nameContains": "IN CAMP", "scope": "CART" })).await,
        vec!["in campaign"]
    );
    let data = app
        .data(
            "query($id: ID!) { campaign(id: $id) { promotions { totalCount edges { node { name } } } } }",
            json!({ "id": campaign }),
        )
        .await;
    assert_eq!(data["campaign"]["promotions"]["totalCount"], 1);
}

#[tokio::test]
async fn the_status_filter_in_sql_agrees_with_the_status_rule_in_rust_at_every_boundary() {
    use chrono::{Duration, TimeZone, Utc};
    use promotions::domain::promotion::PromotionStatus;
    use promotions::store::page::PageRequest;
    use promotions::store::promotions::{PromotionFilter, find_many, list};
    use sea_orm::ConnectionTrait;

    let app = spawn_app().await;
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    let instants = [
        None,
        Some(now - Duration::hours(1)),
        Some(now),
        Some(now + Duration::hours(1)),
    ];
    let mut rows = 0;
    for active in [true, false] {
        for starts in instants {
            for ends in instants {
                if let (Some(s), Some(e)) = (starts, ends)
                    && e <= s
                {
                    continue;
                }
                for (limit, count) in [(None, 0), (Some(2), 0), (Some(2), 2), (Some(2), 3)] {
                    rows += 1;
                    app.db
                        .execute_raw(sea_orm::Statement::from_sql_and_values(
                            sea_orm::DbBackend::Postgres,
                            "INSERT INTO promotions (id, name, scope, priority, stackable, stop_further_rules, requires_coupon,
                                 active, targeted, action_kind, basis_points, total_usage_limit, redemption_count,
                                 starts_at, ends_at, created_at, updated_at)
                             VALUES (gen_random_uuid(), 'p', 'CART', 0, true, false, false, $1, false,
                                 'PERCENTAGE_OFF', 1000, $2, $3, $4, $5, $6, $6)",
                            [
                                active.into(),
                                limit.into(),
                                count.into(),
                                starts.into(),
                                ends.into(),
                                now.into(),
                            ],
                        ))
                        .await
                        .unwrap();
                }
            }
        }
    }
    let all_ids: Vec<uuid::Uuid> = {
        let page = list(
            &app.db,
            &PromotionFilter::default(),
            now,
            PageRequest {
                first: 500,
                after: None,
            },
        )
        .await
        .unwrap();
        assert_eq!(page.items.len(), rows);
        page.items.iter().map(|p| p.id).collect()
    };
    let all = find_many(&app.db, &all_ids).await.unwrap();
    for status in [
        PromotionStatus::Scheduled,
        PromotionStatus::Active,
        PromotionStatus::Inactive,
        PromotionStatus::Expired,
        PromotionStatus::Exhausted,
    ] {
        let filter = PromotionFilter {
            status: Some(status),
            ..Default::default()
        };
        let page = list(
            &app.db,
            &filter,
            now,
            PageRequest {
                first: 500,
                after: None,
            },
        )
        .await
        .unwrap();
        let mut in_sql: Vec<uuid::Uuid> = page.items.iter().map(|p| p.id).collect();
        let mut in_rust: Vec<uuid::Uuid> = all.iter().filter(|p| p.status(now) == status).map(|p| p.id).collect();
        in_sql.sort();
        in_rust.sort();
        assert!(!in_rust.is_empty(), "{status:?}: no case covers it");
        assert_eq!(
            in_sql, in_rust,
            "{status:?}: the SQL filter and PromotionStatus::derive disagree"
        );
    }
}
