//! The compiled preview answers exactly as async-graphql does: the same
//! bytes for the same request, whether it prices, fails, or is not the
//! plan's to serve.
//!
//! Each document is sent twice: as it is (compiled: the test checks that it
//! is) and with `@include(if: true)` on previewPromotions, which means the
//! same but is never compiled, so async-graphql executes it.

use async_graphql::parser::parse_query;
use promotions::graphql::fast_preview::PreviewPlan;
use serde_json::{Value, json};

use rand::Rng;
use rand::rngs::StdRng;

use crate::helpers::{TestApp, promotion_input, seeded, spawn_app};

/// Every field a plan serves, aliases and __typename at each level.
const FULL: &str = r#"query Checkout($cart: CartInput!) { preview: previewPromotions(cart: $cart) {
    __typename currency subtotal discountTotal shippingAmount shippingDiscount grand: total
    lines { __typename lineId quantity unitPrice subtotal discount total
            adjustments { __typename promotionId couponCode amount } }
    applied { __typename promotionId couponCode name amount }
    rejected { __typename promotionId couponCode reason message }
} }"#;

/// What a cart widget asks for.
const SMALL: &str = "query($c: CartInput!) { previewPromotions(cart: $c) { total lines { lineId total } } }";

/// The document executed by async-graphql: the same, never compiled.
fn uncompiled(document: &str) -> String {
    let field = document.find("previewPromotions(").unwrap();
    let arguments_end = field + document[field..].find(')').unwrap() + 1;
    format!(
        "{} @include(if: true){}",
        &document[..arguments_end],
        &document[arguments_end..]
    )
}

/// (status, content type, body) of a raw request.
async fn send(app: &TestApp, body: &Value) -> (u16, String, String) {
    let response = app
        .client
        .post(format!("{}/graphql", app.address))
        .json(body)
        .send()
        .await
        .unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    (response.status().as_u16(), content_type, response.text().await.unwrap())
}

/// Sends `body` with its document compiled and not; both answers, which must be equal.
async fn both_paths(app: &TestApp, body: Value) -> String {
    let document = body["query"].as_str().unwrap();
    assert!(
        PreviewPlan::compile(&parse_query(document).unwrap()).is_some(),
        "compiled: {document}"
    );
    let other = uncompiled(document);
    assert!(
        PreviewPlan::compile(&parse_query(&other).unwrap()).is_none(),
        "not compiled: {other}"
    );
    let mut slow = body.clone();
    slow["query"] = other.into();
    let (fast, slow) = (send(app, &body).await, send(app, &slow).await);
    assert_eq!(fast, slow, "compiled and executed answers differ for {body:#}");
    fast.2
}

fn cart(codes: &[&str]) -> Value {
    json!({
        "currency": "EUR",
        "customer": { "id": "c-1", "segments": ["vip"], "reviewCount": 3 },
        "shippingAmount": 499,
        "couponCodes": codes,
        "lines": [
            { "id": "l1", "productId": "shoe", "categoryIds": ["shoes"], "brandId": "acme", "quantity": 2, "unitPrice": 5000, "rating": 4.5 },
            { "id": "l2", "productId": "sock", "categoryIds": ["socks"], "brandId": null, "quantity": 3, "unitPrice": 333 },
            { "id": "l\"3\u{e9}", "productId": "hat", "quantity": 1, "unitPrice": 1999, "rating": 3 }
        ]
    })
}

/// An app with promotions of every kind (a condition, a catalog target,
/// free shipping, a coupon `FIVE`), its snapshot holding them all, so that
/// both paths see the same.
async fn priced_app() -> TestApp {
    let app = spawn_app().await;
    app.create_promotion(promotion_input(
        json!({ "name": "Big spenders", "currency": "EUR", "conditions": [{ "minSubtotal": 50000 }] }),
    ))
    .await;
    app.create_promotion(promotion_input(
        json!({ "name": "Shoes 10%", "scope": "CATALOG", "target": { "categoryIds": ["shoes"] } }),
    ))
    .await;
    app.create_promotion(promotion_input(
        json!({ "name": "Free shipping", "currency": "EUR", "action": { "freeShipping": { "maxDiscount": 400 } } }),
    ))
    .await;
    let coded = app
        .create_promotion(promotion_input(
            json!({ "name": "5 \"off\"", "currency": "EUR", "requiresCoupon": true, "action": { "amountOff": { "amount": 500 } } }),
        ))
        .await;
    app.create_coupon(json!({ "promotionId": coded, "code": "FIVE" })).await;
    // The last change is priced, so the snapshot holds them all: both paths see the same.
    app.wait_until_priced(&cart(&["five"]), 1900).await;
    app
}

