//! The `snapshot-refresh` worker: keeps this process's pricing snapshot and
//! coupon cache fresh from the notifications on `promotions_changed`
//! ([`crate::store::changes`]). Each batch of notifications reloads the
//! promotions and campaigns it names ([`Pricing::apply`]) and forgets the
//! coupons it names, so a change costs what it touches.
//!
//! The whole snapshot is reloaded ([`Pricing::reload`]) only when a change
//! may have been missed: the pricing versions of the notifications skip
//! one, a notification cannot be read, or the version check disagrees. The
//! check is one row read: after (re)listening, and every [`CHECK_EVERY`]
//! without notifications. A database ahead of the snapshot right after
//! listening means changes went by unheard; ahead at a periodic check, it
//! may be a commit whose notification is on its way, so it reloads only if
//! that version has not arrived [`GRACE`] later. A database behind the
//! snapshot (restored) reloads at once.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::Worker;
use crate::pricing::Pricing;
use crate::store::changes::{self, CHANNEL, Notice, Priced};

/// How often the pricing version is checked while no notification comes.
pub const CHECK_EVERY: Duration = Duration::from_secs(10);
/// How long a version the check saw ahead may take to be notified.
pub const GRACE: Duration = Duration::from_secs(5);
/// The pause before trying again after a failure.
const RETRY: Duration = Duration::from_secs(1);

/// The work the notifications (and checks) asked for, not done yet.
#[derive(Debug, Default, PartialEq, Eq)]
struct Work {
    /// Reload everything: a change may have been missed.
    reload: bool,
    /// Check the pricing version: `Some(true)` right after listening.
    check: Option<bool>,
    promotions: BTreeSet<Uuid>,
    campaigns: BTreeSet<Uuid>,
    /// The highest pricing version among the notices taken.
    version: i64,
    forget_all_coupons: bool,
    forget_coupons: BTreeSet<String>,
}

impl Work {
    /// Takes one notification; `held` is the snapshot's pricing version.
    fn take(&mut self, payload: &str, held: i64) {
        match Notice::parse(payload) {
            None => {
                tracing::warn!(
                    payload,
                    "a promotion change notification this version cannot read; reloading all"
                );
                self.reload = true;
                self.forget_all_coupons = true;
            }
            Some(Notice::Coupons) => self.forget_all_coupons = true,
            Some(Notice::Coupon(code)) => {
                self.forget_coupons.insert(code);
            }
            // Already in the snapshot.
            Some(Notice::Priced { version, .. }) if version <= held => {}
            Some(Notice::Priced { version, change }) => {
                if version > self.version.max(held) + 1 {
                    tracing::warn!(
                        version,
                        held = self.version.max(held),
                        "promotion change notifications skipped a version; reloading all"
                    );
                    self.reload = true;
                }
                self.version = self.version.max(version);
                match change {
                    Priced::Promotion(id) => {
                        self.promotions.insert(id);
                    }
                    Priced::Campaign(id) => {
                        self.campaigns.insert(id);
                    }
                    Priced::All => self.reload = true,
                }
            }
        }
    }

    /// What the version check found: the database's version `current`, the
    /// snapshot's `held`; `ahead` is the version a previous check found
    /// ahead, if any. Returns the version to remember as ahead.
    fn checked(&mut self, after_listening: bool, current: i64, held: i64, ahead: Option<i64>) -> Option<i64> {
        if current == held {
            return None;
        }
        let unheard = after_listening || current < held || ahead.is_some_and(|seen| held < seen);
        if unheard {
            tracing::warn!(
                current,
                held,
                "the pricing version disagrees with the snapshot's; reloading all"
            );
            self.reload = true;
            return None;
        }
        Some(current)
    }
}

/// Refreshes one process's snapshot.
pub struct SnapshotRefresh {
    pricing: Arc<Pricing>,
    listener: Option<PgListener>,
    work: Work,
    /// A version the last check found ahead of the snapshot.
    ahead: Option<i64>,
}

impl SnapshotRefresh {
    /// Refreshes `pricing`'s snapshot, starting by listening.
    pub fn new(pricing: Arc<Pricing>) -> Self {
        Self {
            pricing,
            listener: None,
            work: Work::default(),
            ahead: None,
        }
    }

    async fn listen(&mut self) -> Result<(), String> {
        let mut listener = PgListener::connect_with(self.pricing.db().get_postgres_connection_pool())
            .await
            .map_err(|e| format!("cannot connect to LISTEN for promotion changes: {e}"))?;
        listener
            .listen(CHANNEL)
            .await
            .map_err(|e| format!("cannot LISTEN for promotion changes: {e}"))?;
        self.listener = Some(listener);
        Ok(())
    }

    async fn check(&mut self, after_listening: bool) -> Result<(), String> {
        let current = changes::version(self.pricing.db())
            .await
            .map_err(|e| format!("cannot read the pricing version: {e}"))?;
        let held = self.pricing.snapshot().version();
        self.ahead = self.work.checked(after_listening, current, held, self.ahead);
        Ok(())
    }
}

