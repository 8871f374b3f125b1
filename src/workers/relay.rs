//! The `outbox-relay` worker: drains the due outbox rows to the event
//! stream, batch after batch ([`crate::outbox::relay`]), then waits for
//! `NOTIFY outbox` or the poll. While the stream does not serve, it backs
//! off as a whole (doubling from `OUTBOX_RETRY_BASE_MS` up to
//! [`MAX_OUTAGE_WAIT`]), spending no row's attempts.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::{Wakeup, Worker};
use crate::outbox::relay::{self, EventSink, POLL_EVERY, RelayConfig, StreamSink};
use crate::redis_conn::RedisConn;
use crate::store::outbox::CHANNEL;

/// Longest wait between two tries while the stream does not serve.
pub const MAX_OUTAGE_WAIT: Duration = Duration::from_secs(5);

/// The relay of one process, writing to `S` (the event stream).
pub struct Relay<S: EventSink = StreamSink> {
    db: DatabaseConnection,
    sink: S,
    config: RelayConfig,
    wakeup: Wakeup,
    /// Consecutive runs that met an outage.
    outages: i32,
}

impl Relay {
    /// A relay publishing to the stream `config` names.
    pub fn new(db: DatabaseConnection, redis: RedisConn, config: RelayConfig) -> Self {
        Self::with_sink(db, StreamSink::new(redis, config.clone()), config)
    }
}

impl<S: EventSink + 'static> Relay<S> {
    /// A relay writing to `sink` (tests wrap the stream to inject failures).
    pub fn with_sink(db: DatabaseConnection, sink: S, config: RelayConfig) -> Self {
        Self {
            db,
            sink,
            config,
            wakeup: Wakeup::new(CHANNEL, POLL_EVERY),
            outages: 0,
        }
    }
}

impl<S: EventSink + 'static> Worker for Relay<S> {
    const NAME: &'static str = "outbox-relay";

    async fn run_once(&mut self, stop: &CancellationToken) -> Result<(), String> {
        // Each batch changes at least one row, so this ends with the backlog.
        while !stop.is_cancelled() {
            match relay::relay_batch(&self.db, &self.sink, &self.config).await {
                Ok(done) if done == relay::Relayed::default() => break,
                Ok(_) => self.outages = 0,
                Err(e) => {
                    if matches!(e, crate::error::AppError::Unavailable(_)) {
                        self.outages = self.outages.saturating_add(1);
                    }
                    return Err(e.into_cause());
                }
            }
        }
        self.outages = 0;
        Ok(())
    }

    async fn wait(&mut self) {
        if self.outages > 0 {
            let delay = relay::backoff(self.config.retry_base, self.outages).min(MAX_OUTAGE_WAIT);
            tokio::time::sleep(delay).await;
            return;
        }
        self.wakeup.wait(&self.db).await;
    }
}
