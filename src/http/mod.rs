//! The HTTP surface: GraphQL (POST /graphql, GraphiQL on GET, subscriptions
//! on /graphql/ws), health endpoints, the coupon CSV export, and the layers
//! every request goes through (body limit, metrics, tracing). Every GraphQL
//! request is authenticated ([`crate::auth`]) and rate limited per client
//! before it is read, then handed to the one GraphQL entry point
//! ([`crate::graphql::endpoint`]), which both transports share; the
//! number of subscription sockets is bounded here.

pub mod export;
pub mod health;
pub mod rate_limit;

use async_graphql::futures_util::{SinkExt, StreamExt};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::extract::ws::{CloseFrame, Message, WebSocketUpgrade};
use axum::extract::{MatchedPath, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};
use tokio::sync::{Semaphore, watch};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Caller, Verifier};
use crate::config::ServeConfig;
use crate::error::{AppError, AppResult};
use crate::graphql::AppSchema;
use crate::graphql::endpoint::{Answer, Endpoint};
use crate::graphql::subscription::SubscriptionSlots;
use crate::metrics::Metrics;
use crate::state::AppState;
use rate_limit::RateLimiter;

/// What the GraphQL endpoints share (one `Arc` per request, not a clone of each part).
struct Api {
    endpoint: Endpoint,
    verifier: Arc<Verifier>,
    limiter: RateLimiter,
    sockets: Arc<Semaphore>,
    subscriptions_per_socket: usize,
    closing: watch::Receiver<bool>,
}

/// The router of the whole service.
/// `closing` turns true when the service shuts down: open subscriptions
/// then end and their sockets close with 1001 (going away).
pub fn router(
    state: AppState,
    schema: AppSchema,
    serve: &ServeConfig,
    verifier: Verifier,
    closing: watch::Receiver<bool>,
) -> Router {
    let graphql = if serve.graphiql {
        get(graphiql).post(execute)
    } else {
        post(execute)
    };
    let (metrics, record) = (state.metrics.clone(), state.config.metrics);
    let verifier = Arc::new(verifier);
    let api = Api {
        endpoint: Endpoint::new(schema, state.clone()),
        verifier: verifier.clone(),
        limiter: RateLimiter::new(
            state.redis.clone(),
            &state.config.redis_key_prefix,
            serve.rate_limit_per_second,
            state.redemptions.counters.breaker().clone(),
        ),
        sockets: Arc::new(Semaphore::new(serve.max_ws_connections)),
        subscriptions_per_socket: serve.max_subscriptions_per_socket,
        closing,
    };
    let router = Router::new()
        .route("/graphql", graphql)
        .route("/graphql/ws", any(subscribe))
        .with_state(Arc::new(api))
        .merge(export::routes(state.clone(), verifier))
        .merge(health::routes(state))
        .layer(RequestBodyLimitLayer::new(serve.max_body_bytes))
        // MAX_BODY_BYTES is the one limit: not also axum's 2 MiB default for buffered bodies.
        .layer(DefaultBodyLimit::disable());
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

/// The caller named by a request's `Authorization` header.
pub(crate) fn caller_of(verifier: &Verifier, headers: &HeaderMap) -> AppResult<Caller> {
    verifier.verify(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

/// A subscription socket (graphql-transport-ws or graphql-ws): the token
/// comes in connection_init's payload; at most MAX_WS_CONNECTIONS sockets
/// at once; it ends cleanly when the service shuts down.
async fn subscribe(State(api): State<Arc<Api>>, protocol: GraphQLProtocol, upgrade: WebSocketUpgrade) -> Response {
    let Ok(permit) = api.sockets.clone().try_acquire_owned() else {
        return AppError::RateLimited {
            message: "too many open subscription sockets; retry later".into(),
            retry_after: None,
        }
        .into_response();
    };
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let _permit = permit;
            let (mut sink, stream) = socket.split();
            let mut closing = api.closing.clone();
            let shutting_down = async move {
                let _ = closing.wait_for(|closing| *closing).await;
            };
            let verifier = api.verifier.clone();
            let slots = api.subscriptions_per_socket;
            let init = move |payload: serde_json::Value| async move {
                let header = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .and_then(|v| v.as_str());
                let caller = verifier.verify(header).map_err(async_graphql::Error::from)?;
                let mut data = async_graphql::Data::default();
                data.insert(caller);
                data.insert(SubscriptionSlots::new(slots));
                Ok(data)
            };
            GraphQLWebSocket::new_with_pair(
                &mut sink,
                stream.take_until(shutting_down),
                api.endpoint.clone(),
                protocol,
            )
            .on_connection_init(init)
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

/// Executes a GraphQL request (or batch) for an authenticated, admitted
/// caller; every error leaves with a code.
async fn execute(State(api): State<Arc<Api>>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> Response {
    let caller = match caller_of(&api.verifier, &headers) {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    if let Err(retry_after) = api.limiter.admit(&caller.subject).await {
        let seconds = retry_after.as_secs_f64().max(0.001);
        return AppError::RateLimited {
            message: format!("too many requests; retry in {seconds:.3} s"),
            retry_after: Some(retry_after),
        }
        .into_response();
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let message = format!("the request body could not be read: {}", rejection.body_text());
            return if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::TooLarge(message)
            } else {
                AppError::BadInput { field: None, message }
            }
            .into_response();
        }
    };
    match api.endpoint.execute_body(&caller, &body).await {
        Ok(Answer::Compiled(body)) => {
            let content_type = HeaderValue::from_static(GRAPHQL_RESPONSE_JSON);
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Ok(Answer::Executed(response)) => GraphQLResponse::from(response).into_response(),
        Err(refused) => refused.into_response(),
    }
}

/// The content type of GraphQL responses (async-graphql-axum's too).
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

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
