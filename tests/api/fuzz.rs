//! Fuzzing the running server: 10,000 random and malformed GraphQL
//! requests (token soup, mangled real documents, wrong and huge variable
//! values, unknown enum values, oneOf inputs with zero or two members, deep
//! nesting, invalid UTF-8, broken JSON, batches, and hostile strings: NUL,
//! separators, escapes, any Unicode, in every string argument that reaches
//! SQL or a Redis key). Every answer is below 500, is JSON, and each of its
//! errors has a client's code (never INTERNAL: with its dependencies up,
//! the service has no excuse for one); afterwards the service is ready and
//! the data seeded before is unchanged.

use futures_util::StreamExt;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};

use crate::helpers::{promotion_input, spawn_app};

/// How many requests the fuzz test sends.
const CASES: usize = 10_000;

/// The codes a fuzzed request may get: INTERNAL is a bug.
const CODES: [&str; 7] = [
    "BAD_USER_INPUT",
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "CONFLICT",
    "RATE_LIMITED",
    "UNAVAILABLE",
];

/// Real documents whose variables the fuzzer replaces: every root field
/// that takes a string (or an input holding strings).
const DOCUMENTS: [&str; 14] = [
    "query($c: CartInput!) { previewPromotions(cart: $c) { total lines { lineId discount } applied { promotionId } rejected { reason } } }",
    "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
    "mutation($i: ApplyPromotionsInput!) { applyPromotions(input: $i) { total redemption { orderId } } }",
    "mutation($i: GenerateCouponsInput!) { generateCoupons(input: $i) { id status } }",
    "mutation($i: CampaignInput!) { createCampaign(input: $i) { id } }",
    "query($f: Int, $a: String, $p: PromotionFilter) { promotions(first: $f, after: $a, filter: $p) { totalCount edges { node { id } } } }",
    "mutation($id: ID!, $s: CampaignStatus!) { setCampaignStatus(id: $id, status: $s) { id } }",
    "query($c: String!) { coupon(code: $c) { code timesUsed } }",
    "query($o: String!) { redemption(orderId: $o) { orderId status } }",
    "mutation($o: String!) { releaseRedemption(orderId: $o) { orderId } }",
    "mutation($c: String!) { setCouponActive(code: $c, active: true) { code } }",
    "mutation($i: CouponInput!) { createCoupon(input: $i) { code } }",
    "query($a: String, $q: CampaignFilter) { campaigns(first: 5, after: $a, filter: $q) { totalCount } }",
    "query($a: String) { outboxEvents(first: 5, after: $a) { totalCount } }",
];

/// Strings that break naive storage or encodings: NUL (PostgreSQL's text
/// refuses it), key and list separators, quotes and escapes, control,
/// combining, right-to-left and astral characters, and long ones.
fn hostile_string() -> impl Strategy<Value = String> {
    let pieces = prop::sample::select(vec![
        "\u{0}",
        "a",
        "Z9",
        ";",
        "=",
        ":",
        "{",
        "}",
        "%",
        "_",
        "\\",
        "'",
        "\"",
        "\n",
        "\u{7f}",
        "\u{1b}[0m",
        "\u{301}",
        "\u{202e}",
        "\u{feff}",
        "\u{fffd}",
        "\u{ffff}",
        "\u{1f600}",
        "\u{10ffff}",
        "é",
        "ß",
        "İ",
    ]);
    prop_oneof![
        4 => prop::collection::vec(pieces, 1..12).prop_map(|p| p.concat()),
        1 => ".{0,40}",
        1 => (1usize..400).prop_map(|n| "\u{0}x".repeat(n)),
    ]
}

fn token_soup() -> impl Strategy<Value = String> {
    let tokens = prop::sample::select(vec![
        "{",
        "}",
        "(",
        ")",
        "[",
        "]",
        ":",
        ",",
        "$x",
        "$c",
        "...",
        "...F",
        "@include(if: true)",
        "@skip(if: $x)",
        "query",
        "mutation",
        "subscription",
        "fragment",
        "on",
        "Query",
        "Mutation",
        "F",
        "__typename",
        "__schema",
        "types",
        "name",
        "previewPromotions",
        "promotions",
        "campaigns",
        "createCampaign",
        "applyPromotions",
        "cart",
        "input",
        "first",
        "after",
        "edges",
        "node",
        "id",
        "total",
        "-1",
        "0",
        "99999999999999999999999",
        "1e400",
        "\"\"",
        "\"\\u0000\"",
        "\"\\uD800\"",
        "\"str\"",
        "true",
        "null",
        "ACTIVE",
        "NOPE",
        "=",
        "!",
        "|",
        "#c\n",
        "\"\"\"b\"\"\"",
    ]);
    prop::collection::vec(tokens, 0..60).prop_map(|t| t.join(" "))
}