#[tokio::test]
async fn compiled_previews_answer_byte_for_byte_as_async_graphql_does() {
    let app = priced_app().await;

    // Priced: every field, with applied, rejected, escapes and nulls.
    let full = both_paths(
        &app,
        json!({ "query": FULL, "variables": { "cart": cart(&["five", "NOPE-1"]) } }),
    )
    .await;
    assert!(
        full.contains(r#""grand":"#)
            && full.contains("COUPON_NOT_FOUND")
            && full.contains("MIN_SUBTOTAL_NOT_MET")
            && full.contains("5 \\\"off\\\""),
        "{full}"
    );
    let answer: Value = serde_json::from_str(&full).unwrap();
    assert_eq!(answer["data"]["preview"]["discountTotal"], 1900, "{answer:#}");
    both_paths(
        &app,
        json!({ "query": SMALL, "variables": { "c": cart(&[]) }, "operationName": null }),
    )
    .await;
    let mut no_customer = cart(&[]);
    no_customer.as_object_mut().unwrap().remove("customer");
    no_customer.as_object_mut().unwrap().remove("shippingAmount");
    no_customer["couponCodes"] = Value::Null;
    both_paths(
        &app,
        json!({ "query": FULL, "variables": { "cart": no_customer }, "operationName": "Checkout" }),
    )
    .await;

    // A preview that fails: the error at previewPromotions, with its code and field.
    let mut bad = cart(&[]);
    bad["lines"][1]["quantity"] = 0.into();
    let failed = both_paths(&app, json!({ "query": FULL, "variables": { "cart": bad } })).await;
    assert!(
        failed.contains("BAD_USER_INPUT") && failed.contains("cart.lines[1].quantity"),
        "{failed}"
    );
}

#[tokio::test]
async fn requests_a_plan_cannot_serve_strictly_are_left_to_async_graphql() {
    let app = spawn_app().await;
    let with = |change: &dyn Fn(&mut Value)| {
        let mut body = json!({ "query": SMALL, "variables": { "c": cart(&["x"]) } });
        change(&mut body);
        body
    };
    let cases: [(&str, Value); 8] = [
        (
            "an unknown cart field",
            with(&|b| b["variables"]["c"]["colour"] = "red".into()),
        ),
        (
            "a code coerced into a list",
            with(&|b| b["variables"]["c"]["couponCodes"] = "x".into()),
        ),
        (
            "a quantity that is not an Int",
            with(&|b| b["variables"]["c"]["lines"][0]["quantity"] = 2.5.into()),
        ),
        (
            "a price beyond 64 bits",
            with(&|b| b["variables"]["c"]["lines"][0]["unitPrice"] = 1e19.into()),
        ),
        ("another variable too", with(&|b| b["variables"]["other"] = 1.into())),
        ("no variables", with(&|b| b["variables"] = Value::Null)),
        (
            "another operation's name",
            with(&|b| b["operationName"] = "Other".into()),
        ),
        ("a cart that is null", with(&|b| b["variables"]["c"] = Value::Null)),
    ];
    for (case, body) in cases {
        let answer = both_paths(&app, body).await;
        assert!(answer.starts_with('{'), "{case}: {answer}");
    }
    let answer = both_paths(&app, with(&|b| b["variables"]["c"]["colour"] = "red".into())).await;
    assert!(answer.contains("\"errors\""), "an unknown field is an error: {answer}");
}

/// The field names of `type <name> { ... }` in the SDL.
fn schema_fields(sdl: &str, name: &str) -> Vec<String> {
    let start = sdl
        .find(&format!("type {name} {{"))
        .unwrap_or_else(|| panic!("type {name} in the schema"));
    let body = &sdl[start..start + sdl[start..].find("\n}").unwrap()];
    let mut fields = Vec::new();
    let mut in_doc = false;
    for line in body.lines().skip(1) {
        let line = line.trim();
        if line.starts_with("\"\"\"") {
            // A one-line description opens and closes on the same line.
            in_doc = !(in_doc || line.len() > 3 && line.ends_with("\"\"\""));
            continue;
        }
        if in_doc || line.is_empty() {
            continue;
        }
        let end = line.find([':', '(']).unwrap_or(line.len());
        fields.push(line[..end].trim().to_owned());
    }
    fields
}

/// A preview document selecting `selection` inside the given result type.
fn selecting(type_name: &str, selection: &str) -> String {
    let inner = match type_name {
        "PromotionResult" => selection.to_owned(),
        "LineResult" => format!("lines {{ {selection} }}"),
        "LineAdjustment" => format!("lines {{ adjustments {{ {selection} }} }}"),
        "AppliedPromotion" => format!("applied {{ {selection} }}"),
        "RejectedPromotion" => format!("rejected {{ {selection} }}"),
        other => panic!("no path to {other}"),
    };
    format!("query($cart: CartInput!) {{ previewPromotions(cart: $cart) {{ {inner} }} }}")
}

#[test]
fn every_field_of_a_preview_result_is_written_by_the_plan_or_left_to_async_graphql() {
    use promotions::graphql::fast_preview::COVERAGE;
    let sdl = promotions::graphql::sdl();
    for (type_name, written, excluded) in COVERAGE {
        let mut known: Vec<String> = written.iter().chain(excluded.iter()).map(|f| f.to_string()).collect();
        known.sort();
        let mut in_schema = schema_fields(&sdl, type_name);
        in_schema.sort();
        assert_eq!(
            in_schema, known,
            "{type_name}: a field the compiled preview neither writes nor excludes"
        );
        for field in *written {
            let selection = match *field {
                "lines" => "lines { lineId }",
                "applied" => "applied { name }",
                "rejected" => "rejected { reason }",
                "adjustments" => "adjustments { amount }",
                other => other,
            };
            let document = selecting(type_name, selection);
            assert!(
                PreviewPlan::compile(&parse_query(&document).unwrap()).is_some(),
                "{type_name}.{field} should compile: {document}"
            );
        }
        for field in *excluded {
            let selection = match *field {
                "redemption" => "redemption { orderId }",
                "promotion" => "promotion { id }",
                other => other,
            };
            let document = selecting(type_name, selection);
            assert!(
                PreviewPlan::compile(&parse_query(&document).unwrap()).is_none(),
                "{type_name}.{field} must not compile: {document}"
            );
        }
    }
}

/// A random non-empty selection of `fields` (each maybe aliased), with
/// `__typename` sometimes; nested lists get a selection of their own.
fn random_selection(rng: &mut StdRng, type_name: &str) -> String {
    use promotions::graphql::fast_preview::COVERAGE;
    let (_, written, _) = COVERAGE.iter().find(|(t, _, _)| *t == type_name).unwrap();
    let mut parts = Vec::new();
    for (i, field) in written.iter().enumerate() {
        if rng.random_range(0..3) == 0 && !(parts.is_empty() && i + 1 == written.len()) {
            continue;
        }
        let alias = if rng.random_range(0..4) == 0 {
            format!("k{i}_{}: ", rng.random_range(0..100))
        } else {
            String::new()
        };
        let nested = match *field {
            "lines" => Some("LineResult"),
            "adjustments" => Some("LineAdjustment"),
            "applied" => Some("AppliedPromotion"),
            "rejected" => Some("RejectedPromotion"),
            _ => None,
        };
        match nested {
            Some(inner) => parts.push(format!("{alias}{field} {{ {} }}", random_selection(rng, inner))),
            None => parts.push(format!("{alias}{field}")),
        }
    }
    if rng.random_range(0..3) == 0 {
        parts.insert(0, "__typename".to_owned());
    }
    if parts.is_empty() {
        parts.push("__typename".to_owned());
    }
    parts.join(" ")
}

#[tokio::test]
async fn random_selections_aliases_and_carts_answer_the_same_bytes_on_both_paths() {
    let (seed, mut rng) = seeded("PREVIEW_SEED");
    let app = priced_app().await;
    let codes = [&[][..], &["five"][..], &["FIVE", "NOPE-2"][..]];
    for round in 0..30 {
        let selection = random_selection(&mut rng, "PromotionResult");
        let document = format!("query($cart: CartInput!) {{ previewPromotions(cart: $cart) {{ {selection} }} }}");
        let mut cart = cart(codes[rng.random_range(0..codes.len())]);
        let lines = cart["lines"].as_array_mut().unwrap();
        lines.truncate(1 + rng.random_range(0..3) as usize);
        if rng.random_range(0..2) == 0 {
            cart["customer"] = Value::Null;
        }
        let body = json!({ "query": document, "variables": { "cart": cart } });
        let answer = both_paths(&app, body).await;
        assert!(
            answer.contains("previewPromotions"),
            "seed {seed}, round {round}: {answer}"
        );
    }
}
