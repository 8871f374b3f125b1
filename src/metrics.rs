//! Prometheus metrics of this process, served on `/metrics`.
//!
//! Counted where they happen: HTTP requests (a middleware, by matched route,
//! method and status), GraphQL operations (by operation name and type,
//! errors by code, and those served by a compiled plan), redemptions (by
//! operation and outcome) and their rejections (by reason), Redis script
//! latency (by script), and the workers' runs ([`crate::workers`]). Read
//! when scraped: the pricing snapshot (promotions, version, full reloads),
//! the outbox (events by status, age of the oldest pending),
//! the PostgreSQL pool and the Redis connection (one multiplexed
//! connection: up and round trip).
//!
//! Label values come from bounded sets (routes, codes, reasons, scripts);
//! operation names are the client's, so at most [`MAX_OPERATION_NAMES`]
//! distinct ones are kept and the rest count as `other`.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use prometheus::core::Collector;
use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    exponential_buckets,
};

/// Most distinct GraphQL operation names kept as label values.
pub const MAX_OPERATION_NAMES: usize = 100;

/// Every metric the service records itself.
pub struct Metrics {
    /// Holds them all (and the workers').
    pub registry: Registry,
    http_requests: IntCounterVec,
    http_duration: HistogramVec,
    graphql_operations: IntCounterVec,
    graphql_duration: HistogramVec,
    graphql_errors: IntCounterVec,
    graphql_compiled: IntCounterVec,
    redemptions: IntCounterVec,
    rejections: IntCounterVec,
    redis_scripts: HistogramVec,
    snapshot_promotions: IntGauge,
    snapshot_version: IntGauge,
    snapshot_full_reloads: IntCounter,
    /// Held while `snapshot_full_reloads` catches up with the count (two
    /// scrapes at once would each add the difference).
    snapshot_full_reloads_catching_up: Mutex<()>,
    outbox_events: IntGaugeVec,
    outbox_oldest_pending: Gauge,
    db_connections: IntGaugeVec,
    db_max_connections: IntGauge,
    redis_up: IntGauge,
    redis_breaker_open: IntGauge,
    redis_ping: Gauge,
    operation_names: Mutex<HashSet<String>>,
}

fn register<C: Collector + Clone + 'static>(registry: &Registry, collector: C) -> C {
    // A metric is registered once per registry; names are constants here.
    let _ = registry.register(Box::new(collector.clone()));
    collector
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    register(
        registry,
        IntCounterVec::new(Opts::new(name, help), labels).expect("a valid metric definition"),
    )
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    register(
        registry,
        HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels).expect("a valid metric definition"),
    )
}

/// 100 µs .. ~3.3 s, doubling.
fn latency_buckets() -> Vec<f64> {
    exponential_buckets(0.0001, 2.0, 16).expect("valid buckets")
}

