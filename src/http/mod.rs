//! The HTTP surface: GraphQL (POST /graphql, GraphiQL on GET), health
//! endpoints, the coupon CSV export, and the layers every request goes through (body limit, tracing).

pub mod export;
pub mod health;

use async_graphql::futures_util::future::join_all;
use async_graphql::futures_util::{SinkExt, StreamExt};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql::{BatchRequest, BatchResponse};
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{MatchedPath, State};
use axum::http::Method;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{any, get, post};
use tokio::sync::watch;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::config::ServeConfig;
use crate::graphql::{AppSchema, observe};
use crate::metrics::Metrics;

/// The router of the whole service.
/// `closing` turns true when the service shuts down: open subscriptions
/// then end and their sockets close with 1001 (going away).
pub fn router(state: AppState, schema: AppSchema, serve: &ServeConfig, closing: watch::Receiver<bool>) -> Router {
    let graphql = if serve.graphiql {
        get(graphiql).post(execute)
    } else {
        post(execute)
    };
    let subscriptions = Router::new()
        .route("/graphql/ws", any(subscribe))
        .with_state((schema.clone(), closing));
    let (metrics, record) = (state.metrics.clone(), state.config.metrics);
    let router = Router::new()
        .route("/graphql", graphql)
        .with_state((schema, metrics.clone(), record))
        .merge(subscriptions)
        .merge(export::routes(state.clone()))
        .merge(health::routes(state))
        .layer(RequestBodyLimitLayer::new(serve.max_body_bytes));
    let router = if record {
        router.layer(axum::middleware::from_fn_with_state(metrics, count_request))
    } else {
        router
    };
    router.layer(
        TraceLayer::new_for_http()
            .make_span_with(crate::telemetry::http_span)
            .on_request(())
            .on_response(|response: &Response, _: std::time::Duration, span: &tracing::Span| {
                span.record("http.response.status_code", response.status().as_u16());
            }),
    )
}

/// Counts one request in `http_requests_total` and its latency, by matched route.
async fn count_request(
    State(metrics): State<Arc<Metrics>>,
    route: Option<MatchedPath>,
    request: axum::extract::Request,
    next: Next,
) -> Response {
    let route = route.as_ref().map_or("unmatched", |r| r.as_str());
    let method = match *request.method() {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    };
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.http_request(route, method, response.status().as_u16(), started.elapsed());
    response
}

/// A subscription socket (graphql-transport-ws or graphql-ws) that ends
/// cleanly when the service shuts down.
async fn subscribe(
    State((schema, closing)): State<(AppSchema, watch::Receiver<bool>)>,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let (mut sink, stream) = socket.split();
            let mut closing = closing;
            let shutting_down = async move {
                let _ = closing.wait_for(|closing| *closing).await;
            };
            GraphQLWebSocket::new_with_pair(&mut sink, stream.take_until(shutting_down), schema, protocol)
                .serve()
                .await;
            let goodbye = CloseFrame {
                code: 1001,
                reason: "the service is shutting down".into(),
            };
            let _ = sink.send(Message::Close(Some(goodbye))).await;
        })
}

async fn graphiql() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

/// Executes a GraphQL request (or batch); every error leaves with a code.
async fn execute(
    State((schema, metrics, record)): State<(AppSchema, Arc<Metrics>, bool)>,
    request: Result<GraphQLBatchRequest, GraphQLRejection>,
) -> Response {
    match request {
        Ok(request) => {
            let mut response = match request.into_inner() {
                BatchRequest::Single(r) => BatchResponse::Single(observe::execute(&schema, r, &metrics, record).await),
                BatchRequest::Batch(rs) => BatchResponse::Batch(
                    join_all(rs.into_iter().map(|r| observe::execute(&schema, r, &metrics, record))).await,
                ),
            };
            match &mut response {
                async_graphql::BatchResponse::Single(r) => crate::graphql::ensure_codes(&mut r.errors),
                async_graphql::BatchResponse::Batch(rs) => {
                    rs.iter_mut().for_each(|r| crate::graphql::ensure_codes(&mut r.errors))
                }
            }
            GraphQLResponse::from(response).into_response()
        }
        Err(rejection) => {
            let body = serde_json::json!({ "errors": [{
                "message": format!("the request is not a GraphQL request: {}", rejection.0),
                "extensions": { "code": "BAD_USER_INPUT" },
            }]});
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}
