//! Who may call what, and the limits: the role matrix over every query,
//! mutation and subscription of the contract; each limit; introspection and
//! GraphiQL switches.

use std::time::Duration;

use futures_util::SinkExt;
use promotions::auth::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{
    JWT_SECRET, TestApp, client_with, init_socket, next_json, open_socket, promotion_input, rows, spawn_app,
    spawn_app_serving, token,
};

/// Tokens that must be refused: none, expired, signed with another key.
fn refused_tokens() -> Vec<(&'static str, Option<String>)> {
    let expired = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "late", "role": "admin", "exp": 1_600_000_000 }),
        &jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let foreign = promotions::auth::issue(
        "another-key-of-at-least-16-chars",
        Role::Admin,
        "x",
        Duration::from_secs(600),
    )
    .unwrap();
    vec![
        ("no token", None),
        ("expired", Some(expired)),
        ("another key", Some(foreign)),
    ]
}

/// The code of a socket message's first error (an `error` message, or a `next` carrying errors).
fn socket_error_code(message: &Value) -> Option<&str> {
    let error = match message["type"].as_str() {
        Some("error") => &message["payload"][0],
        _ => &message["payload"]["errors"][0],
    };
    error["extensions"]["code"].as_str()
}

async fn post(app: &TestApp, token: Option<&str>, query: &str, variables: Value) -> (u16, Value) {
    let response = client_with(token)
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn codes(body: &Value) -> Vec<String> {
    body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("none").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Everything a refused call could have changed.
async fn footprint(app: &TestApp) -> Vec<i64> {
    let row = &rows(
        app,
        "SELECT (SELECT count(*) FROM campaigns) AS a, (SELECT count(*) FROM promotions) AS b,
                (SELECT count(*) FROM coupons) AS c, (SELECT count(*) FROM coupon_batches) AS d,
                (SELECT count(*) FROM redemptions) AS e, (SELECT count(*) FROM outbox_events) AS f,
                (SELECT count(*) FROM outbox_events WHERE status = 'DEAD') AS g,
                (SELECT count(*) FROM campaigns WHERE status <> 'DRAFT') AS h,
                (SELECT count(*) FROM promotions WHERE NOT active) AS i,
                (SELECT count(*) FROM coupons WHERE NOT active) AS j,
                (SELECT count(*) FROM redemptions WHERE status = 'RELEASED') AS k",
    )
    .await[0];
    ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]
        .iter()
        .map(|c| row.try_get("", c).unwrap())
        .collect()
}

#[tokio::test]
async fn every_operation_obeys_the_role_matrix_and_refusals_change_nothing() {
    let app = spawn_app().await;
    let campaign = app.create_campaign(json!({ "name": "Matrix" })).await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    let code = app
        .create_coupon(json!({ "promotionId": promotion, "code": "MATRIX" }))
        .await;
    let batch = app
        .data(
            "mutation($p: ID!) { generateCoupons(input: {promotionId: $p, count: 3, pattern: \"MX-??????\"}) { id } }",
            json!({ "p": promotion }),
        )
        .await["generateCoupons"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dead = rows(
        &app,
        "INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, payload, status, attempts)
         VALUES (gen_random_uuid(), 'campaign', 'x', 'campaign.created', '{}', 'DEAD', 10) RETURNING id::text AS id",
    )
    .await[0]
        .try_get::<String>("", "id")
        .unwrap();
    let cart =
        json!({ "currency": "EUR", "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1000 }] });
    app.wait_until_priced(&cart, 100).await;
    // The checkout's own order: it may release it, as admins may any.
    let (_, applied) = post(
        &app,
        Some(&token(Role::Checkout)),
        "mutation($c: CartInput!) { applyPromotions(input: {orderId: \"seeded\", cart: $c}) { redemption { orderId } } }",
        json!({ "c": cart }),
    )
    .await;
    assert_eq!(
        applied["data"]["applyPromotions"]["redemption"]["orderId"], "seeded",
        "{applied}"
    );

    use Role::{Admin, Checkout, Viewer};
    // (name, document, variables, roles allowed); `{n}` makes inputs unique per attempt.
    let operations: Vec<(&str, &str, Value, &[Role])> = vec![
        (
            "campaign",
            "query($id: ID!) { campaign(id: $id) { id } }",
            json!({ "id": campaign }),
            &[Admin, Checkout, Viewer],
        ),
        (
            "campaigns",
            "{ campaigns(first: 1) { totalCount } }",
            json!({}),
            &[Admin, Checkout, Viewer],
        ),
        (
            "promotion",
            "query($id: ID!) { promotion(id: $id) { id } }",
            json!({ "id": promotion }),
            &[Admin, Checkout, Viewer],
        ),
        (
            "promotions",
            "{ promotions(first: 1) { totalCount } }",
            json!({}),
            &[Admin, Checkout, Viewer],
        ),
        (
            "coupon",
            "query($c: String!) { coupon(code: $c) { code } }",
            json!({ "c": code }),
            &[Admin, Checkout, Viewer],
        ),
        (
            "couponBatch",
            "query($id: ID!) { couponBatch(id: $id) { id } }",
            json!({ "id": batch }),
            &[Admin, Checkout, Viewer],
        ),
        (
            "previewPromotions",
            "query($c: CartInput!) { previewPromotions(cart: $c) { total } }",
            json!({ "c": cart }),
            &[Admin, Checkout, Viewer],
        ),
        (
            "redemption",
            "{ redemption(orderId: \"none\") { orderId } }",
            json!({}),
            &[Admin, Checkout, Viewer],
        ),
        (
            "outboxEvents",
            "{ outboxEvents(first: 1) { totalCount } }",
            json!({}),
            &[Admin, Viewer],
        ),
        (
            "createCampaign",
            "mutation { createCampaign(input: {name: \"c{n}\"}) { id } }",
            json!({}),
            &[Admin],
        ),
        (
            "updateCampaign",
            "mutation($id: ID!) { updateCampaign(id: $id, input: {name: \"u{n}\"}) { id } }",
            json!({ "id": campaign }),
            &[Admin],
        ),
        (
            "setCampaignStatus",
            "mutation($id: ID!) { setCampaignStatus(id: $id, status: ACTIVE) { id } }",
            json!({ "id": campaign }),
            &[Admin],
        ),
        (
            "createPromotion",
            "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
            json!({ "i": promotion_input(json!({ "requiresCoupon": true })) }),
            &[Admin],
        ),
        (
            "updatePromotion",
            "mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }",
            json!({ "id": promotion, "i": promotion_input(json!({})) }),
            &[Admin],
        ),
        (
            "setPromotionActive",
            "mutation($id: ID!) { setPromotionActive(id: $id, active: true) { id } }",
            json!({ "id": promotion }),
            &[Admin],
        ),
        (
            "createCoupon",
            "mutation($p: ID!) { createCoupon(input: {promotionId: $p, code: \"NEW{n}\"}) { code } }",
            json!({ "p": promotion }),
            &[Admin],
        ),
        (
            "setCouponActive",
            "mutation($c: String!) { setCouponActive(code: $c, active: true) { code } }",
            json!({ "c": code }),
            &[Admin],
        ),
        (
            "generateCoupons",
            "mutation($p: ID!) { generateCoupons(input: {promotionId: $p, count: 2, pattern: \"G{n}-??????\"}) { id } }",
            json!({ "p": promotion }),
            &[Admin],
        ),
        (
            "applyPromotions",
            "mutation($c: CartInput!) { applyPromotions(input: {orderId: \"order-{n}\", cart: $c}) { total } }",
            json!({ "c": cart }),
            &[Admin, Checkout],
        ),
        (
            "releaseRedemption",
            "mutation { releaseRedemption(orderId: \"seeded\") { orderId } }",
            json!({}),
            &[Admin, Checkout],
        ),
        (
            "retryOutboxEvent",
            "mutation($id: ID!) { retryOutboxEvent(id: $id) { id } }",
            json!({ "id": dead }),
            &[Admin],
        ),
    ];

    // Refused callers first: nothing may change.
    let before = footprint(&app).await;
    for (name, query, variables, allowed) in &operations {
        let query = query.replace("{n}", "refused");
        for (why, bad) in refused_tokens() {
            let (status, body) = post(&app, bad.as_deref(), &query, variables.clone()).await;
            assert_eq!(
                (status, codes(&body)),
                (401, vec!["UNAUTHENTICATED".to_owned()]),
                "{name} with {why}: {body}"
            );
        }
        for role in [Admin, Checkout, Viewer].into_iter().filter(|r| !allowed.contains(r)) {
            let (status, body) = post(&app, Some(&token(role)), &query, variables.clone()).await;
            assert_eq!(
                (status, codes(&body)),
                (200, vec!["FORBIDDEN".to_owned()]),
                "{name} as {role:?}: {body}"
            );
            assert!(body["data"].is_null(), "{name} as {role:?} returned data: {body}");
        }
    }
    assert_eq!(footprint(&app).await, before, "refused calls changed nothing");

    // Allowed callers: the call works.
    let mut n = 0;
    for (name, query, variables, allowed) in &operations {
        for role in *allowed {
            let query = query.replace("{n}", &n.to_string());
            n += 1;
            let (status, body) = post(&app, Some(&token(*role)), &query, variables.clone()).await;
            assert_eq!(status, 200, "{name} as {role:?}");
            assert!(body.get("errors").is_none(), "{name} as {role:?}: {body}");
            assert!(
                !body["data"][name].is_null() || *name == "redemption",
                "{name} as {role:?}: {body}"
            );
        }
    }

    // Subscriptions: refused tokens cannot open a socket; checkout may not subscribe.
    let subscription = json!({ "id": "1", "type": "subscribe", "payload": {
        "query": "subscription($b: ID!) { couponBatchProgress(batchId: $b) { status } }", "variables": { "b": batch } } });
    for (why, bad) in refused_tokens() {
        let mut socket = open_socket(&app, "graphql-transport-ws").await;
        init_socket(&mut socket, bad.as_deref()).await;
        let answer = next_json(&mut socket, Duration::from_secs(2)).await;
        assert_ne!(
            answer.as_ref().map(|a| a["type"].clone()),
            Some(json!("connection_ack")),
            "{why}: {answer:?}"
        );
    }
    for role in [Admin, Checkout, Viewer] {
        let mut socket = open_socket(&app, "graphql-transport-ws").await;
        init_socket(&mut socket, Some(&token(role))).await;
        assert_eq!(
            next_json(&mut socket, Duration::from_secs(2)).await.unwrap()["type"],
            "connection_ack"
        );
        socket.send(Message::text(subscription.to_string())).await.unwrap();
        let first = next_json(&mut socket, Duration::from_secs(5)).await.unwrap();
        if role == Checkout {
            assert_eq!(socket_error_code(&first), Some("FORBIDDEN"), "{first}");
        } else {
            assert_eq!(
                first["payload"]["data"]["couponBatchProgress"]["status"], "DONE",
                "{role:?}: {first}"
            );
        }
    }
}

#[tokio::test]
async fn the_export_needs_an_admin_token() {
    let app = spawn_app().await;
    let promotion = app.create_promotion(promotion_input(json!({}))).await;
    let batch = app
        .data(
            "mutation($p: ID!) { generateCoupons(input: {promotionId: $p, count: 3, pattern: \"EX-??????\"}) { id } }",
            json!({ "p": promotion }),
        )
        .await["generateCoupons"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let url = format!("{}/coupon-batches/{batch}/codes.csv", app.address);
    for (token, status) in [
        (None, 401),
        (Some(token(Role::Viewer)), 403),
        (Some(token(Role::Checkout)), 403),
        (Some(token(Role::Admin)), 200),
    ] {
        let response = client_with(token.as_deref()).get(&url).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
    }
}

#[tokio::test]
async fn depth_complexity_aliases_nesting_batches_and_pages_are_bounded() {
    let app = spawn_app().await;
    let admin = token(Role::Admin);
    let refused = async |query: String| -> Vec<String> {
        let (_, body) = post(&app, Some(&admin), &query, json!({})).await;
        codes(&body)
    };
    // Depth: 20 levels of ofType.
    let deep = format!(
        "{{ __schema {{ types {{ {}name{} }} }} }}",
        "ofType { ".repeat(20),
        " }".repeat(20)
    );
    assert_eq!(refused(deep).await, ["BAD_USER_INPUT"]);
    // Fragments that double 40 times: answered at once, not 2^40 times.
    let mut bomb = String::from("query { ...F0 }");
    for i in 0..40 {
        bomb.push_str(&format!(" fragment F{i} on Query {{ ...F{} ...F{} }}", i + 1, i + 1));
    }
    bomb.push_str(" fragment F40 on Query { __typename }");
    let answer = tokio::time::timeout(Duration::from_secs(5), refused(bomb)).await;
    assert_eq!(answer.expect("refused at once"), ["BAD_USER_INPUT"]);
    // Complexity: 50 aliases of a 48-field selection (2,400 fields).
    let schema = "__schema { queryType { name } mutationType { name } subscriptionType { name }
        directives { name description locations args { name } }
        types { name kind description interfaces { name } possibleTypes { name } enumValues { name description }
          inputFields { name description } ofType { name }
          fields { name description isDeprecated deprecationReason type { name kind ofType { name kind } }
            args { name description defaultValue type { name } } } } }";
    let wide: String = (0..50).map(|i| format!("s{i}: {schema} ")).collect();
    assert_eq!(refused(format!("{{ {wide} }}")).await, ["BAD_USER_INPUT"]);
    // Aliases: 51.
    let aliased: String = (0..51).map(|i| format!("a{i}: __typename ")).collect();
    assert_eq!(refused(format!("{{ {aliased} }}")).await, ["BAD_USER_INPUT"]);
    let fine: String = (0..50).map(|i| format!("a{i}: __typename ")).collect();
    assert!(refused(format!("{{ {fine} }}")).await.is_empty(), "50 aliases are fine");
    // Nesting, checked before parsing.
    let (status, body) = post(
        &app,
        Some(&admin),
        &format!("{}{}", "{".repeat(10_000), "}".repeat(10_000)),
        json!({}),
    )
    .await;
    assert_eq!((status, codes(&body)), (400, vec!["BAD_USER_INPUT".to_owned()]));
    // Batches: 10 fine, 11 refused.
    let batch = |n: usize| json!((0..n).map(|_| json!({ "query": "{ __typename }" })).collect::<Vec<_>>());
    let send = async |body: Value| {
        let r = app
            .client
            .post(format!("{}/graphql", app.address))
            .json(&body)
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let (status, body) = send(batch(10)).await;
    assert_eq!((status, body.as_array().map(Vec::len)), (200, Some(10)));
    let (status, body) = send(batch(11)).await;
    assert_eq!((status, codes(&body)), (400, vec!["BAD_USER_INPUT".to_owned()]));
    // Pages: first <= 500.
    let (code, field) = app.error("{ promotions(first: 501) { totalCount } }", json!({})).await;
    assert_eq!((code.as_str(), field.as_deref()), ("BAD_USER_INPUT", Some("first")));
    // Carts: 201 lines, 11 codes.
    let lines: Vec<Value> = (0..201)
        .map(|i| json!({ "id": format!("l{i}"), "productId": "p", "quantity": 1, "unitPrice": 1 }))
        .collect();
    let preview = "query($c: CartInput!) { previewPromotions(cart: $c) { total } }";
    let (code, _) = app
        .error(preview, json!({ "c": { "currency": "EUR", "lines": lines } }))
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
    let codes11: Vec<String> = (0..11).map(|i| format!("CODE{i}")).collect();
    let one_line = json!([{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1 }]);
    let (code, _) = app
        .error(
            preview,
            json!({ "c": { "currency": "EUR", "lines": one_line, "couponCodes": codes11 } }),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");
}

#[tokio::test]
async fn a_client_over_its_rate_gets_rate_limited_with_a_retry_hint_and_others_do_not() {
    let app = spawn_app_serving(|s| s.rate_limit_per_second = 5).await;
    let greedy = token(Role::Checkout);
    let mut limited = None;
    for _ in 0..20 {
        let response = client_with(Some(&greedy))
            .post(format!("{}/graphql", app.address))
            .json(&json!({ "query": "{ __typename }" }))
            .send()
            .await
            .unwrap();
        if response.status().as_u16() == 429 {
            let retry = response.headers()["retry-after"].to_str().unwrap().to_owned();
            limited = Some((retry, response.json::<Value>().await.unwrap()));
            break;
        }
    }
    let (retry, body) = limited.expect("20 requests at once exceed 5 per second");
    assert_eq!(retry, "1");
    assert_eq!(codes(&body), ["RATE_LIMITED"]);
    let hint = body["errors"][0]["extensions"]["retryAfter"].as_f64().unwrap();
    assert!(hint > 0.0 && hint <= 1.0, "{hint}");
    // Another client is not affected.
    let (status, _) = post(&app, Some(&token(Role::Viewer)), "{ __typename }", json!({})).await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = post(&app, Some(&greedy), "{ __typename }", json!({})).await;
    assert_eq!(status, 200, "the next second admits it again");
}

#[tokio::test]
async fn sockets_and_subscriptions_per_socket_are_bounded() {
    let app = spawn_app_serving(|s| s.max_ws_connections = 2).await;
    let viewer = token(Role::Viewer);
    let mut first = open_socket(&app, "graphql-transport-ws").await;
    let _second = open_socket(&app, "graphql-transport-ws").await;
    let url = format!("{}/graphql/ws", app.address.replace("http://", "ws://"));
    let mut request = tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(url).unwrap();
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", "graphql-transport-ws".parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 429),
        other => panic!("a third socket was accepted: {other:?}"),
    }
    init_socket(&mut first, Some(&viewer)).await;
    assert_eq!(
        next_json(&mut first, Duration::from_secs(2)).await.unwrap()["type"],
        "connection_ack"
    );
    let max = crate::helpers::SUBSCRIPTIONS_PER_SOCKET;
    for id in 0..=max {
        let message = json!({ "id": id.to_string(), "type": "subscribe", "payload": { "query": "subscription { usageUpdated { orderId } }" } });
        first.send(Message::text(message.to_string())).await.unwrap();
    }
    let mut refused = Vec::new();
    while let Some(message) = next_json(&mut first, Duration::from_millis(1000)).await {
        if let Some(code) = socket_error_code(&message) {
            refused.push(code.to_owned());
        }
    }
    assert_eq!(refused, ["RATE_LIMITED"], "only the one over {max} is refused");
}

#[tokio::test]
async fn introspection_and_graphiql_can_be_switched_off() {
    let app = spawn_app_serving(|s| {
        s.introspection = false;
        s.graphiql = false;
    })
    .await;
    let (_, body) = post(
        &app,
        Some(&token(Role::Admin)),
        "{ __schema { types { name } } }",
        json!({}),
    )
    .await;
    assert!(body["data"]["__schema"].is_null(), "the schema is hidden: {body}");
    let page = app.client.get(format!("{}/graphql", app.address)).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 405);
    let (status, body) = post(&app, Some(&token(Role::Admin)), "{ __typename }", json!({})).await;
    assert_eq!((status, body["data"]["__typename"].as_str()), (200, Some("Query")));
}

#[tokio::test]
async fn rs256_tokens_are_accepted_with_the_configured_public_key_only() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let public_key = fixtures.join("rs256-test-only.pub.pem");
    let app = spawn_app_serving(|s| s.jwt_public_key_file = Some(public_key)).await;
    let sign = |key_file: &str| {
        let pem = std::fs::read(fixtures.join(key_file)).unwrap();
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            + 600;
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &json!({ "sub": "issuer-client", "role": "viewer", "exp": exp }),
            &jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
        .unwrap()
    };
    let (status, body) = post(
        &app,
        Some(&sign("rs256-test-only.key.pem")),
        "{ campaigns { totalCount } }",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, body["data"]["campaigns"]["totalCount"].as_i64()),
        (200, Some(0)),
        "{body}"
    );
    let (status, body) = post(
        &app,
        Some(&sign("rs256-other-test-only.key.pem")),
        "{ __typename }",
        json!({}),
    )
    .await;
    assert_eq!((status, codes(&body)), (401, vec!["UNAUTHENTICATED".to_owned()]));
    let (status, body) = post(
        &app,
        Some(&sign("rs256-test-only.key.pem")),
        "mutation { createCampaign(input: {name: \"x\"}) { id } }",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, codes(&body)),
        (200, vec!["FORBIDDEN".to_owned()]),
        "a viewer still"
    );
}

#[tokio::test]
async fn every_request_of_a_batch_counts_against_the_rate_limit() {
    let app = spawn_app_serving(|s| s.rate_limit_per_second = 10).await;
    let checkout = token(Role::Checkout);
    // At the start of a fresh second, so the batch and the next request share it.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    tokio::time::sleep(Duration::from_nanos(u64::from(1_000_000_000 - now.subsec_nanos()))).await;
    let batch: Vec<Value> = (0..10).map(|_| json!({ "query": "{ __typename }" })).collect();
    let response = client_with(Some(&checkout))
        .post(format!("{}/graphql", app.address))
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (status, body) = post(&app, Some(&checkout), "{ __typename }", json!({})).await;
    assert_eq!(
        (status, codes(&body)),
        (429, vec!["RATE_LIMITED".to_owned()]),
        "the batch counted 10: the 11th request of the second is refused"
    );
}

#[tokio::test]
async fn the_export_is_rate_limited() {
    let app = spawn_app_serving(|s| s.rate_limit_per_second = 3).await;
    let url = format!("{}/coupon-batches/{}/codes.csv", app.address, uuid::Uuid::nil());
    let admin = client_with(Some(&token(Role::Admin)));
    let mut statuses = Vec::new();
    for _ in 0..10 {
        statuses.push(admin.get(&url).send().await.unwrap().status().as_u16());
    }
    assert!(
        statuses.contains(&429),
        "10 exports at once exceed 3 a second: {statuses:?}"
    );
}

#[tokio::test]
async fn without_redis_the_rate_limit_lets_the_checkout_through_and_refuses_admins() {
    let mut redis = crate::helpers::OwnRedis::start().await;
    let url = redis.url();
    let app = TestApp::builder()
        .redis(&url)
        .serve(|s| s.rate_limit_per_second = 100)
        .spawn()
        .await;
    redis.stop();
    for _ in 0..3 {
        let (status, body) = post(&app, Some(&token(Role::Checkout)), "{ __typename }", json!({})).await;
        assert_eq!(status, 200, "the checkout fails open: {body}");
    }
    let (status, body) = post(&app, Some(&token(Role::Admin)), "{ __typename }", json!({})).await;
    assert_eq!(
        (status, codes(&body)),
        (503, vec!["UNAVAILABLE".to_owned()]),
        "admin fails closed"
    );
    let (status, _) = post(&app, Some(&token(Role::Viewer)), "{ __typename }", json!({})).await;
    assert_eq!(status, 503, "viewer fails closed by default");
    redis.restart().await;
    crate::helpers::until("admins are admitted again", Duration::from_secs(5), async || {
        post(&app, Some(&token(Role::Admin)), "{ __typename }", json!({}))
            .await
            .0
            == 200
    })
    .await;
}

#[tokio::test]
async fn operations_endpoints_can_leave_the_public_port() {
    let app = spawn_app_serving(|s| s.ops_listen = Some("127.0.0.1:0".parse().unwrap())).await;
    let ops = app.ops_address.clone().expect("an operations address");
    for path in ["/metrics", "/health/detailed"] {
        let public = crate::helpers::get(format!("{}{path}", app.address)).await.unwrap();
        assert_eq!(public.status().as_u16(), 404, "{path} is not on the public port");
        let private = crate::helpers::get(format!("{ops}{path}")).await.unwrap();
        assert_eq!(private.status().as_u16(), 200, "{path} is on the operations port");
    }
    for path in ["/health/live", "/health/ready"] {
        let public = crate::helpers::get(format!("{}{path}", app.address)).await.unwrap();
        assert_eq!(public.status().as_u16(), 200, "{path} stays public");
    }
    let (status, _) = post(&app, Some(&token(Role::Viewer)), "{ __typename }", json!({})).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn coupon_codes_are_listed_to_admins_only_and_looked_up_by_anyone_who_knows_one() {
    let app = spawn_app().await;
    let promotion = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "SECRET-ONE" }))
        .await;
    let batch = app
        .data(
            "mutation($p: ID!) { generateCoupons(input: {promotionId: $p, count: 3, pattern: \"GEN-??????\"}) { id } }",
            json!({ "p": promotion }),
        )
        .await["generateCoupons"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let listings = [
        (
            "query($p: ID!) { promotion(id: $p) { coupons(first: 10) { edges { node { code } } } } }",
            json!({ "p": promotion }),
        ),
        (
            "query($b: ID!) { couponBatch(id: $b) { coupons(first: 10) { edges { node { code } } } } }",
            json!({ "b": batch }),
        ),
    ];
    let counts = "query($p: ID!, $b: ID!) { promotion(id: $p) { coupons(first: 10) { edges { node { timesUsed active } } } } couponBatch(id: $b) { generated } }";
    let variables = json!({ "p": promotion, "b": batch });
    for (listing, listed) in listings {
        let (status, body) = post(&app, Some(&token(Role::Admin)), listing, listed.clone()).await;
        assert_eq!(status, 200);
        assert!(body.get("errors").is_none(), "admins list codes: {body}");
        assert!(body.to_string().contains("-"), "{body}");
        for role in [Role::Checkout, Role::Viewer] {
            let (status, body) = post(&app, Some(&token(role)), listing, listed.clone()).await;
            assert_eq!(
                (status, codes(&body)),
                (200, vec!["FORBIDDEN".to_owned(); codes(&body).len().max(1)]),
                "{role:?}: {body}"
            );
            let text = body["data"].to_string();
            assert!(
                !text.contains("SECRET-ONE") && !text.contains("GEN-"),
                "{role:?} saw a code: {body}"
            );
        }
    }
    for role in [Role::Admin, Role::Checkout, Role::Viewer] {
        let (_, body) = post(&app, Some(&token(role)), counts, variables.clone()).await;
        assert!(body.get("errors").is_none(), "{role:?} sees counts and usage: {body}");
        assert_eq!(body["data"]["couponBatch"]["generated"], 3, "{body}");
        let (_, body) = post(
            &app,
            Some(&token(role)),
            "{ coupon(code: \"secret-one\") { code timesUsed } }",
            json!({}),
        )
        .await;
        assert_eq!(
            body["data"]["coupon"]["code"], "SECRET-ONE",
            "{role:?} looks up a code it knows: {body}"
        );
    }
}

