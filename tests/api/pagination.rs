//! Relay pagination edges: empty pages, exact fits, walking every page,
//! bad cursors and bounds.

use serde_json::{Value, json};

use crate::helpers::{TestApp, promotion_input, spawn_app};

const PAGE: &str = "query($first: Int, $after: String) { promotions(first: $first, after: $after) { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { name } } } }";

async fn page(app: &TestApp, first: Option<i64>, after: Option<&str>) -> Value {
    app.data(PAGE, json!({ "first": first, "after": after })).await["promotions"].clone()
}

fn names(page: &Value) -> Vec<String> {
    page["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["name"].as_str().expect("name").to_owned())
        .collect()
}

#[tokio::test]
async fn an_empty_list_has_no_edges_and_no_next_page() {
    let app = spawn_app().await;
    let p = page(&app, None, None).await;
    assert_eq!(p["totalCount"], 0);
    assert_eq!(p["edges"], json!([]));
    assert_eq!(
        p["pageInfo"],
        json!({ "hasNextPage": false, "hasPreviousPage": false, "startCursor": null, "endCursor": null })
    );
}

#[tokio::test]
async fn walking_the_pages_returns_every_item_once_newest_first() {
    let app = spawn_app().await;
    for i in 0..7 {
        app.create_promotion(promotion_input(json!({ "name": format!("p{i}") })))
            .await;
    }
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let p = page(&app, Some(3), after.as_deref()).await;
        assert_eq!(p["totalCount"], 7, "totalCount counts all pages");
        assert_eq!(p["pageInfo"]["hasPreviousPage"], after.is_some());
        let edges = p["edges"].as_array().expect("edges");
        assert_eq!(p["pageInfo"]["startCursor"], edges[0]["cursor"]);
        assert_eq!(p["pageInfo"]["endCursor"], edges[edges.len() - 1]["cursor"]);
        seen.extend(names(&p));
        pages += 1;
        if p["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = p["pageInfo"]["endCursor"].as_str().map(str::to_owned);
        assert!(pages < 5, "paging does not end");
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, vec!["p6", "p5", "p4", "p3", "p2", "p1", "p0"]);
}

#[tokio::test]
async fn a_page_that_fits_exactly_has_no_next_page() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_promotion(promotion_input(json!({ "name": format!("p{i}") })))
            .await;
    }
    let p = page(&app, Some(3), None).await;
    assert_eq!(names(&p).len(), 3);
    assert_eq!(p["pageInfo"]["hasNextPage"], false);
    let p = page(&app, Some(2), None).await;
    assert_eq!(p["pageInfo"]["hasNextPage"], true);
    let last = p["edges"][1]["cursor"].as_str().expect("cursor").to_owned();
    let rest = page(&app, Some(2), Some(&last)).await;
    assert_eq!(names(&rest), vec!["p0"]);
    assert_eq!(rest["pageInfo"]["hasNextPage"], false);
    let zero = page(&app, Some(0), None).await;
    assert_eq!(zero["edges"], json!([]));
    assert_eq!(zero["totalCount"], 3);
    assert_eq!(zero["pageInfo"]["hasNextPage"], true);
}

#[tokio::test]
async fn bad_page_arguments_are_bad_user_input() {
    let app = spawn_app().await;
    for (vars, field) in [
        (json!({ "first": -1 }), "first"),
        (json!({ "first": 501 }), "first"),
        (json!({ "after": "not a cursor" }), "after"),
        (json!({ "after": "AAAA" }), "after"),
    ] {
        let (code, got) = app.error(PAGE, vars.clone()).await;
        assert_eq!(
            (code.as_str(), got.as_deref()),
            ("BAD_USER_INPUT", Some(field)),
            "{vars}"
        );
    }
    let (code, _) = app.error(PAGE, json!({ "first": "ten" })).await;
    assert_eq!(code, "BAD_USER_INPUT");
    let p = page(&app, Some(500), None).await;
    assert_eq!(p["edges"], json!([]));
    let (code, field) = app.error("{ campaigns(first: 1000) { totalCount } }", json!({})).await;
    assert_eq!((code.as_str(), field.as_deref()), ("BAD_USER_INPUT", Some("first")));
}

#[tokio::test]
async fn item_filtered_pages_walk_every_match_once() {
    let app = spawn_app().await;
    for i in 0..5 {
        app.create_promotion(promotion_input(
            json!({ "name": format!("t{i}"), "target": { "productIds": ["sku"] } }),
        ))
        .await;
        app.create_promotion(promotion_input(
            json!({ "name": format!("o{i}"), "target": { "productIds": ["other"] } }),
        ))
        .await;
    }
    app.create_promotion(promotion_input(json!({ "name": "all" }))).await;
    let q = "query($after: String) { promotions(first: 4, after: $after, filter: {productId: \"sku\"}) { totalCount pageInfo { hasNextPage endCursor } edges { node { name } } } }";
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..3 {
        let p = app.data(q, json!({ "after": after })).await["promotions"].clone();
        assert_eq!(p["totalCount"], 6);
        seen.extend(names(&p));
        if p["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = p["pageInfo"]["endCursor"].as_str().map(str::to_owned);
    }
    assert_eq!(seen, vec!["all", "t4", "t3", "t2", "t1", "t0"]);
}
