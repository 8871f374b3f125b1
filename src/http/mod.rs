//! The HTTP surface: GraphQL (POST /graphql, GraphiQL on GET, subscriptions
//! on /graphql/ws), health endpoints, the coupon CSV export, and the layers
//! every request goes through (body limit, metrics, tracing). Every GraphQL
//! request is authenticated ([`crate::auth`]) and rate limited per client
//! before it is parsed; batches, nesting and subscription sockets are bounded.

pub mod export;
pub mod health;
pub mod rate_limit;

use async_graphql::futures_util::future::join_all;
use async_graphql::futures_util::{SinkExt, StreamExt};
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::http::GraphiQLSource;
use async_graphql::{BatchResponse, Request, Variables};
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
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::sync::{Semaphore, watch};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{Caller, Verifier};
use crate::config::ServeConfig;
use crate::error::{AppError, AppResult};
use crate::graphql::documents::Documents;
use crate::graphql::query::PREVIEW_ROLES;
use crate::graphql::subscription::SubscriptionSlots;
use crate::graphql::{AppSchema, observe};
use crate::metrics::Metrics;
use crate::state::AppState;
use rate_limit::RateLimiter;

/// Most requests in one batch.
pub const MAX_BATCH: usize = 10;
/// Most nesting of braces, brackets and parentheses in a document (checked
/// on the text, before parsing).
pub const MAX_NESTING: usize = 48;

/// What the GraphQL endpoints share (one `Arc` per request, not a clone of each part).
struct Api {
    state: AppState,
    schema: AppSchema,
    documents: Documents,
    metrics: Arc<Metrics>,
    record: bool,
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
        state: state.clone(),
        schema,
        documents: Documents::default(),
        metrics: metrics.clone(),
        record,
        verifier: verifier.clone(),
        limiter: RateLimiter::new(
            state.redis.clone(),
            &state.config.redis_key_prefix,
            serve.rate_limit_per_second,
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

/// The deepest nesting of `{`, `[` and `(` in a document's text (strings
/// included: an over-estimate that is only ever too strict for documents
/// that hide dozens of brackets in string literals).
fn nesting(query: &str) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in query.bytes() {
        match b {
            b'{' | b'[' | b'(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
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
                observe::SocketExecutor(api.schema.clone()),
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
    let (requests, batched) = match read_request(&body) {
        Ok(Body::Single(incoming)) => {
            if let Some(refused) = too_deep(&incoming.query) {
                return refused;
            }
            if let Some(answered) = serve_preview(&api, &caller, &incoming).await {
                return answered;
            }
            match incoming.into_request() {
                Ok(request) => (vec![request], false),
                Err(why) => return not_graphql(&why),
            }
        }
        Ok(Body::Batch(requests)) if requests.len() > MAX_BATCH => {
            let message = format!("a batch holds at most {MAX_BATCH} requests");
            return AppError::BadInput { field: None, message }.into_response();
        }
        Ok(Body::Batch(requests)) => {
            if let Some(refused) = requests.iter().find_map(|r| too_deep(&r.query)) {
                return refused;
            }
            (requests, true)
        }
        Err(why) => return not_graphql(&why),
    };
    let run = |r: Request| {
        let r = r.data(caller.clone());
        observe::execute(&api.schema, &api.documents, r, &api.metrics, api.record)
    };
    let mut responses = join_all(requests.into_iter().map(run)).await;
    let response = match responses.pop() {
        Some(only) if !batched => BatchResponse::Single(only),
        last => BatchResponse::Batch(responses.into_iter().chain(last).collect()),
    };
    GraphQLResponse::from(response).into_response()
}

/// Answers a preview through its document's compiled plan
/// ([`crate::graphql::fast_preview`]); None when it is not one.
async fn serve_preview(api: &Api, caller: &Caller, incoming: &Incoming<'_>) -> Option<Response> {
    if !PREVIEW_ROLES.contains(&caller.role) {
        return None;
    }
    let parsed = api.documents.get(&incoming.query)?;
    let plan = parsed.preview.as_ref()?;
    let operation_name = incoming.operation_name.as_deref();
    let answer = observe::execute_preview(
        plan,
        operation_name,
        incoming.variables,
        &api.state,
        &api.metrics,
        api.record,
    );
    Some(match answer.await? {
        Ok(body) => {
            let content_type = HeaderValue::from_static(GRAPHQL_RESPONSE_JSON);
            ([(header::CONTENT_TYPE, content_type)], body).into_response()
        }
        Err(failed) => GraphQLResponse::from(failed).into_response(),
    })
}

/// The content type of GraphQL responses (async-graphql-axum's too).
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json";

/// 400 for a document nested deeper than [`MAX_NESTING`].
fn too_deep(query: &str) -> Option<Response> {
    let deepest = nesting(query);
    (deepest > MAX_NESTING).then(|| {
        let message = format!("the document nests {deepest} levels; at most {MAX_NESTING} are accepted");
        AppError::bad_input("query", message).into_response()
    })
}

/// 400 for a body that is not a GraphQL request.
fn not_graphql(why: &serde_json::Error) -> Response {
    let message = format!("the request is not a GraphQL request: {why}");
    AppError::BadInput { field: None, message }.into_response()
}

/// A request body: one GraphQL request, or a batch of them (a JSON array).
enum Body<'a> {
    Single(Incoming<'a>),
    Batch(Vec<Request>),
}

/// One GraphQL request as the body holds it, its variables still JSON
/// text: a compiled preview reads its cart straight from them; any other
/// request gets them as async-graphql's values ([`Incoming::into_request`]).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Incoming<'a> {
    #[serde(default)]
    query: String,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default, borrow)]
    variables: Option<&'a RawValue>,
    #[serde(default)]
    extensions: async_graphql::Extensions,
}

impl Incoming<'_> {
    /// The async-graphql request; fails when the variables are not a JSON object (or null).
    fn into_request(self) -> Result<Request, serde_json::Error> {
        let variables: Variables = match self.variables {
            Some(variables) => serde_json::from_str(variables.get())?,
            None => Variables::default(),
        };
        let mut request = Request::new(self.query).variables(variables);
        request.operation_name = self.operation_name;
        request.extensions = self.extensions;
        Ok(request)
    }
}

/// Reads the body straight into the one shape its first character
/// announces: async-graphql's own reader buffers the whole document once
/// more to try both shapes.
fn read_request(body: &[u8]) -> Result<Body<'_>, serde_json::Error> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(body).map(Body::Batch),
        _ => serde_json::from_slice(body).map(Body::Single),
    }
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