#[tokio::test]
async fn an_order_belongs_to_the_client_that_placed_it() {
    let app = spawn_app().await;
    let promotion = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "ONCE", "usageLimit": 1 }))
        .await;
    let as_client =
        |subject: &str| promotions::auth::issue(JWT_SECRET, Role::Checkout, subject, Duration::from_secs(600)).unwrap();
    let (shop_a, shop_b) = (as_client("shop-a"), as_client("shop-b"));
    let cart = json!({ "currency": "EUR", "couponCodes": ["ONCE"],
        "lines": [{ "id": "l1", "productId": "p", "quantity": 1, "unitPrice": 10_000 }] });
    app.wait_until_priced(&cart, 1000).await;
    let apply = "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) { discountTotal redemption { orderId status } } }";
    let order = json!({ "i": { "orderId": "o-a", "cart": cart } });
    let (_, body) = post(&app, Some(&shop_a), apply, order.clone()).await;
    assert_eq!(
        body["data"]["applyPromotions"]["redemption"]["status"], "REDEEMED",
        "{body}"
    );

    // Another client learns nothing of it: the same answers as for an order never placed.
    let read = "query($o: String!) { redemption(orderId: $o) { orderId status } }";
    let release = "mutation($o: String!) { releaseRedemption(orderId: $o) { status } }";
    for order_id in ["o-a", "o-never"] {
        let (_, body) = post(&app, Some(&shop_b), read, json!({ "o": order_id })).await;
        assert_eq!(body, json!({ "data": { "redemption": null } }), "{order_id}");
        let (_, body) = post(&app, Some(&shop_b), release, json!({ "o": order_id })).await;
        assert_eq!(codes(&body), ["NOT_FOUND"], "{order_id}: {body}");
        assert_eq!(
            body["errors"][0]["message"],
            format!("no redemption for order {order_id}")
        );
    }
    let (_, body) = post(&app, Some(&shop_b), apply, order.clone()).await;
    assert_eq!(
        codes(&body),
        ["NOT_FOUND"],
        "B does not get A's recorded result: {body}"
    );
    // The single-use coupon stayed used: B's release freed nothing.
    let (_, body) = post(
        &app,
        Some(&shop_b),
        apply,
        json!({ "i": { "orderId": "o-b", "cart": cart } }),
    )
    .await;
    assert_eq!(body["data"]["applyPromotions"]["discountTotal"], 0, "{body}");

    // Its own client and admins see it; its own client releases it.
    let (_, body) = post(&app, Some(&shop_a), read, json!({ "o": "o-a" })).await;
    assert_eq!(body["data"]["redemption"]["status"], "REDEEMED", "{body}");
    let (_, body) = post(&app, Some(&token(Role::Admin)), read, json!({ "o": "o-a" })).await;
    assert_eq!(body["data"]["redemption"]["status"], "REDEEMED", "{body}");
    let (_, body) = post(&app, Some(&shop_a), release, json!({ "o": "o-a" })).await;
    assert_eq!(body["data"]["releaseRedemption"]["status"], "RELEASED", "{body}");
    let owner = rows(&app, "SELECT client_subject FROM redemptions WHERE order_id = 'o-a'").await;
    assert_eq!(owner[0].try_get::<String>("", "client_subject").unwrap(), "shop-a");
}

