//! Executing each GraphQL request: one span (`graphql.operation`, named
//! `<type> <root field>`, parent of every resolver's IO spans), every error
//! given a code ([`super::ensure_codes`]) and, when metrics are on, the
//! operation's count, latency and error codes.
//!
//! This wraps execution rather than being an async-graphql extension: any
//! extension makes async-graphql build resolve info for every field, which
//! cost a 20-line preview a quarter of its throughput. The operation's type
//! and root field come from the parsed document, which execution then reuses
//! (`Request::parsed_query`: parsed once, or copied from [`Documents`]).
//! A compiled preview ([`execute_preview`]) is observed the same way.

use std::time::Instant;

use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Request, Response, ServerError, Value};
use opentelemetry::trace::TraceContextExt;
use serde_json::value::RawValue;
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::documents::Documents;
use super::fast_preview::PreviewPlan;
use super::unstorable;
use super::{AppSchema, MAX_ALIASES};
use crate::error::AppError;
use crate::metrics::Metrics;
use crate::state::AppState;

/// The operation of `document` to run: the one `wanted` names, else its only
/// one; with the document's name for it when none was wanted and it has one.
pub(super) fn chosen_operation<'d>(
    document: &'d ExecutableDocument,
    wanted: Option<&str>,
) -> Option<(&'d OperationDefinition, Option<String>)> {
    let (operation, name) = match (&document.operations, wanted) {
        (DocumentOperations::Single(op), _) => (op, None),
        (DocumentOperations::Multiple(ops), Some(name)) => (ops.iter().find(|(n, _)| n.as_str() == name)?.1, None),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            let (name, op) = ops.iter().next()?;
            (op, Some(name.to_string()))
        }
        (DocumentOperations::Multiple(_), None) => return None,
    };
    Some((&operation.node, name))
}

/// What a request runs, as its span and metrics name it.
struct Operation {
    /// `query`, `mutation`, `subscription`, or `unknown` when the document
    /// does not parse.
    kind: &'static str,
    /// Its first root field.
    root: String,
    /// The operation name asked for, else the document's name for it.
    name: Option<String>,
}

/// The operation `request` runs.
fn operation_of(request: &mut Request) -> Operation {
    let wanted = request.operation_name.clone();
    let unknown = Operation {
        kind: "unknown",
        root: String::new(),
        name: wanted.clone(),
    };
    let Ok(document) = request.parsed_query() else {
        return unknown;
    };
    let Some((operation, named)) = chosen_operation(document, wanted.as_deref()) else {
        return unknown;
    };
    let kind = match operation.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let root = operation
        .selection_set
        .node
        .items
        .iter()
        .find_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    Operation {
        kind,
        root,
        name: wanted.or(named),
    }
}

/// Aliased fields in a selection set, fragments' included (the parser
/// bounds the nesting, so the recursion is bounded too).
fn aliases(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|s| match &s.node {
            Selection::Field(f) => usize::from(f.node.alias.is_some()) + aliases(&f.node.selection_set.node),
            Selection::InlineFragment(f) => aliases(&f.node.selection_set.node),
            Selection::FragmentSpread(_) => 0,
        })
        .sum()
}

/// Whether the document holds more than [`MAX_ALIASES`] aliases.
fn too_many_aliases(request: &mut Request) -> bool {
    let Ok(document) = request.parsed_query() else {
        return false;
    };
    let operations: usize = document
        .operations
        .iter()
        .map(|(_, op)| aliases(&op.node.selection_set.node))
        .sum();
    let fragments: usize = document
        .fragments
        .values()
        .map(|f| aliases(&f.node.selection_set.node))
        .sum();
    operations + fragments > MAX_ALIASES
}

/// BAD_USER_INPUT for the first argument string of the operation to run
/// that PostgreSQL could not store (see [`unstorable`]).
fn unstorable_string(
    document: &ExecutableDocument,
    operation_name: Option<&str>,
    variables: &async_graphql::Variables,
) -> Option<ServerError> {
    let (operation, _) = chosen_operation(document, operation_name)?;
    let (field, pos) = unstorable::find(document, operation, variables)?;
    Some(async_graphql::Error::from(AppError::bad_input(field, unstorable::MESSAGE)).into_server_error(pos))
}