/// A JSON value of any shape: wrong types, huge and fractional numbers,
/// unknown enum values, deep arrays.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1e300)),
        Just(json!(u64::MAX)),
        ".{0,40}".prop_map(Value::from),
        hostile_string().prop_map(Value::from),
        prop::sample::select(vec!["PERCENTAGE_OFF", "CART", "ACTIVE", "NOPE", "", "EUR", "eur", "€"])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
            prop::collection::hash_map("[a-zA-Z]{1,12}", inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Plausible variables, with one part broken: oneOf inputs with zero or two
/// members, wrong types, unknown enums, huge numbers.
fn broken_variables() -> impl Strategy<Value = Value> {
    let action = prop_oneof![
        Just(json!({})),
        Just(json!({ "percentageOff": { "basisPoints": 1000 }, "amountOff": { "amount": 100 } })),
        Just(json!({ "percentageOff": { "basisPoints": 100000 } })),
        Just(json!({ "fixedPrice": { "price": -5 } })),
        any_json(),
    ];
    let line = prop_oneof![
        Just(json!({ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1000 })),
        Just(json!({ "id": "l", "productId": "p", "quantity": 2147483648i64, "unitPrice": 1000 })),
        Just(json!({ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 9223372036854775807i64 })),
        Just(json!({ "id": "", "productId": "\u{0}", "quantity": -1, "unitPrice": 1.5 })),
        any_json(),
    ];
    let strings = prop::collection::vec(hostile_string(), 4);
    (action, prop::collection::vec(line, 0..4), any_json(), any::<u8>(), strings).prop_map(
        |(action, mut lines, noise, pick, s)| {
            // One string of the plausible request turns hostile, by turns.
            let hostile = |n: u8, plain: &str| if pick % 8 == n { json!(s[usize::from(n) % 4]) } else { json!(plain) };
            if pick % 8 == 7 {
                lines.push(json!({ "id": s[0], "productId": s[1], "categoryIds": [s[2]], "brandId": s[3], "quantity": 1, "unitPrice": 1 }));
            }
            let customer = json!({ "id": hostile(0, "fuzz-customer"), "segments": [hostile(1, "gold")] });
            let cart = json!({ "currency": if pick % 3 == 0 { json!("XXX") } else { json!("EUR") }, "lines": lines,
                               "customer": customer,
                               "couponCodes": if pick % 5 == 0 { noise.clone() } else { json!(["A B", hostile(2, "x")]) } });
            json!({
                "c": if pick % 7 == 0 { noise.clone() } else if pick % 7 == 1 { json!(s[0]) } else { cart.clone() },
                "i": {
                    "name": hostile(3, "fuzz"), "description": hostile(4, "d"), "code": hostile(5, "FZ-CODE"),
                    "scope": if pick % 2 == 0 { "CART" } else { "SIDEWAYS" }, "action": action,
                    "customerSegments": [hostile(6, "gold")],
                    "target": { "productIds": [hostile(1, "p")], "categoryIds": [hostile(2, "c")] },
                    "orderId": hostile(0, "fuzz-order"), "cart": cart, "promotionId": uuid::Uuid::now_v7().to_string(),
                    "count": if pick % 4 == 0 { json!(1_000_000_000) } else { json!(2) }, "pattern": hostile(7, "FZ-????????"),
                },
                "o": s[1],
                "q": { "nameContains": s[2] },
                "f": if pick % 3 == 0 { json!(1e10) } else { json!(501) },
                "a": if pick % 2 == 0 { json!("not-a-cursor") } else { json!(s[3]) },
                "p": if pick % 3 == 0 { json!({ "nameContains": s[0], "productId": s[1], "brandId": s[2] }) } else { noise },
                "id": "not-an-id", "s": "NOPE",
            })
        },
    )
}

/// One request body.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let documents = prop::sample::select(DOCUMENTS.to_vec());
    prop_oneof![
        3 => (token_soup(), any_json()).prop_map(|(q, v)| json!({ "query": q, "variables": v }).to_string().into_bytes()),
        4 => (documents.clone(), broken_variables()).prop_map(|(q, v)| json!({ "query": q, "variables": v }).to_string().into_bytes()),
        2 => (documents, any::<usize>(), ".{0,4}").prop_map(|(q, at, insert)| {
            // A real document with a few characters replaced.
            let mut chars: Vec<char> = q.chars().collect();
            let at = at % chars.len();
            chars.splice(at..(at + 3).min(chars.len()), insert.chars());
            json!({ "query": chars.into_iter().collect::<String>() }).to_string().into_bytes()
        }),
        1 => (1usize..3_000).prop_map(|n| json!({ "query": format!("{}__typename{}", "{ a: ".repeat(n), "}".repeat(n)) }).to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => prop::collection::vec(any_json(), 0..14).prop_map(|v| Value::from(v).to_string().into_bytes()),
        1 => (0u8..=255).prop_map(|b| [b"{\"query\": \"{ __typename }\", \"x\": \"".as_slice(), &[b, 0xff, 0xfe], b"\"}"].concat()),
    ]
}

async fn snapshot(app: &crate::helpers::TestApp, campaign: &str, promotion: &str) -> Value {
    app.data(
        "query($c: ID!, $p: ID!) { campaign(id: $c) { id name status updatedAt }
           promotion(id: $p) { id name active priority updatedAt action { __typename } } coupon(code: \"FUZZ\") { code active timesUsed } }",
        json!({ "c": campaign, "p": promotion }),
    )
    .await
}

#[tokio::test]
async fn ten_thousand_malformed_requests_get_coded_answers_and_hurt_nothing() {
    let app = spawn_app().await;
    let campaign = app.create_campaign(json!({ "name": "Kept" })).await;
    let promotion = app
        .create_promotion(promotion_input(json!({ "campaignId": campaign })))
        .await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "FUZZ" }))
        .await;
    let before = snapshot(&app, &campaign, &promotion).await;

    let mut runner = TestRunner::new(Config {
        rng_algorithm: proptest::test_runner::RngAlgorithm::ChaCha,
        ..Config::default()
    });
    let strategy = body();
    let bodies: Vec<Vec<u8>> = (0..CASES)
        .map(|_| strategy.new_tree(&mut runner).expect("a case").current())
        .collect();
    let url = format!("{}/graphql", app.address);
    let outcomes: Vec<Result<u16, String>> = futures_util::stream::iter(bodies)
        .map(|body| {
            let (client, url) = (app.client.clone(), url.clone());
            async move {
                let response = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| format!("no answer: {e}"))?;
                let status = response.status().as_u16();
                let text = response.text().await.map_err(|e| format!("no body: {e}"))?;
                let context = || format!("{status} for {}: {text}", String::from_utf8_lossy(&body));
                if status >= 500 {
                    return Err(context());
                }
                let value: Value = serde_json::from_str(&text).map_err(|_| context())?;
                let answers = value.as_array().cloned().unwrap_or_else(|| vec![value]);
                for answer in answers {
                    for error in answer["errors"].as_array().into_iter().flatten() {
                        let code = error["extensions"]["code"].as_str();
                        if !code.is_some_and(|c| CODES.contains(&c)) {
                            return Err(context());
                        }
                    }
                }
                Ok(status)
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let failures: Vec<&String> = outcomes.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        failures.is_empty(),
        "{} bad answers, e.g. {}",
        failures.len(),
        failures[0]
    );
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for status in outcomes.iter().flatten() {
        *statuses.entry(*status).or_default() += 1;
    }
    eprintln!("answers by status: {statuses:?}");
    let count = |s: u16| statuses.get(&s).copied().unwrap_or(0);
    assert!(count(200) > 1_000 && count(400) > 100, "a varied load: {statuses:?}");

    let (status, _) = app.get_json("/health/ready").await;
    assert_eq!(status, 200, "still ready");
    assert_eq!(
        snapshot(&app, &campaign, &promotion).await,
        before,
        "the seeded data is intact"
    );
}
