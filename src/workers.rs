//! The background workers' shared lifecycle record: each worker reports
//! when it starts, every run (with its failure, if any) and when it stops;
//! `/health/detailed` shows the record. Workers: `outbox-relay` (publishes
//! events) and `usage-reconciler` (stored counts, stale reservations, drifted
//! counters). They run inside `serve` (RUN_WORKERS=true, the default) or
//! alone as `promotions worker`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
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

/// The record of this process's workers.
#[derive(Default)]
pub struct Workers {
    states: Mutex<BTreeMap<&'static str, WorkerState>>,
}

impl Workers {
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
        self.with(name, |s| {
            s.state = "running";
            s.started_at = Utc::now();
        });
    }

    /// A worker finished one run.
    pub fn ran(&self, name: &'static str, outcome: Result<(), String>) {
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
