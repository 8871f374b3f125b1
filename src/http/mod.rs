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
use std::time::{Duration, Instant};

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
    limiter: Arc<RateLimiter>,
    sockets: Arc<Semaphore>,
    subscriptions_per_socket: usize,
    /// How long a socket may wait before its connection_init.
    init_timeout: Duration,
    closing: watch::Receiver<bool>,
}

/// The router of the public port: GraphQL, the export and the probes, plus
/// the operations endpoints unless they have a port of their own
/// (`OPS_LISTEN_ADDR`). `closing` turns true when the service shuts down:
/// open subscriptions then end and their sockets close with 1001 (going away).
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
    let limiter = Arc::new(RateLimiter::new(
        state.redis.clone(),
        &state.config.redis_key_prefix,
        serve.rate_limit_per_second,
        serve
            .rate_limit_fail_closed
            .iter()
            .filter_map(|name| crate::auth::Role::named(name))
            .collect(),
        state.redemptions.counters.breaker().clone(),
    ));
    let api = Api {
        endpoint: Endpoint::new(schema, state.clone()),
        verifier: verifier.clone(),
        limiter: limiter.clone(),
        sockets: Arc::new(Semaphore::new(serve.max_ws_connections)),
        subscriptions_per_socket: serve.max_subscriptions_per_socket,
        init_timeout: serve.ws_init_timeout,
        closing,
    };
    let mut router = Router::new()
        .route("/graphql", graphql)
        .route("/graphql/ws", any(subscribe))
        .with_state(Arc::new(api))
        .merge(export::routes(state.clone(), verifier, limiter))
        .merge(health::probes(state.clone()));
    if serve.ops_listen.is_none() {
        router = router.merge(health::operations(state));
    }
    let router = router
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
pub(crate) async fn caller_of(verifier: &Verifier, headers: &HeaderMap) -> AppResult<Caller> {
    verifier
        .verify(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .await
}

/// A subscription socket (graphql-transport-ws or graphql-ws): the token
/// comes in connection_init's payload; at most MAX_WS_CONNECTIONS sockets
/// at once. The socket is closed when no connection_init came within
/// WS_INIT_TIMEOUT (4408), when its token expires (4401), and when the
/// service shuts down (1001).
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
            let (accepted, caller) = tokio::sync::oneshot::channel::<u64>();
            let ended = socket_end(api.closing.clone(), api.init_timeout, caller);
            let (mut goodbye, ended) = remember(ended);
            let verifier = api.verifier.clone();
            let slots = api.subscriptions_per_socket;
            let init = move |payload: serde_json::Value| async move {
                let header = payload
                    .get("Authorization")
                    .or_else(|| payload.get("authorization"))
                    .and_then(|v| v.as_str());
                let caller = verifier.verify(header).await.map_err(async_graphql::Error::from)?;
                let _ = accepted.send(caller.expires_at);
                let mut data = async_graphql::Data::default();
                data.insert(caller);
                data.insert(SubscriptionSlots::new(slots));
                Ok(data)
            };
            GraphQLWebSocket::new_with_pair(&mut sink, stream.take_until(ended), api.endpoint.clone(), protocol)
                .on_connection_init(init)
                .serve()
                .await;
            if let Ok((code, reason)) = goodbye.try_recv() {
                let _ = sink
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
            }
        })
}

/// Why the service ends a socket: the close code and reason.
type Goodbye = (u16, &'static str);

/// Completes when the service must end a socket: no connection_init
/// accepted within `init_timeout`, its token's `exp` reached, or shutdown.
async fn socket_end(
    mut closing: watch::Receiver<bool>,
    init_timeout: Duration,
    accepted: tokio::sync::oneshot::Receiver<u64>,
) -> Goodbye {
    let expiry = async move {
        match tokio::time::timeout(init_timeout, accepted).await {
            Err(_) => (4408, "connection_init was not received in time"),
            // The init was refused: the socket closes on its own.
            Ok(Err(_)) => std::future::pending().await,
            Ok(Ok(expires_at)) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                tokio::time::sleep(Duration::from_secs(expires_at).saturating_sub(now)).await;
                (4401, "the token has expired")
            }
        }
    };
    tokio::select! {
        _ = closing.wait_for(|closing| *closing) => (1001, "the service is shutting down"),
        goodbye = expiry => goodbye,
    }
}

/// `ended` as a future of `()` (for `take_until`) that sends its goodbye
/// to the returned receiver.
fn remember(
    ended: impl Future<Output = Goodbye>,
) -> (tokio::sync::oneshot::Receiver<Goodbye>, impl Future<Output = ()>) {
    let (say, goodbye) = tokio::sync::oneshot::channel();
    let ended = async move {
        let _ = say.send(ended.await);
    };
    (goodbye, ended)
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
    let caller = match caller_of(&api.verifier, &headers).await {
        Ok(caller) => caller,
        Err(refused) => return refused.into_response(),
    };
    // One request now; a batch's others once it is read.
    if let Err(refused) = api.limiter.admit(&caller, 1).await {
        return AppError::from(refused).into_response();
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
    let admit_batch = async |requests: usize| {
        api.limiter
            .admit(&caller, requests.saturating_sub(1))
            .await
            .map_err(AppError::from)
    };
    match api.endpoint.execute_body(&caller, &body, admit_batch).await {
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
