//! Metrics and traces: after a preview, an apply and a failing mutation,
//! `/metrics` holds every family with the right labels and counts; an OTLP
//! receiver of the test's own gets one trace for an applyPromotions that
//! continues the caller's traceparent, with its GraphQL, SQL and Redis spans;
//! an INTERNAL error carries its trace id, in the response and the log line.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{Value, json};

use crate::helpers::{Binary, TestApp, graphql_at, promotion_input, spawn_app_with, until};

fn cart(codes: &[&str]) -> Value {
    json!({ "currency": "EUR", "customer": { "id": "c1" }, "couponCodes": codes,
            "lines": [{ "id": "l", "productId": "p", "quantity": 1, "unitPrice": 1000 }] })
}

const PREVIEW: &str = "query Preview($c: CartInput!) { previewPromotions(cart: $c) { discountTotal } }";

const APPLY: &str = "mutation Apply($o: String!, $c: CartInput!) {
    applyPromotions(input: {orderId: $o, cart: $c}) { discountTotal rejected { reason } } }";

/// The value of the sample `name{labels...}` (labels in any order), if present.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
        let matches = metric == name && labels.iter().all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
        matches.then(|| value.parse().ok()).flatten()
    })
}

async fn scrape(app: &TestApp) -> String {
    crate::helpers::get(format!("{}/metrics", app.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn metrics_count_requests_operations_redemptions_scripts_outbox_and_pools() {
    let app = spawn_app_with(None, |c| c.run_workers = true).await;
    app.create_promotion(promotion_input(json!({ "totalUsageLimit": 100 })))
        .await;
    app.wait_until_priced(&cart(&[]), 100).await;
    let text = scrape(&app).await;
    let previews_before = sample(&text, "graphql_operations_total", &[("operation", "Preview")]).unwrap_or(0.0);
    let compiled_before =
        sample(&text, "graphql_compiled_operations_total", &[("operation", "Preview")]).unwrap_or(0.0);
    app.data(PREVIEW, json!({ "c": cart(&[]) })).await;
    let applied = app.data(APPLY, json!({ "o": "order-1", "c": cart(&["NOPE"]) })).await;
    assert_eq!(applied["applyPromotions"]["rejected"][0]["reason"], "COUPON_NOT_FOUND");
    let (code, _) = app
        .error(
            "mutation Broken { createCampaign(input: {name: \"\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(code, "BAD_USER_INPUT");

    until("the relay ran", Duration::from_secs(5), async || {
        sample(&scrape(&app).await, "worker_runs_total", &[("worker", "outbox-relay")]).is_some_and(|n| n > 0.0)
    })
    .await;
    let text = scrape(&app).await;
    let expect = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
    };
    let post = [("route", "/graphql"), ("method", "POST"), ("status", "200")];
    assert!(
        expect("http_requests_total", &post) >= 4.0,
        "4 POSTs at least (promotion, preview, apply, broken)"
    );
    assert!(expect("http_request_duration_seconds_count", &post) >= 4.0);
    assert!(
        expect(
            "http_request_duration_seconds_bucket",
            &[("route", "/graphql"), ("le", "+Inf")]
        ) >= 4.0
    );
    assert_eq!(
        expect(
            "graphql_operations_total",
            &[("operation", "Preview"), ("type", "query")]
        ),
        previews_before + 1.0
    );
    assert_eq!(
        expect("graphql_compiled_operations_total", &[("operation", "Preview")]),
        compiled_before + 1.0,
        "the preview was served by its compiled plan"
    );
    assert_eq!(
        expect(
            "graphql_operations_total",
            &[("operation", "Apply"), ("type", "mutation")]
        ),
        1.0
    );
    assert_eq!(
        sample(&text, "graphql_compiled_operations_total", &[("operation", "Apply")]),
        None
    );
    assert_eq!(
        expect(
            "graphql_operations_total",
            &[("operation", "Broken"), ("type", "mutation")]
        ),
        1.0
    );
    assert_eq!(
        expect("graphql_operation_duration_seconds_count", &[("operation", "Apply")]),
        1.0
    );
    assert_eq!(
        expect(
            "graphql_errors_total",
            &[("operation", "Broken"), ("code", "BAD_USER_INPUT")]
        ),
        1.0
    );
    assert!(
        sample(&text, "graphql_errors_total", &[("operation", "Apply")]).is_none(),
        "the apply had no error"
    );
    assert_eq!(
        expect("redemptions_total", &[("operation", "apply"), ("outcome", "redeemed")]),
        1.0
    );
    assert_eq!(
        expect("promotion_rejections_total", &[("reason", "COUPON_NOT_FOUND")]),
        1.0
    );
    assert!(
        expect(
            "redis_script_duration_seconds_count",
            &[("script", "reserve"), ("result", "ok")]
        ) >= 1.0
    );
    assert!(expect("worker_runs_total", &[("worker", "outbox-relay")]) >= 1.0);
    assert_eq!(expect("worker_running", &[("worker", "housekeeping")]), 1.0);
    // The apply above was priced by a snapshot holding its promotion.
    assert!(expect("pricing_snapshot_promotions", &[]) >= 1.0);
    assert!(expect("pricing_snapshot_version", &[]) >= 1.0);
    assert!(
        expect("pricing_snapshot_full_reloads_total", &[]) >= 1.0,
        "the start-up load"
    );
    expect("outbox_events", &[("status", "PENDING")]);
    assert_eq!(expect("outbox_events", &[("status", "DEAD")]), 0.0);
    expect("outbox_oldest_pending_age_seconds", &[]);
    assert_eq!(expect("db_pool_max_connections", &[]), 5.0);
    assert!(expect("db_pool_connections", &[("state", "idle")]) >= 0.0);
    expect("db_pool_connections", &[("state", "in_use")]);
    assert_eq!(expect("redis_up", &[]), 1.0);
    assert!(expect("redis_ping_seconds", &[]) > 0.0);
    assert_eq!(
        expect("promotions_build_info", &[("version", env!("CARGO_PKG_VERSION"))]),
        1.0
    );

    // Client-chosen operation names cannot grow the label set without bound.
    for i in 0..(promotions::metrics::MAX_OPERATION_NAMES + 20) {
        app.data(&format!("query Q{i} {{ __typename }}"), json!({})).await;
    }
    let text = scrape(&app).await;
    let names = text
        .lines()
        .filter(|l| l.starts_with("graphql_operations_total{"))
        .count();
    assert!(
        names <= promotions::metrics::MAX_OPERATION_NAMES + 2,
        "{names} series (+ anonymous, other)"
    );
    assert!(sample(&text, "graphql_operations_total", &[("operation", "other")]).is_some_and(|n| n >= 20.0));
}

/// An OTLP/HTTP receiver: every span it was sent.
#[derive(Clone, Default)]
struct Receiver(Arc<Mutex<Vec<Span>>>);

impl Receiver {
    async fn start(&self) -> u16 {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let router = axum::Router::new()
            .route(
                "/v1/traces",
                axum::routing::post(|State(r): State<Receiver>, body: Bytes| async move {
                    let request = ExportTraceServiceRequest::decode(body).expect("an OTLP protobuf request");
                    let spans = request
                        .resource_spans
                        .into_iter()
                        .flat_map(|r| r.scope_spans)
                        .flat_map(|s| s.spans);
                    r.0.lock().unwrap().extend(spans);
                    axum::http::StatusCode::OK
                }),
            )
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        port
    }

    fn of_trace(&self, trace_id: &[u8]) -> Vec<Span> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.trace_id == trace_id)
            .cloned()
            .collect()
    }
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a str> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| match a.value.as_ref()?.value.as_ref()? {
            AnyValue::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn one_apply_is_one_trace_with_graphql_sql_and_redis_spans_under_the_callers_traceparent() {
    let receiver = Receiver::default();
    let otlp_port = receiver.start().await;
    let database_url = crate::helpers::fresh_database_url().await;
    let (port, prefix) = (crate::helpers::free_port(), crate::helpers::fresh_prefix());
    let endpoint = format!("http://127.0.0.1:{otlp_port}");
    let log = std::env::temp_dir().join(format!("promotions-{}.log", uuid::Uuid::now_v7().simple()));
    let _binary = Binary::start_logging(
        &database_url,
        &prefix,
        port,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
            ("LOG_FORMAT", "json"),
        ],
        &log,
    )
    .await;
    let graphql = async |query: &str, variables: Value, traceparent: Option<&str>| {
        graphql_at(port, query, variables, traceparent).await
    };
    let created = graphql(
        "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
        json!({ "i": promotion_input(json!({ "totalUsageLimit": 10 })) }),
        None,
    )
    .await;
    assert!(created["data"]["createPromotion"]["id"].is_string(), "{created}");
    until("the promotion is priced", Duration::from_secs(3), async || {
        graphql(PREVIEW, json!({ "c": cart(&[]) }), None).await["data"]["previewPromotions"]["discountTotal"] == 100
    })
    .await;

    let trace_id: [u8; 16] = rand::random();
    let caller_span: [u8; 8] = rand::random();
    let traceparent = format!("00-{}-{}-01", hex(&trace_id), hex(&caller_span));
    let applied = graphql(APPLY, json!({ "o": "traced-1", "c": cart(&[]) }), Some(&traceparent)).await;
    assert_eq!(applied["data"]["applyPromotions"]["discountTotal"], 100, "{applied}");

    let has = |spans: &[Span], key: &str, value: &str| spans.iter().any(|s| attribute(s, key) == Some(value));
    until(
        "the GraphQL, SQL and Redis spans arrive",
        Duration::from_secs(10),
        async || {
            let spans = receiver.of_trace(&trace_id);
            // The request's span ends after its answer is sent: it may come in a later export.
            spans.iter().any(|s| s.name == "mutation applyPromotions")
                && spans.iter().any(|s| s.name == "POST /graphql")
                && has(&spans, "db.system", "postgresql")
                && has(&spans, "db.system", "redis")
        },
    )
    .await;
    let spans = receiver.of_trace(&trace_id);
    let http = spans.iter().find(|s| s.name == "POST /graphql").unwrap_or_else(|| {
        panic!(
            "no HTTP span in {:?}",
            spans.iter().map(|s| &s.name).collect::<Vec<_>>()
        )
    });
    assert_eq!(
        http.parent_span_id, caller_span,
        "the HTTP span continues the caller's span"
    );
    let operation = spans.iter().find(|s| s.name == "mutation applyPromotions").unwrap();
    assert_eq!(
        operation.parent_span_id, http.span_id,
        "the operation is under the request"
    );
    assert_eq!(attribute(operation, "graphql.operation.name"), Some("Apply"));
    let redis = spans
        .iter()
        .find(|s| attribute(s, "db.system") == Some("redis"))
        .unwrap();
    assert_eq!(redis.name, "EVALSHA reserve");
    assert!(
        spans.len() >= 5,
        "request, operation, use case, SQL and Redis spans: {}",
        spans.len()
    );

    // A compiled preview (src/graphql/fast_preview.rs) has its operation span too, under the request's.
    let trace_id: [u8; 16] = rand::random();
    let traceparent = format!("00-{}-{}-01", hex(&trace_id), hex(&caller_span));
    graphql(PREVIEW, json!({ "c": cart(&[]) }), Some(&traceparent)).await;
    until("the preview's spans arrive", Duration::from_secs(10), async || {
        let spans = receiver.of_trace(&trace_id);
        spans.iter().any(|s| s.name == "query previewPromotions") && spans.iter().any(|s| s.name == "POST /graphql")
    })
    .await;
    let spans = receiver.of_trace(&trace_id);
    let http = spans.iter().find(|s| s.name == "POST /graphql").unwrap();
    let operation = spans.iter().find(|s| s.name == "query previewPromotions").unwrap();
    assert_eq!(operation.parent_span_id, http.span_id);
    assert_eq!(attribute(operation, "graphql.operation.name"), Some("Preview"));
    assert_eq!(attribute(operation, "graphql.operation.type"), Some("query"));

    // An INTERNAL error (a table gone) names the trace, in its extensions and its log line.
    let db = sea_orm::Database::connect(&database_url).await.unwrap();
    sea_orm::ConnectionTrait::execute_unprepared(&db, "ALTER TABLE campaigns RENAME TO campaigns_gone")
        .await
        .unwrap();
    let trace_id: [u8; 16] = rand::random();
    let traceparent = format!("00-{}-{}-01", hex(&trace_id), hex(&caller_span));
    let failed = graphql("{ campaigns(first: 1) { totalCount } }", json!({}), Some(&traceparent)).await;
    let extensions = &failed["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "INTERNAL", "{failed}");
    assert_eq!(extensions["traceId"], hex(&trace_id), "{failed}");
    let lines = std::fs::read_to_string(&log).unwrap();
    let logged = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "internal error")
        .unwrap_or_else(|| panic!("no internal error logged in\n{lines}"));
    assert!(
        logged.to_string().contains(&hex(&trace_id)),
        "the log line names the trace: {logged}"
    );
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn a_subscription_and_a_query_over_a_socket_are_counted_like_any_operation() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::Message as WsMessage;

    let app = crate::helpers::spawn_app().await;
    let mut socket = crate::helpers::connect(&app, "graphql-transport-ws").await;
    for (id, query) in [
        ("1", "subscription Watch { usageUpdated { orderId } }"),
        ("2", "query Names { promotions { totalCount } }"),
    ] {
        let subscribe = serde_json::json!({ "id": id, "type": "subscribe", "payload": { "query": query } });
        socket.send(WsMessage::text(subscribe.to_string())).await.unwrap();
    }
    let answer = crate::helpers::next_json(&mut socket, std::time::Duration::from_secs(2))
        .await
        .expect("the query's answer");
    assert_eq!(answer["id"], "2", "{answer:#}");
    let text = scrape(&app).await;
    assert_eq!(
        sample(
            &text,
            "graphql_operations_total",
            &[("operation", "Watch"), ("type", "subscription")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "graphql_operations_total",
            &[("operation", "Names"), ("type", "query")]
        ),
        Some(1.0)
    );
}
