//! The `outbox-relay` worker: drains the due outbox rows to the event
//! stream, batch after batch ([`crate::outbox::relay`]), then waits for
//! `NOTIFY outbox` or the poll.

use crate::redis_conn::RedisConn;
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;

use super::{Wakeup, Worker};
use crate::outbox::relay::{self, POLL_EVERY, RelayConfig};
use crate::store::outbox::CHANNEL;

/// The relay of one process.
pub struct Relay {
    db: DatabaseConnection,
    redis: RedisConn,
    config: RelayConfig,
    wakeup: Wakeup,
}

impl Relay {
    /// A relay publishing to the stream `config` names.
    pub fn new(db: DatabaseConnection, redis: RedisConn, config: RelayConfig) -> Self {
        Self {
            db,
            redis,
            config,
            wakeup: Wakeup::new(CHANNEL, POLL_EVERY),
        }
    }
}

impl Worker for Relay {
    const NAME: &'static str = "outbox-relay";

    async fn run_once(&mut self, stop: &CancellationToken) -> Result<(), String> {
        // Each batch publishes at least one row, so this ends with the backlog.
        while !stop.is_cancelled() {
            match relay::relay_batch(&self.db, &self.redis, &self.config).await {
                Ok(0) => break,
                Ok(_) => continue,
                Err(e) => return Err(e.into_cause()),
            }
        }
        Ok(())
    }

    async fn wait(&mut self) {
        self.wakeup.wait(&self.db).await;
    }
}