impl Metrics {
    /// Registers every metric in a new registry.
    pub fn new() -> Self {
        let registry = Registry::new();
        let build_info = register(
            &registry,
            IntGaugeVec::new(
                Opts::new("promotions_build_info", "The running build; always 1"),
                &["version"],
            )
            .expect("a valid metric definition"),
        );
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        Self {
            http_requests: counter(
                &registry,
                "http_requests_total",
                "HTTP requests by matched route, method and status",
                &["route", "method", "status"],
            ),
            http_duration: histogram(
                &registry,
                "http_request_duration_seconds",
                "HTTP request latency by matched route, method and status",
                &["route", "method", "status"],
                latency_buckets(),
            ),
            graphql_operations: counter(
                &registry,
                "graphql_operations_total",
                "GraphQL operations by name and type (query, mutation, subscription)",
                &["operation", "type"],
            ),
            graphql_compiled: counter(
                &registry,
                "graphql_compiled_operations_total",
                "GraphQL operations served by their compiled plan, by name (the rest of \
                 graphql_operations_total went through async-graphql's executor)",
                &["operation"],
            ),
            graphql_duration: histogram(
                &registry,
                "graphql_operation_duration_seconds",
                "GraphQL operation latency by name and type",
                &["operation", "type"],
                latency_buckets(),
            ),
            graphql_errors: counter(
                &registry,
                "graphql_errors_total",
                "GraphQL errors by operation and extensions.code",
                &["operation", "code"],
            ),
            redemptions: counter(
                &registry,
                "redemptions_total",
                "applyPromotions and releaseRedemption by outcome",
                &["operation", "outcome"],
            ),
            rejections: counter(
                &registry,
                "promotion_rejections_total",
                "Promotions and coupons rejected in applied carts, by reason",
                &["reason"],
            ),
            redis_scripts: histogram(
                &registry,
                "redis_script_duration_seconds",
                "Latency of the usage-limit Lua scripts by script and result (ok, error)",
                &["script", "result"],
                latency_buckets(),
            ),
            snapshot_promotions: register(
                &registry,
                IntGauge::new(
                    "pricing_snapshot_promotions",
                    "Promotions in this replica's pricing snapshot",
                )
                .expect("a valid metric definition"),
            ),
            snapshot_version: register(
                &registry,
                IntGauge::new(
                    "pricing_snapshot_version",
                    "The pricing version this replica's snapshot reflects",
                )
                .expect("a valid metric definition"),
            ),
            snapshot_full_reloads: register(
                &registry,
                IntCounter::new(
                    "pricing_snapshot_full_reloads_total",
                    "Full reloads of the pricing snapshot (start-up, missed or unreadable notifications)",
                )
                .expect("a valid metric definition"),
            ),
            snapshot_full_reloads_catching_up: Mutex::new(()),
            outbox_events: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new("outbox_events", "Outbox events waiting (PENDING) or given up (DEAD)"),
                    &["status"],
                )
                .expect("a valid metric definition"),
            ),
            outbox_oldest_pending: register(
                &registry,
                Gauge::new(
                    "outbox_oldest_pending_age_seconds",
                    "Age of the oldest PENDING outbox event (0 when none)",
                )
                .expect("a valid metric definition"),
            ),
            db_connections: register(
                &registry,
                IntGaugeVec::new(
                    Opts::new(
                        "db_pool_connections",
                        "PostgreSQL pool connections by state (idle, in_use)",
                    ),
                    &["state"],
                )
                .expect("a valid metric definition"),
            ),
            db_max_connections: register(
                &registry,
                IntGauge::new("db_pool_max_connections", "PostgreSQL pool size limit")
                    .expect("a valid metric definition"),
            ),
            redis_up: register(
                &registry,
                IntGauge::new("redis_up", "1 when Redis answered the scrape's PING")
                    .expect("a valid metric definition"),
            ),
            redis_breaker_open: register(
                &registry,
                IntGauge::new(
                    "redis_breaker_open",
                    "1 while this process's Redis breaker is open (calls fail at once)",
                )
                .expect("a valid metric definition"),
            ),
            redis_ping: register(
                &registry,
                Gauge::new(
                    "redis_ping_seconds",
                    "Round trip of the scrape's PING on the shared Redis connection",
                )
                .expect("a valid metric definition"),
            ),
            operation_names: Mutex::new(HashSet::new()),
            registry,
        }
    }

    /// One HTTP request.
    pub fn http_request(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let status = status.to_string();
        let labels = [route, method, status.as_str()];
        self.http_requests.with_label_values(&labels).inc();
        self.http_duration
            .with_label_values(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The label for a client's operation name: itself while fewer than
    /// [`MAX_OPERATION_NAMES`] are known, else `other`; none is `anonymous`.
    pub fn operation_label(&self, name: Option<&str>) -> String {
        let Some(name) = name.filter(|n| !n.is_empty()) else {
            return "anonymous".to_owned();
        };
        let mut names = self.operation_names.lock().unwrap_or_else(|p| p.into_inner());
        if names.contains(name) {
            return name.to_owned();
        }
        let well_formed = name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if well_formed && names.len() < MAX_OPERATION_NAMES {
            names.insert(name.to_owned());
            name.to_owned()
        } else {
            "other".to_owned()
        }
    }

    /// One GraphQL operation with the codes of its errors; `compiled` when
    /// its compiled plan served it ([`crate::graphql::fast_preview`]).
    pub fn graphql_operation<'a>(
        &self,
        operation: &str,
        kind: &str,
        compiled: bool,
        elapsed: Duration,
        error_codes: impl Iterator<Item = &'a str>,
    ) {
        self.graphql_operations.with_label_values(&[operation, kind]).inc();
        if compiled {
            self.graphql_compiled.with_label_values(&[operation]).inc();
        }
        self.graphql_duration
            .with_label_values(&[operation, kind])
            .observe(elapsed.as_secs_f64());
        for code in error_codes {
            self.graphql_errors.with_label_values(&[operation, code]).inc();
        }
    }

    /// One apply or release and its outcome.
    pub fn redemption(&self, operation: &str, outcome: &str) {
        self.redemptions.with_label_values(&[operation, outcome]).inc();
    }

    /// One rejection reported in an applied cart.
    pub fn rejection(&self, reason: &str) {
        self.rejections.with_label_values(&[reason]).inc();
    }

    /// One Lua script call.
    pub fn redis_script(&self, script: &str, ok: bool, elapsed: Duration) {
        self.redis_scripts
            .with_label_values(&[script, if ok { "ok" } else { "error" }])
            .observe(elapsed.as_secs_f64());
    }

    /// Sets the snapshot's metrics: its size, version and the full reloads
    /// so far (a count kept by the snapshot's owner).
    pub fn snapshot(&self, promotions: usize, version: i64, full_reloads: u64) {
        self.snapshot_promotions
            .set(i64::try_from(promotions).unwrap_or(i64::MAX));
        self.snapshot_version.set(version);
        let _alone = self
            .snapshot_full_reloads_catching_up
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        self.snapshot_full_reloads
            .inc_by(full_reloads.saturating_sub(self.snapshot_full_reloads.get()));
    }

    /// Sets the outbox gauges from a scrape-time count.
    pub fn outbox(&self, pending: i64, dead: i64, oldest_pending_age_secs: f64) {
        self.outbox_events.with_label_values(&["PENDING"]).set(pending);
        self.outbox_events.with_label_values(&["DEAD"]).set(dead);
        self.outbox_oldest_pending.set(oldest_pending_age_secs);
    }

    /// Sets the Redis gauges: `ping_secs` is the round trip, or none when it failed.
    pub fn redis(&self, ping_secs: Option<f64>) {
        self.redis_up.set(i64::from(ping_secs.is_some()));
        if let Some(ping) = ping_secs {
            self.redis_ping.set(ping);
        }
    }

    /// Sets the breaker's gauge.
    pub fn redis_breaker(&self, open: bool) {
        self.redis_breaker_open.set(i64::from(open));
    }

    /// Sets the pool gauges.
    pub fn db_pool(&self, idle: usize, size: u32, max: u32) {
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        self.db_connections.with_label_values(&["idle"]).set(idle);
        self.db_connections
            .with_label_values(&["in_use"])
            .set((i64::from(size) - idle).max(0));
        self.db_max_connections.set(i64::from(max));
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_reload_counter_follows_the_count_however_many_scrapes_run_at_once() {
        let metrics = Metrics::new();
        std::thread::scope(|threads| {
            for _ in 0..8 {
                threads.spawn(|| (1..=50).for_each(|reloads| metrics.snapshot(10, 3, reloads)));
            }
        });
        assert_eq!(metrics.snapshot_full_reloads.get(), 50);
        metrics.snapshot(10, 3, 50);
        assert_eq!(metrics.snapshot_full_reloads.get(), 50);
    }
}
