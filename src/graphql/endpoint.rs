//! The one entry point that executes GraphQL, for both transports: a POST
//! body (one request or a batch) for HTTP ([`Endpoint::execute_body`]), and
//! every operation a subscription socket sends ([`Endpoint`] is the
//! socket's executor). Both get the same limits (nesting, batch size,
//! aliases, strings PostgreSQL cannot store), the same error codes, the
//! same operation span and the same metrics ([`super::observe`]). HTTP
//! knows nothing of compiled previews: a body whose document the service
//! compiled is answered from its plan here.

use std::sync::Arc;

use async_graphql::futures_util::future::join_all;
use async_graphql::futures_util::stream::{self, BoxStream, StreamExt};
use async_graphql::{BatchResponse, Request, Response, Variables};
use serde::Deserialize;
use serde_json::value::RawValue;

use super::AppSchema;
use super::documents::Documents;
use super::observe;
use super::query::PREVIEW_ROLES;
use crate::auth::Caller;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// Most requests in one batch.
pub const MAX_BATCH: usize = 10;
/// Most nesting of braces, brackets and parentheses in a document (checked
/// on the text, before parsing).
pub const MAX_NESTING: usize = 48;

/// What a body is answered with.
pub enum Answer {
    /// A compiled preview's body, already JSON (`application/graphql-response+json`).
    Compiled(Vec<u8>),
    /// async-graphql's answer: one response, or a batch's.
    Executed(BatchResponse),
}

/// Executes GraphQL for both transports; cheap to clone.
#[derive(Clone)]
pub struct Endpoint(Arc<Inner>);

struct Inner {
    schema: AppSchema,
    documents: Documents,
    state: AppState,
}

impl Endpoint {
    /// The endpoint of `schema`, observed through `state`'s metrics.
    pub fn new(schema: AppSchema, state: AppState) -> Self {
        Self(Arc::new(Inner {
            schema,
            documents: Documents::default(),
            state,
        }))
    }

    /// Executes a POST body for an authenticated, admitted caller;
    /// `admit_batch` is asked first about a batch's size (every request of
    /// it counts). Err: the body as a whole is refused (not GraphQL, too
    /// deep, a batch too large or not admitted).
    pub async fn execute_body(
        &self,
        caller: &Caller,
        body: &[u8],
        admit_batch: impl AsyncFnOnce(usize) -> AppResult<()>,
    ) -> AppResult<Answer> {
        let (requests, batched) = match read_body(body).map_err(not_graphql)? {
            Body::Single(incoming) => {
                check_nesting(&incoming.query)?;
                if let Some(answer) = self.serve_preview(caller, &incoming).await {
                    return Ok(answer);
                }
                (vec![incoming.into_request().map_err(not_graphql)?], false)
            }
            Body::Batch(requests) if requests.len() > MAX_BATCH => {
                return Err(AppError::BadInput {
                    field: None,
                    message: format!("a batch holds at most {MAX_BATCH} requests"),
                });
            }
            Body::Batch(requests) => {
                for request in &requests {
                    check_nesting(&request.query)?;
                }
                admit_batch(requests.len()).await?;
                (requests, true)
            }
        };
        let run = |request: Request| self.execute_one(request.data(caller.clone()));
        let mut responses = join_all(requests.into_iter().map(run)).await;
        Ok(Answer::Executed(match responses.pop() {
            Some(only) if !batched => BatchResponse::Single(only),
            last => BatchResponse::Batch(responses.into_iter().chain(last).collect()),
        }))
    }

    /// One request through async-graphql, observed.
    async fn execute_one(&self, request: Request) -> Response {
        let Inner {
            schema,
            documents,
            state,
        } = &*self.0;
        observe::execute(schema, documents, request, &state.metrics, state.config.metrics).await
    }

    /// Answers a preview through its document's compiled plan
    /// ([`super::fast_preview`]); None when it is not one.
    async fn serve_preview(&self, caller: &Caller, incoming: &Incoming<'_>) -> Option<Answer> {
        if !PREVIEW_ROLES.contains(&caller.role) {
            return None;
        }
        let parsed = self.0.documents.get(&incoming.query)?;
        let plan = parsed.preview.as_ref()?;
        let state = &self.0.state;
        let answer = observe::execute_preview(
            plan,
            incoming.operation_name.as_deref(),
            incoming.variables,
            state,
            &state.metrics,
            state.config.metrics,
        );
        Some(match answer.await? {
            Ok(body) => Answer::Compiled(body),
            Err(failed) => Answer::Executed(BatchResponse::Single(failed)),
        })
    }
}

/// A socket's operations: the same checks, codes, span and metrics as HTTP's.
impl async_graphql::Executor for Endpoint {
    async fn execute(&self, request: Request) -> Response {
        if let Err(refused) = check_nesting(&request.query) {
            return refusal(refused);
        }
        self.execute_one(request).await
    }

    fn execute_stream(
        &self,
        mut request: Request,
        session_data: Option<Arc<async_graphql::Data>>,
    ) -> BoxStream<'static, Response> {
        let refused = match check_nesting(&request.query) {
            Err(refused) => Some(refusal(refused)),
            Ok(()) => observe::refused(&mut request),
        };
        if let Some(response) = refused {
            return stream::once(async move { response }).boxed();
        }
        let state = &self.0.state;
        let span = observe::subscription_started(&mut request, &state.metrics, state.config.metrics);
        span.in_scope(|| {
            self.0
                .schema
                .execute_stream_with_session_data(request, session_data.unwrap_or_default())
                .map(|mut response| {
                    super::ensure_codes(&mut response.errors);
                    response
                })
                .boxed()
        })
    }
}

/// A request refused before execution, as a GraphQL response.
fn refusal(error: AppError) -> Response {
    Response::from_errors(vec![
        async_graphql::Error::from(error).into_server_error(async_graphql::Pos::default()),
    ])
}

/// BAD_USER_INPUT for a document nested deeper than [`MAX_NESTING`].
fn check_nesting(query: &str) -> AppResult<()> {
    let deepest = nesting(query);
    if deepest > MAX_NESTING {
        return Err(AppError::bad_input(
            "query",
            format!("the document nests {deepest} levels; at most {MAX_NESTING} are accepted"),
        ));
    }
    Ok(())
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

/// BAD_USER_INPUT for a body that is not a GraphQL request.
fn not_graphql(why: serde_json::Error) -> AppError {
    AppError::BadInput {
        field: None,
        message: format!("the request is not a GraphQL request: {why}"),
    }
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
fn read_body(body: &[u8]) -> Result<Body<'_>, serde_json::Error> {
    match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(body).map(Body::Batch),
        _ => serde_json::from_slice(body).map(Body::Single),
    }
}
