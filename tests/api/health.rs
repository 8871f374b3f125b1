//! Health endpoints and request-level errors.

use crate::helpers::spawn_app;

#[tokio::test]
async fn health_endpoints_report_the_dependencies() {
    let app = spawn_app().await;
    for path in ["/health", "/health/live", "/health/ready"] {
        let (status, body) = app.get_json(path).await;
        assert_eq!((status, body["status"].as_str()), (200, Some("ok")), "{path}");
    }
    let (status, body) = app.get_json("/health/detailed").await;
    assert_eq!(status, 200);
    for dependency in ["postgres", "redis", "migrations"] {
        assert_eq!(body[dependency]["ok"], true, "{dependency}: {body}");
        assert!(
            body[dependency]["latency_ms"].as_f64().is_some(),
            "{dependency} has a latency"
        );
    }
    // On a Redis Cluster (the test command runs these tests on one too) the
    // report lists its nodes: 3 masters and 3 replicas, all healthy.
    let on_cluster = crate::helpers::redis_connection(&app.redis_url).await.is_cluster();
    match body["redis_nodes"].as_array() {
        Some(nodes) => {
            assert!(on_cluster, "a single node lists no nodes: {body}");
            let masters = nodes.iter().filter(|n| n["role"] == "master").count();
            assert_eq!((nodes.len(), masters), (6, 3), "{body}");
            assert!(nodes.iter().all(|n| n["ok"] == true), "{body}");
        }
        None => assert!(!on_cluster, "a cluster lists its nodes: {body}"),
    }
}

#[tokio::test]
async fn graphiql_is_served_on_get() {
    let app = spawn_app().await;
    let page = crate::helpers::get(format!("{}/graphql", app.address))
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    assert!(page.to_lowercase().contains("graphiql"));
}

#[tokio::test]
async fn a_body_that_is_not_graphql_gets_a_coded_error() {
    let app = spawn_app().await;
    let response = crate::helpers::admin_client()
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");
    let (code, _) = app.error("{ nope }", serde_json::json!({})).await;
    assert_eq!(code, "BAD_USER_INPUT");
    let (code, _) = app.error("query {", serde_json::json!({})).await;
    assert_eq!(code, "BAD_USER_INPUT");
}

/// POSTs `{ __typename }` with an ignored field padding the body by `pad` bytes.
async fn post_padded(app: &crate::helpers::TestApp, pad: usize) -> reqwest::Response {
    let body = format!("{{\"query\": \"{{ __typename }}\", \"x\": \"{}\"}}", "a".repeat(pad));
    crate::helpers::admin_client()
        .post(format!("{}/graphql", app.address))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST")
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused() {
    let app = spawn_app().await;
    let response = post_padded(&app, 2 * 1024 * 1024).await;
    assert_eq!(response.status().as_u16(), 413);
}

#[tokio::test]
async fn max_body_bytes_is_the_only_body_limit() {
    // Above axum's own 2 MiB default: only the configured limit may refuse.
    let app = crate::helpers::spawn_app_serving(|serve| serve.max_body_bytes = 4 * 1024 * 1024).await;
    let response = post_padded(&app, 3 * 1024 * 1024).await;
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().await.expect("JSON");
    assert_eq!(body["data"]["__typename"], "Query", "{body}");
}
