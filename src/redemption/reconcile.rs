//! Background reconciliation of usage.
//!
//! - Stored counts (`promotions.redemption_count`, `discount_total`,
//!   `coupons.times_used`) are recomputed from the counted redemptions of
//!   whatever an apply or release touched, in batches, off the checkout path
//!   (the checkout transaction updates no hot row).
//! - Reservations whose order never committed (a crash between reserving
//!   and recording) are given back once they are older than
//!   [`PENDING_GRACE`]; pending entries of committed orders are cleared.
//! - A promotion's total counter that disagrees with PostgreSQL while no
//!   reservation is in flight is dropped, to be reseeded on next use.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::Utc;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::pools::{Pool, Pools, Scope, pending_slots};
use crate::domain::engine::PricedCart;
use crate::pricing::Pricing;
use crate::store::redemptions;
use crate::workers::Workers;

/// How long a reservation may stay uncommitted before it is given back.
pub const PENDING_GRACE: Duration = Duration::from_secs(60);
/// How often stale reservations are looked for.
const SWEEP_EVERY: Duration = Duration::from_secs(15);
/// How often touched counts are written.
const FLUSH_EVERY: Duration = Duration::from_millis(200);
/// Most pending entries looked at per promotion and sweep.
const SWEEP_BATCH: usize = 500;

/// The usage reconciler of one process.
pub struct Reconciler {
    db: DatabaseConnection,
    pools: Pools,
    dirty: Mutex<(HashSet<Uuid>, HashSet<Uuid>)>,
}

impl Reconciler {
    /// Starts the reconciler's task (it ends when the reconciler is dropped).
    pub fn start(db: DatabaseConnection, pools: Pools, pricing: Arc<Pricing>, workers: Arc<Workers>) -> Arc<Self> {
        let reconciler = Arc::new(Self {
            db,
            pools,
            dirty: Mutex::new(Default::default()),
        });
        tokio::spawn(run(Arc::downgrade(&reconciler), pricing, workers));
        reconciler
    }

    /// Notes the promotions and coupons whose stored counts changed.
    pub fn touch(&self, cart: &PricedCart) {
        let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
        for applied in &cart.applied {
            dirty.0.insert(applied.promotion_id);
            if let Some(c) = applied.coupon_id {
                dirty.1.insert(c);
            }
        }
    }

    /// Writes the counts of everything touched since the last flush.
    pub async fn flush(&self) {
        let (promotions, coupons) = {
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            (dirty.0.drain().collect::<Vec<_>>(), dirty.1.drain().collect::<Vec<_>>())
        };
        if promotions.is_empty() && coupons.is_empty() {
            return;
        }
        if let Err(e) = redemptions::reconcile_counts(&self.db, &promotions, &coupons).await {
            tracing::warn!(error = ?e, "reconciling usage counts failed; retrying later");
            let mut dirty = self.dirty.lock().unwrap_or_else(|p| p.into_inner());
            dirty.0.extend(promotions);
            dirty.1.extend(coupons);
        }
    }

    /// Gives back reservations older than `grace` whose order never
    /// committed, then repairs total counters that drifted from PostgreSQL.
    pub async fn sweep(&self, promotions: &[Uuid], grace: Duration) {
        self.give_back_stale(promotions, grace).await;
        for promotion in promotions {
            if let Err(e) = self.repair_total(*promotion).await {
                tracing::warn!(error = ?e, promotion.id = %promotion, "checking a usage counter failed");
            }
        }
    }

    /// When a promotion has no reservation in flight and its total pool in
    /// Redis disagrees with PostgreSQL's slots (a give-back that failed, a
    /// partial restore), drops the pool: the next use reseeds it.
    async fn repair_total(&self, promotion: Uuid) -> crate::error::AppResult<()> {
        if !self.pools.stale_pending(promotion, i64::MAX, 1).await?.is_empty() {
            return Ok(());
        }
        let pool = Pool {
            scope: Scope::Promotion,
            owner: promotion,
            customer: None,
            limit: 0,
        };
        let Some(live) = self
            .pools
            .counts(promotion, std::slice::from_ref(&pool))
            .await?
            .pop()
            .flatten()
        else {
            return Ok(());
        };
        let stored = redemptions::used_slots(&self.db, Scope::Promotion.as_str(), promotion, "")
            .await?
            .len() as i64;
        if live != stored {
            tracing::warn!(promotion.id = %promotion, live, stored, "usage counter drifted; reseeding it from PostgreSQL");
            self.pools.forget(promotion, &pool).await?;
        }
        Ok(())
    }

    async fn give_back_stale(&self, promotions: &[Uuid], grace: Duration) {
        let before = Utc::now().timestamp() - grace.as_secs() as i64;
        for promotion in promotions {
            let stale = match self.pools.stale_pending(*promotion, before, SWEEP_BATCH).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = ?e, "looking for stale reservations failed");
                    return;
                }
            };
            for (order, value) in stale {
                let outcome = match redemptions::is_redeemed(&self.db, &order).await {
                    Ok(true) => self.pools.confirm(*promotion, &order).await,
                    Ok(false) => {
                        tracing::info!(order.id = %order, promotion.id = %promotion, "giving back an uncommitted reservation");
                        self.pools
                            .release_named(*promotion, &order, &pending_slots(&value))
                            .await
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = outcome {
                    tracing::warn!(error = ?e, order.id = %order, "reconciling a reservation failed");
                }
            }
        }
    }
}

/// The worker's name.
pub const NAME: &str = "usage-reconciler";

async fn run(reconciler: Weak<Reconciler>, pricing: Arc<Pricing>, workers: Arc<Workers>) {
    workers.started(NAME);
    let mut since_sweep = Duration::ZERO;
    loop {
        tokio::time::sleep(FLUSH_EVERY).await;
        let Some(r) = reconciler.upgrade() else {
            workers.stopped(NAME);
            return;
        };
        r.flush().await;
        since_sweep += FLUSH_EVERY;
        if since_sweep >= SWEEP_EVERY {
            since_sweep = Duration::ZERO;
            let limited: Vec<Uuid> = pricing.snapshot().limited_promotions();
            r.sweep(&limited, PENDING_GRACE).await;
            workers.ran(NAME, Ok(()));
        }
    }
}