impl Worker for SnapshotRefresh {
    const NAME: &'static str = "snapshot-refresh";

    async fn run_once(&mut self, _stop: &CancellationToken) -> Result<(), String> {
        if self.listener.is_none() {
            self.listen().await?;
            // What changed while nobody listened is unknown.
            self.work.forget_all_coupons = true;
            self.work.check = Some(true);
        }
        if std::mem::take(&mut self.work.forget_all_coupons) {
            self.pricing.forget_coupons();
            self.work.forget_coupons.clear();
        }
        for code in std::mem::take(&mut self.work.forget_coupons) {
            self.pricing.forget_coupon(&code);
        }
        if let Some(after_listening) = self.work.check {
            self.check(after_listening).await?;
            self.work.check = None;
        }
        let work = &self.work;
        let done = if work.reload {
            self.pricing.reload().await
        } else if !(work.promotions.is_empty() && work.campaigns.is_empty()) {
            let promotions: Vec<Uuid> = work.promotions.iter().copied().collect();
            let campaigns: Vec<Uuid> = work.campaigns.iter().copied().collect();
            self.pricing.apply(&promotions, &campaigns, work.version).await
        } else {
            Ok(())
        };
        done.map_err(|e| format!("snapshot update failed; keeping the previous one: {}", e.into_cause()))?;
        self.work = Work::default();
        Ok(())
    }

    async fn wait(&mut self) {
        let pending = self.work != Work::default();
        let Some(listener) = self.listener.as_mut().filter(|_| !pending) else {
            // Not listening, or a step failed: try again shortly.
            tokio::time::sleep(RETRY).await;
            return;
        };
        let timeout = if self.ahead.is_some() { GRACE } else { CHECK_EVERY };
        match tokio::time::timeout(timeout, listener.try_recv()).await {
            Ok(Ok(Some(first))) => {
                let held = self.pricing.snapshot().version();
                self.work.take(first.payload(), held);
                while let Some(more) = listener.next_buffered() {
                    self.work.take(more.payload(), held);
                }
            }
            // The connection dropped: listen again, then check.
            Ok(Ok(None)) => self.listener = None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "promotion change listener failed; listening again");
                self.listener = None;
            }
            Err(_) => self.work.check = Some(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn promotion(version: i64, n: u128) -> String {
        format!("{version} promotion {}", Uuid::from_u128(n))
    }

    #[test]
    fn notices_up_to_the_held_version_are_skipped_and_the_rest_gathered() {
        let mut work = Work::default();
        work.take(&promotion(4, 1), 5);
        work.take(&promotion(5, 2), 5);
        assert_eq!(work, Work::default(), "already in the snapshot");
        work.take(&promotion(6, 3), 5);
        work.take(&promotion(6, 4), 5);
        work.take(&format!("7 campaign {}", Uuid::from_u128(9)), 5);
        work.take("coupon SAVE-10", 5);
        assert!(!work.reload);
        assert_eq!(work.version, 7);
        assert_eq!(
            work.promotions,
            BTreeSet::from([Uuid::from_u128(3), Uuid::from_u128(4)])
        );
        assert_eq!(work.campaigns, BTreeSet::from([Uuid::from_u128(9)]));
        assert_eq!(work.forget_coupons, BTreeSet::from(["SAVE-10".to_owned()]));
    }

    #[test]
    fn a_skipped_version_a_truncate_or_an_unreadable_payload_reloads_all() {
        let mut gap = Work::default();
        gap.take(&promotion(6, 1), 5);
        gap.take(&promotion(8, 2), 5);
        assert!(gap.reload);
        let mut first_gap = Work::default();
        first_gap.take(&promotion(7, 1), 5);
        assert!(first_gap.reload);
        let mut truncated = Work::default();
        truncated.take("6 all", 5);
        assert!(truncated.reload);
        let mut unreadable = Work::default();
        unreadable.take("promotions", 5);
        assert!(unreadable.reload && unreadable.forget_all_coupons);
    }

    #[test]
    fn the_version_check_reloads_when_changes_went_unheard() {
        let mut work = Work::default();
        assert_eq!(work.checked(false, 5, 5, None), None);
        assert_eq!(work.checked(false, 7, 5, None), Some(7), "maybe in flight: wait");
        assert!(!work.reload);
        assert_eq!(work.checked(false, 7, 7, Some(7)), None, "it arrived");
        assert!(!work.reload);
        assert_eq!(work.checked(false, 8, 6, Some(7)), None, "7 never arrived");
        assert!(work.reload);
        for (after_listening, current, held) in [(true, 6, 5), (false, 4, 5)] {
            let mut work = Work::default();
            work.checked(after_listening, current, held, None);
            assert!(work.reload, "{after_listening} {current} {held}");
        }
    }
}
