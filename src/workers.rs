//! The background workers' shared lifecycle record: each worker reports
//! when it starts, every run (with its failure, if any) and when it stops;
//! `/health/detailed` shows the record. Workers: `outbox-relay` (publishes
//! events), `usage-reconciler` (stored counts, stale reservations, drifted
//! counters), `housekeeping` (expiry, outbox retention) and
//! `coupon-generator` (large coupon batches). They run inside `serve` (RUN_WORKERS=true, the default) or
//! alone as `promotions worker`. The same record feeds `/metrics`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::Serialize;

/// One worker's state.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerState {
    pub name: &'static str,
    /// `running` or `stopped`.
    pub state: &'static str,
    pub started_at: DateTime<Utc>,
    pub last_run: Option<DateTime<Utc>>,
    pub runs: u64,
    pub failures: u64,
    pub last_error: Option<String>,
}

/// The record of this process's workers, also as Prometheus counters
/// (`worker_runs_total`, `worker_failures_total`, `worker_running`).
pub struct Workers {
    states: Mutex<BTreeMap<&'static str, WorkerState>>,
    runs: IntCounterVec,
    failures: IntCounterVec,
    running: IntGaugeVec,
}

impl Default for Workers {
    fn default() -> Self {
        Self::new(&Registry::new())
    }
}

impl Workers {
    /// A record whose counters are registered in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let runs = IntCounterVec::new(
            Opts::new("worker_runs_total", "Runs of each background worker"),
            &["worker"],
        )
        .expect("a valid metric definition");
        let failures = IntCounterVec::new(
            Opts::new("worker_failures_total", "Failed runs of each background worker"),
            &["worker"],
        )
        .expect("a valid metric definition");
        let running = IntGaugeVec::new(Opts::new("worker_running", "1 while a worker runs"), &["worker"])
            .expect("a valid metric definition");
        for metric in [
            Box::new(runs.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(failures.clone()),
            Box::new(running.clone()),
        ] {
            // A second registration (a second app in one process) keeps the first.
            let _ = registry.register(metric);
        }
        Self {
            states: Mutex::new(BTreeMap::new()),
            runs,
            failures,
            running,
        }
    }

    fn with(&self, name: &'static str, f: impl FnOnce(&mut WorkerState)) {
        let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
        let state = states.entry(name).or_insert_with(|| WorkerState {
            name,
            state: "running",
            started_at: Utc::now(),
            last_run: None,
            runs: 0,
            failures: 0,
            last_error: None,
        });
        f(state);
    }

    /// A worker started.
    pub fn started(&self, name: &'static str) {
        self.running.with_label_values(&[name]).set(1);
        self.with(name, |s| {
            s.state = "running";
            s.started_at = Utc::now();
        });
    }

    /// A worker finished one run.
    pub fn ran(&self, name: &'static str, outcome: Result<(), String>) {
        self.runs.with_label_values(&[name]).inc();
        if outcome.is_err() {
            self.failures.with_label_values(&[name]).inc();
        }
        self.with(name, |s| {
            s.runs += 1;
            s.last_run = Some(Utc::now());
            if let Err(e) = outcome {
                s.failures += 1;
                s.last_error = Some(e);
            }
        });
    }

    /// A worker stopped.
    pub fn stopped(&self, name: &'static str) {
        self.running.with_label_values(&[name]).set(0);
        self.with(name, |s| s.state = "stopped");
    }

    /// Every worker's state, by name.
    pub fn states(&self) -> Vec<WorkerState> {
        self.states
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

/// How a worker waits for work: a PostgreSQL `LISTEN` on its channel, with a
/// polling fallback (and plain polling while the listener cannot connect).
pub struct Wakeup {
    channel: &'static str,
    poll: std::time::Duration,
    listener: Option<sea_orm::sqlx::postgres::PgListener>,
}

impl Wakeup {
    /// Waits on NOTIFY `channel`, or `poll` at most.
    pub fn new(channel: &'static str, poll: std::time::Duration) -> Self {
        Self {
            channel,
            poll,
            listener: None,
        }
    }

    /// Returns on a notification, after `poll`, or when `stop` fires or has
    /// fired (then true, at once).
    pub async fn wait(
        &mut self,
        db: &sea_orm::DatabaseConnection,
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> bool {
        if *stop.borrow() {
            return true;
        }
        if self.listener.is_none()
            && let Ok(mut l) =
                sea_orm::sqlx::postgres::PgListener::connect_with(db.get_postgres_connection_pool()).await
            && l.listen(self.channel).await.is_ok()
        {
            self.listener = Some(l);
        }
        let poll = self.poll;
        let wake = async {
            match self.listener.as_mut() {
                Some(l) => {
                    let _ = tokio::time::timeout(poll, l.try_recv()).await;
                }
                None => tokio::time::sleep(poll).await,
            }
        };
        tokio::select! {
            _ = wake => false,
            _ = stop.changed() => true,
        }
    }
}
