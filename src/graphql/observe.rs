//! The GraphQL extension that observes each operation: one span
//! (`graphql.operation`, named `<type> <root field>`, parent of every
//! resolver's IO spans) and, when metrics are on, its count, latency and
//! error codes (an error without a code is async-graphql's own input error:
//! BAD_USER_INPUT, as [`super::ensure_codes`] labels it).

use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextPrepareRequest, NextRequest,
};
use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType, Selection};
use async_graphql::{Request, Response, ServerResult, Value, Variables};
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::Metrics;

/// Creates one [`ObserveOperation`] per request.
pub struct Observe {
    pub metrics: Arc<Metrics>,
    /// Whether to record metrics (spans are always made).
    pub record: bool,
}

impl ExtensionFactory for Observe {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ObserveOperation {
            metrics: self.metrics.clone(),
            record: self.record,
            seen: Mutex::new(Seen::default()),
        })
    }
}

#[derive(Default, Clone)]
struct Seen {
    name: Option<String>,
    kind: &'static str,
}

/// Observes one request.
pub struct ObserveOperation {
    metrics: Arc<Metrics>,
    record: bool,
    seen: Mutex<Seen>,
}

impl ObserveOperation {
    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The operation the request runs: (type, first root field).
fn chosen(document: &ExecutableDocument, name: Option<&str>) -> Option<(&'static str, String)> {
    let operation = match (&document.operations, name) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.iter().find(|(n, _)| n.as_str() == name)?.1,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        (DocumentOperations::Multiple(_), None) => return None,
    };
    let kind = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let root = operation
        .node
        .selection_set
        .node
        .items
        .iter()
        .find_map(|s| match &s.node {
            Selection::Field(f) => Some(f.node.name.node.to_string()),
            _ => None,
        })
        .unwrap_or_default();
    Some((kind, root))
}

#[async_graphql::async_trait::async_trait]
impl Extension for ObserveOperation {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let span = tracing::info_span!(
            "graphql.operation",
            graphql.operation.name = tracing::field::Empty,
            graphql.operation.type = tracing::field::Empty,
        );
        let started = Instant::now();
        let response = next.run(ctx).instrument(span).await;
        if self.record {
            let seen = self.seen().clone();
            let label = self.metrics.operation_label(seen.name.as_deref());
            let kind = if seen.kind.is_empty() { "unknown" } else { seen.kind };
            let codes = response
                .errors
                .iter()
                .map(|e| match e.extensions.as_ref().and_then(|x| x.get("code")) {
                    Some(Value::String(code)) => code.as_str(),
                    _ => "BAD_USER_INPUT",
                });
            self.metrics.graphql_operation(&label, kind, started.elapsed(), codes);
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        self.seen().name = request.operation_name.clone();
        next.run(ctx, request).await
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        let mut seen = self.seen();
        if let Some((kind, root)) = chosen(&document, seen.name.as_deref()) {
            if seen.name.is_none()
                && let DocumentOperations::Multiple(ops) = &document.operations
            {
                seen.name = ops.keys().next().map(|n| n.to_string());
            }
            seen.kind = kind;
            let span = tracing::Span::current();
            // Renames the exported span (a recorded `otel.name` is ignored once the span started).
            span.context().span().update_name(format!("{kind} {root}"));
            span.record("graphql.operation.type", kind);
            if let Some(name) = &seen.name {
                span.record("graphql.operation.name", name.as_str());
            }
        }
        Ok(document)
    }
}
