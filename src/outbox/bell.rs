//! The checkout's way to wake the relays: after a commit that recorded
//! events ([`super::record`]), [`Bell::ring`] asks for one `NOTIFY outbox`,
//! sent from a task of its own outside any checkout transaction. Rings that
//! arrive while one is pending share it, and notifications are at least
//! [`INTERVAL`] apart, so a burst of orders costs a replica at most one
//! NOTIFY per interval instead of one serialised notifying commit per order.
//! A ring is never lost: one that arrives after the pending NOTIFY was
//! taken leads to the next. The relay's poll bounds the delay if the
//! process dies before the NOTIFY.

use std::time::Duration;

use sea_orm::DatabaseConnection;
use tokio::sync::mpsc;

/// The least time between two notifications from one process.
pub const INTERVAL: Duration = Duration::from_millis(5);

/// A handle that wakes the relays; cheap to clone. Its task ends when the
/// last handle is dropped.
#[derive(Clone, Debug)]
pub struct Bell {
    rings: mpsc::Sender<()>,
}

impl Bell {
    /// Starts the task that sends the notifications on `db`.
    pub fn start(db: DatabaseConnection) -> Self {
        let (rings, mut rung) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            while rung.recv().await.is_some() {
                tokio::time::sleep(INTERVAL).await;
                // Everything rung until now is committed: one NOTIFY covers it.
                while rung.try_recv().is_ok() {}
                if let Err(e) = crate::store::outbox::wake_relays(&db).await {
                    tracing::warn!(error = %e, "waking the outbox relays failed; their poll publishes the events");
                }
            }
        });
        Self { rings }
    }

    /// Asks for a notification (call after the commit); never waits.
    pub fn ring(&self) {
        // Full: a notification is already pending and covers this ring.
        let _ = self.rings.try_send(());
    }
}