/// A coded error response when `request` may not run (too many aliases, a
/// string PostgreSQL could not store); parses the document once, for
/// execution to reuse.
pub(super) fn refused(request: &mut Request) -> Option<Response> {
    if request.parsed_query().is_err() {
        // async-graphql reports the syntax error itself, coded by ensure_codes.
        return None;
    }
    if too_many_aliases(request) {
        let error = ServerError::new(format!("a document may hold at most {MAX_ALIASES} aliases"), None);
        let mut response = Response::from_errors(vec![error]);
        super::ensure_codes(&mut response.errors);
        return Some(response);
    }
    // The document borrows the request: its variables and name are moved out meanwhile.
    let variables = std::mem::take(&mut request.variables);
    let name = request.operation_name.take();
    let error = request
        .parsed_query()
        .ok()
        .and_then(|document| unstorable_string(document, name.as_deref(), &variables));
    request.variables = variables;
    request.operation_name = name;
    error.map(|error| Response::from_errors(vec![error]))
}

/// Executes one request in its operation span, every error coded, recording
/// its metrics when `record`.
pub async fn execute(
    schema: &AppSchema,
    documents: &Documents,
    mut request: Request,
    metrics: &Metrics,
    record: bool,
) -> Response {
    documents.prepare(&mut request);
    if let Some(response) = refused(&mut request) {
        return response;
    }
    let operation = operation_of(&mut request);
    let started = Instant::now();
    let span = operation_span(operation.kind, &operation.root, operation.name.as_deref());
    let mut response = schema.execute(request).instrument(span).await;
    super::ensure_codes(&mut response.errors);
    if record {
        let name = operation.name.as_deref();
        record_operation(metrics, name, operation.kind, false, started, &response.errors);
    }
    response
}

/// Observes the start of a subscription over a socket like any operation:
/// counted in the metrics when `record`, and the span its stream is set up
/// in (the events it yields later are the feed's).
pub(super) fn subscription_started(request: &mut Request, metrics: &Metrics, record: bool) -> Span {
    let operation = operation_of(request);
    let span = operation_span(operation.kind, &operation.root, operation.name.as_deref());
    if record {
        let name = operation.name.as_deref();
        record_operation(metrics, name, operation.kind, false, Instant::now(), &[]);
    }
    span
}

/// Serves a request through its document's compiled preview, observed like
/// [`execute`]: the response body, or the response of a failed preview.
/// None when the request is not the plan's to serve (see
/// [`PreviewPlan::cart`]), or if writing its answer failed (writers into a
/// `Vec` do not): it then goes to [`execute`].
pub async fn execute_preview(
    plan: &PreviewPlan,
    operation_name: Option<&str>,
    variables: Option<&RawValue>,
    state: &AppState,
    metrics: &Metrics,
    record: bool,
) -> Option<Result<Vec<u8>, Response>> {
    let cart = plan.cart(operation_name, variables)?;
    let name = operation_name.or(plan.operation());
    let started = Instant::now();
    let span = operation_span("query", "previewPromotions", name);
    let answer = match cart.preview(state).instrument(span).await {
        Ok(priced) => Ok(plan.answer(&priced).ok()?),
        Err(error) => {
            let mut response = plan.failure(error);
            super::ensure_codes(&mut response.errors);
            Err(response)
        }
    };
    if record {
        let errors = answer.as_ref().err().map_or(&[][..], |r| &r.errors);
        record_operation(metrics, name, "query", true, started, errors);
    }
    Some(answer)
}

/// The `graphql.operation` span of one operation, exported as `<type> <root field>`.
fn operation_span(kind: &'static str, root: &str, name: Option<&str>) -> Span {
    let span = tracing::info_span!(
        "graphql.operation",
        graphql.operation.name = name,
        graphql.operation.type = kind,
    );
    if !span.is_disabled() {
        // Names the exported span (a recorded `otel.name` is ignored once the span started).
        span.context().span().update_name(format!("{kind} {root}"));
    }
    span
}

/// Counts one operation (`compiled` when its plan served it), its latency and its errors' codes.
fn record_operation(
    metrics: &Metrics,
    name: Option<&str>,
    kind: &'static str,
    compiled: bool,
    started: Instant,
    errors: &[ServerError],
) {
    let label = metrics.operation_label(name);
    let codes = errors.iter().filter_map(|e| match e.extensions.as_ref()?.get("code")? {
        Value::String(code) => Some(code.as_str()),
        _ => None,
    });
    metrics.graphql_operation(&label, kind, compiled, started.elapsed(), codes);
}
