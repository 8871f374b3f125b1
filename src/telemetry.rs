//! Logs and traces.
//!
//! - Logs: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` gives one
//!   JSON object a line (with every enclosing span's fields), anything else a
//!   readable format; with traces on, each line of a request starts with its
//!   trace id.
//! - Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//!   `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, spans go over OTLP/HTTP
//!   (protobuf) in batches to that collector (Jaeger, the OpenTelemetry
//!   Collector, ...), named by `OTEL_SERVICE_NAME` (default `promotions`).
//!   Callers' W3C `traceparent` headers continue their trace. The standard
//!   `OTEL_*` variables tune the exporter and the batches.
//!
//! Spans: one per HTTP request ([`http_span`]), one per GraphQL operation
//! (the GraphQL extension), the use cases and repositories
//! (`#[tracing::instrument]`), every SQL statement (SeaORM's
//! `tracing-spans`) and every Redis script call.

use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::{Layer, fmt, prelude::*};

/// Keeps the trace exporter alive; [`Telemetry::shutdown`] flushes it.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Sends the spans still buffered (call before exiting).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(e) = provider.shutdown()
        {
            eprintln!("flushing traces failed: {e}");
        }
    }
}

fn otlp_configured() -> bool {
    ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
        .iter()
        .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()))
}

fn tracer_provider() -> Result<SdkTracerProvider, String> {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
        .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var("OTEL_SERVICE_NAME").is_err() {
        resource = resource.with_service_name("promotions");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// One JSON object a line (each with the fields of its enclosing spans), or
/// readable lines; either starts with the trace id when there is one.
fn log_layer<S>(json: bool) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if json {
        let format = fmt::format().json().with_current_span(false).with_span_list(true);
        fmt::layer()
            .json()
            .event_format(WithTraceId {
                inner: format,
                json: true,
            })
            .boxed()
    } else {
        fmt::layer()
            .event_format(WithTraceId {
                inner: fmt::format(),
                json: false,
            })
            .boxed()
    }
}

/// Puts the current trace id first on each log line (`"trace_id"` in JSON,
/// `trace_id=` otherwise). Read from the OpenTelemetry context, so it is
/// there even when the log filter hides the request's spans.
struct WithTraceId<F> {
    inner: F,
    json: bool,
}

impl<S, N, F> fmt::FormatEvent<S, N> for WithTraceId<F>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> fmt::FormatFields<'a> + 'static,
    F: fmt::FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &fmt::FmtContext<'_, S, N>,
        mut writer: fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let Some(trace_id) = current_trace_id() else {
            return self.inner.format_event(ctx, writer, event);
        };
        if !self.json {
            write!(writer, "trace_id={trace_id} ")?;
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, fmt::format::Writer::new(&mut line), event)?;
        match line.strip_prefix('{') {
            Some(rest) => write!(writer, "{{\"trace_id\":\"{trace_id}\",{rest}"),
            None => writer.write_str(&line),
        }
    }
}

/// Installs the global subscriber (and the OTLP exporter when configured);
/// call once, first thing in `main`.
pub fn init() -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let (provider, problem) = if otlp_configured() {
        match tracer_provider() {
            Ok(p) => (Some(p), None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    // Without an exporter there is no trace layer and the log filter is global,
    // so disabled spans cost nothing (per-layer filtering cost previews ~25 %).
    match &provider {
        Some(p) => {
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let traces = tracing_opentelemetry::layer()
                .with_tracer(p.tracer("promotions"))
                .with_filter(LevelFilter::INFO);
            tracing_subscriber::registry()
                .with(log_layer(json).with_filter(filter))
                .with(traces)
                .init();
        }
        // A global filter: callsites it disables cost nothing.
        None => tracing_subscriber::registry().with(filter).with(log_layer(json)).init(),
    }
    if let Some(problem) = problem {
        tracing::warn!(error = %problem, "traces are not exported");
    }
    Telemetry { provider }
}

/// Reads W3C trace context from HTTP headers.
struct Headers<'a>(&'a axum::http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// The span of one HTTP request: continues the caller's `traceparent`.
pub fn http_span(request: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| request.uri().path().to_owned(), |p| p.as_str().to_owned());
    let span = tracing::info_span!(
        "http.request",
        otel.name = %format!("{} {route}", request.method()),
        otel.kind = "server",
        http.request.method = %request.method(),
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&Headers(request.headers())));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    span
}

/// The trace id of the current span, when traces are on.
pub fn current_trace_id() -> Option<String> {
    let context = tracing::Span::current().context();
    let span_context = context.span().span_context().clone();
    span_context.is_valid().then(|| span_context.trace_id().to_string())
}

/// Installs the process's TLS provider (ring, as the PostgreSQL and Redis
/// clients use) for the rustls clients that take the process default (the
/// JWKS fetch, the OTLP exporter). Call before building any; idempotent.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
