//! The `snapshot-refresh` worker: keeps this process's pricing snapshot
//! fresh. It listens on `promotions_changed` (sent in every changing
//! transaction): a burst of notifications settles into one rebuild, a
//! coupon change forgets the cached coupons, and a lost connection (what
//! changed meanwhile is unknown) does both. Every
//! [`REFRESH_EVERY`] without a notification
//! it rebuilds anyway, as a safety net.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::Worker;
use crate::pricing::{Pricing, REFRESH_EVERY};
use crate::store::{CHANGES_CHANNEL, Change};

/// How long a burst of changes may settle before the rebuild.
const SETTLE: Duration = Duration::from_millis(20);
/// The pause before listening again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// What the next step does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Due {
    /// Listen (again); then rebuild and forget: changes may have been missed.
    Listen,
    /// Rebuild the snapshot, forget the cached coupons, or both.
    Apply { rebuild: bool, forget: bool },
}

/// Refreshes one process's snapshot.
pub struct SnapshotRefresh {
    pricing: Arc<Pricing>,
    listener: Option<PgListener>,
    due: Due,
}

impl SnapshotRefresh {
    /// Refreshes `pricing`'s snapshot, starting by listening.
    pub fn new(pricing: Arc<Pricing>) -> Self {
        Self {
            pricing,
            listener: None,
            due: Due::Listen,
        }
    }

    async fn listen(&mut self) -> Result<(), String> {
        let mut listener = PgListener::connect_with(self.pricing.db().get_postgres_connection_pool())
            .await
            .map_err(|e| format!("cannot connect to LISTEN for promotion changes: {e}"))?;
        listener
            .listen(CHANGES_CHANNEL)
            .await
            .map_err(|e| format!("cannot LISTEN for promotion changes: {e}"))?;
        self.listener = Some(listener);
        Ok(())
    }
}

impl Worker for SnapshotRefresh {
    const NAME: &'static str = "snapshot-refresh";

    async fn run_once(&mut self, _stop: &CancellationToken) -> Result<(), String> {
        let (rebuild, forget) = match self.due {
            Due::Listen => {
                self.listen().await?;
                (true, true)
            }
            Due::Apply { rebuild, forget } => (rebuild, forget),
        };
        self.due = Due::Apply {
            rebuild: false,
            forget: false,
        };
        if forget {
            self.pricing.forget_coupons();
        }
        if rebuild {
            self.pricing
                .reload()
                .await
                .map_err(|e| format!("snapshot rebuild failed; keeping the previous one: {}", e.into_cause()))?;
        }
        Ok(())
    }

    async fn wait(&mut self) {
        let Some(listener) = self.listener.as_mut().filter(|_| self.due != Due::Listen) else {
            self.due = Due::Listen;
            tokio::time::sleep(RETRY).await;
            return;
        };
        self.due = match tokio::time::timeout(REFRESH_EVERY, listener.try_recv()).await {
            Ok(Ok(Some(first))) => {
                tokio::time::sleep(SETTLE).await;
                let mut payloads = vec![first.payload().to_owned()];
                while let Some(more) = listener.next_buffered() {
                    payloads.push(more.payload().to_owned());
                }
                Due::Apply {
                    rebuild: payloads.iter().any(|p| p != Change::Coupons.as_str()),
                    forget: payloads.iter().any(|p| p != Change::Promotions.as_str()),
                }
            }
            // The connection dropped (sqlx reconnects on the next call): what
            // changed meanwhile is unknown.
            Ok(Ok(None)) => Due::Apply {
                rebuild: true,
                forget: true,
            },
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "promotion change listener failed; listening again");
                self.listener = None;
                Due::Listen
            }
            Err(_) => Due::Apply {
                rebuild: true,
                forget: false,
            },
        };
    }
}
