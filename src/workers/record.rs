//! The workers' lifecycle record: each worker reports when it starts, every
//! run (with its failure, if any) and when it stops; `/health/detailed`
//! shows the record and `/metrics` counts it.

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
pub struct Record {
    states: Mutex<BTreeMap<&'static str, WorkerState>>,
    runs: IntCounterVec,
    failures: IntCounterVec,
    running: IntGaugeVec,
}

impl Default for Record {
    fn default() -> Self {
        Self::new(&Registry::new())
    }
}

impl Record {
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
