//! The background workers, one file each, under one [`Supervisor`]:
//!
//! - [`relay`] (`outbox-relay`): publishes outbox rows to the event stream;
//! - [`housekeeping`]: expiry events and outbox retention;
//! - [`coupon_generator`]: large coupon batches;
//! - [`reconciler`] (`usage-reconciler`): the stored usage counts;
//! - [`snapshot`] (`snapshot-refresh`): keeps the pricing snapshot fresh.
//!
//! The first three are optional: `serve` runs them unless `RUN_WORKERS` is
//! false, and `promotions worker` runs them alone. The last two belong to
//! every process that prices or applies carts, so the state starts them.
//!
//! Every worker is a [`Worker`]: one step of work (`run_once`) and a wait
//! for the next (`wait`), run in a loop by the supervisor, which owns the
//! one cancellation token and the one task tracker of the process: a
//! shutdown cancels the token, each worker finishes the step it is in
//! (and its `finish`), and [`Supervisor::shutdown`] returns when all have
//! ended. Each step is recorded ([`Record`]) for health and metrics.

pub mod coupon_generator;
pub mod housekeeping;
pub mod reconciler;
mod record;
pub mod relay;
pub mod snapshot;
mod wakeup;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::redis_conn::RedisConn;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use record::{Record, WorkerState};

use crate::config::Config;
use crate::outbox::relay::RelayConfig;
pub use wakeup::Wakeup;

/// A background worker: a step of work and a wait for the next.
pub trait Worker: Send + 'static {
    /// Its name in health, metrics and logs.
    const NAME: &'static str;

    /// One step of work; Err carries the failure to record (the worker
    /// carries on). A long step ends early once `stop` is cancelled.
    fn run_once(&mut self, stop: &CancellationToken) -> impl Future<Output = Result<(), String>> + Send;

    /// Returns when the next step is due (a notification, a poll).
    fn wait(&mut self) -> impl Future<Output = ()> + Send;

    /// Runs once after the last step, when the process stops.
    fn finish(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// The process's workers: one cancellation, one task tracker, one record.
#[derive(Clone)]
pub struct Supervisor {
    stop: CancellationToken,
    tasks: TaskTracker,
    record: Arc<Record>,
}

impl Supervisor {
    /// A supervisor reporting into `record`.
    pub fn new(record: Arc<Record>) -> Self {
        Self {
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
            record,
        }
    }

    /// What the workers reported.
    pub fn record(&self) -> &Record {
        &self.record
    }

    /// Runs `worker` until the shutdown: step, record, wait, again.
    pub fn spawn<W: Worker>(&self, mut worker: W) {
        let stop = self.stop.clone();
        let record = self.record.clone();
        self.tasks.spawn(async move {
            record.started(W::NAME);
            loop {
                let outcome = worker.run_once(&stop).await;
                if let Err(e) = &outcome {
                    tracing::warn!(worker = W::NAME, error = %e, "a worker's run failed; it carries on");
                }
                record.ran(W::NAME, outcome);
                tokio::select! {
                    biased;
                    _ = stop.cancelled() => break,
                    _ = worker.wait() => {}
                }
            }
            worker.finish().await;
            record.stopped(W::NAME);
        });
    }

    /// Starts the optional workers (relay, housekeeping, coupon generator).
    pub fn start_optional(&self, db: &DatabaseConnection, redis: &RedisConn, config: &Config) {
        let relay = RelayConfig {
            stream: format!("{}{}", config.redis_key_prefix, config.events_stream),
            maxlen: config.events_stream_maxlen,
            max_attempts: config.outbox_max_attempts,
            retry_base: Duration::from_millis(config.outbox_retry_base_ms),
            wait_replicas: config.events_wait_replicas,
            wait_timeout: Duration::from_millis(config.events_wait_timeout_ms),
        };
        self.spawn(relay::Relay::new(db.clone(), redis.clone(), relay));
        let retention =
            chrono::Duration::hours(i64::try_from(config.outbox_retention_hours).unwrap_or(i64::MAX / 3600));
        self.spawn(housekeeping::Housekeeping::new(db.clone(), retention));
        self.spawn(coupon_generator::CouponGenerator::new(
            db.clone(),
            Duration::from_secs(config.coupon_batch_lease_secs),
        ));
    }

    /// Stops every worker and waits until each has finished its step.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        self.tasks.close();
        self.tasks.wait().await;
    }
}
