//! Health endpoints: `/health` and `/health/live` (the process answers),
//! `/health/ready` (PostgreSQL reachable and migrations applied: 200, with
//! status "degraded" when Redis does not answer (on a cluster: its state
//! not ok or a master silent); 503 otherwise), `/health/detailed` (JSON with each dependency's latency,
//! a cluster's nodes and each worker's state) and `/metrics` (Prometheus text format).

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json};
use axum::{Router, routing::get};
use serde::Serialize;

use crate::state::AppState;
use crate::store;

/// The probes an orchestrator needs, served on the public port.
pub fn probes(state: AppState) -> Router {
    Router::new()
        .route("/health", get(live))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(state)
}

/// The operations endpoints, which run queries: `/health/detailed` and
/// `/metrics` (on OPS_LISTEN_ADDR when set, else on the public port).
pub fn operations(state: AppState) -> Router {
    Router::new()
        .route("/health/detailed", get(detailed))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn live() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// One dependency's state.
#[derive(Serialize)]
struct Check {
    ok: bool,
    latency_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// The whole report.
#[derive(Serialize)]
struct Report {
    status: &'static str,
    version: &'static str,
    postgres: Check,
    redis: Check,
    /// This process's Redis breaker: "closed", or "open" (calls fail at once).
    redis_breaker: &'static str,
    /// A Redis Cluster's nodes (absent for a single node).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    redis_nodes: Vec<crate::redis_conn::NodeState>,
    migrations: Check,
    workers: Vec<crate::workers::WorkerState>,
}

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);
/// The scrape's own Redis PING gives up sooner.
const SCRAPE_PING_TIMEOUT: Duration = Duration::from_secs(1);

async fn timed<F, T, E>(timeout: Duration, fut: F) -> Check
where
    F: Future<Output = Result<T, E>>,
    E: std::fmt::Display,
{
    let start = Instant::now();
    let result = tokio::time::timeout(timeout, fut).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(Ok(_)) => Check {
            ok: true,
            latency_ms,
            error: None,
        },
        Ok(Err(e)) => Check {
            ok: false,
            latency_ms,
            error: Some(e.to_string()),
        },
        Err(_) => Check {
            ok: false,
            latency_ms,
            error: Some("timed out".into()),
        },
    }
}

async fn report(state: &AppState) -> Report {
    let postgres = timed(CHECK_TIMEOUT, store::ping(&state.db)).await;
    let mut redis_nodes = Vec::new();
    let redis = timed(CHECK_TIMEOUT, async {
        redis_nodes = crate::redis_conn::check(&state.redis).await?;
        Ok::<_, String>(())
    })
    .await;
    let migrations = timed(CHECK_TIMEOUT, async {
        match store::pending_migrations(&state.db).await {
            Ok(0) => Ok(()),
            Ok(n) => Err(format!("{n} migrations pending")),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
    // PostgreSQL holds the truth: without Redis the service still prices
    // (live counts from PostgreSQL), so it stays ready, degraded.
    let status = match (postgres.ok && migrations.ok, redis.ok) {
        (true, true) => "ok",
        (true, false) => "degraded",
        (false, _) => "unavailable",
    };
    Report {
        status,
        version: env!("CARGO_PKG_VERSION"),
        postgres,
        redis,
        redis_breaker: if state.redemptions.counters.breaker().is_open() {
            "open"
        } else {
            "closed"
        },
        redis_nodes,
        migrations,
        workers: state.workers.record().states(),
    }
}

/// 200 when the service serves (ok, or degraded: Redis down), else 503.
fn status_code(report: &Report) -> StatusCode {
    if report.status == "unavailable" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let report = report(&state).await;
    let mut body = serde_json::json!({ "status": report.status });
    if report.status == "degraded" {
        body["degraded"] = serde_json::json!(
            "Redis does not answer: previews read live counts from PostgreSQL and applies are counted by PostgreSQL alone (exact, slower)"
        );
    }
    (status_code(&report), Json(body))
}

async fn detailed(State(state): State<AppState>) -> impl IntoResponse {
    let report = report(&state).await;
    (status_code(&report), Json(report))
}

async fn ping_redis(state: &AppState) -> redis::RedisResult<String> {
    redis::cmd("PING").query_async(&mut state.redis.clone()).await
}

/// Reads the pricing snapshot, the outbox backlog, the pool's use and
/// Redis' health into their metrics.
async fn refresh_gauges(state: &AppState) -> Result<(), sea_orm::DbErr> {
    let snapshot = state.pricing.snapshot();
    state
        .metrics
        .snapshot(snapshot.len(), snapshot.version(), state.pricing.full_reloads());
    let pool = state.db.get_postgres_connection_pool();
    state
        .metrics
        .db_pool(pool.num_idle(), pool.size(), state.config.database_max_connections);
    let redis = timed(SCRAPE_PING_TIMEOUT, ping_redis(state)).await;
    state.metrics.redis(redis.ok.then_some(redis.latency_ms / 1000.0));
    let backlog = store::outbox::backlog(&state.db).await?;
    state
        .metrics
        .outbox(backlog.pending, backlog.dead, backlog.oldest_pending_secs);
    Ok(())
}

/// Prometheus text format of this process's metrics.
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    if let Err(e) = refresh_gauges(&state).await {
        tracing::warn!(error = %e, "reading the outbox backlog for /metrics failed; its gauges keep their last values");
    }
    let mut body = String::new();
    match prometheus::TextEncoder::new().encode_utf8(&state.metrics.registry.gather(), &mut body) {
        Ok(()) => (StatusCode::OK, [("content-type", prometheus::TEXT_FORMAT)], body),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [("content-type", "text/plain")],
            e.to_string(),
        ),
    }
}