#[tokio::test]
async fn coupon_codes_in_outbox_events_are_shown_to_admins_only() {
    let app = spawn_app().await;
    let promotion = app
        .create_promotion(promotion_input(json!({ "requiresCoupon": true })))
        .await;
    let code = app
        .create_coupon(json!({ "promotionId": promotion, "code": "SECRET-77" }))
        .await;
    let cart = json!({
        "currency": "EUR", "couponCodes": [code],
        "lines": [{ "id": "l1", "productId": "p", "quantity": 1, "unitPrice": 10_000 }]
    });
    app.wait_until_priced(&cart, 1_000).await;
    let applied = app
        .data(
            "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) { applied { couponCode } } }",
            json!({ "i": { "orderId": "o-secret", "cart": cart } }),
        )
        .await;
    assert_eq!(applied["applyPromotions"]["applied"][0]["couponCode"], "SECRET-77");
    let query = "{ outboxEvents(first: 50) { nodes { eventType payload } } }";
    let payloads = |body: &Value| -> Vec<(String, String)> {
        body["data"]["outboxEvents"]["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| {
                (
                    n["eventType"].as_str().unwrap().to_owned(),
                    n["payload"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let (_, admin) = post(&app, Some(&token(Role::Admin)), query, json!({})).await;
    let (_, viewer) = post(&app, Some(&token(Role::Viewer)), query, json!({})).await;
    let (admin, viewer) = (payloads(&admin), payloads(&viewer));
    for kind in ["coupon.created", "redemption.created"] {
        let shown = admin.iter().find(|(t, _)| t == kind).expect(kind);
        assert!(shown.1.contains("SECRET-77"), "an admin reads the code in {kind}");
    }
    assert_eq!(admin.len(), viewer.len());
    for ((kind, admin), (_, viewer)) in admin.iter().zip(&viewer) {
        assert!(!viewer.contains("SECRET-77"), "{kind}: {viewer}");
        let (admin, viewer): (Value, Value) = (
            serde_json::from_str(admin).unwrap(),
            serde_json::from_str(viewer).unwrap(),
        );
        assert_eq!(
            promotions::outbox::events::without_coupon_codes(admin),
            viewer,
            "{kind}: the codes, and nothing else, are redacted"
        );
    }
}
