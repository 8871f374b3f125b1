//! Background reconciliation of the stored usage counts
//! (`promotions.redemption_count`, `discount_total`, `coupons.times_used`):
//! recomputed from the counted redemptions of whatever an apply or release
//! touched, in batches, off the checkout path (the checkout transaction
//! updates no promotion or coupon row).
//!
//! Limits need no reconciliation: PostgreSQL counts them exactly in the
//! redemption's transaction, and Redis's copy of a count lives at most its
//! ttl (see [`crate::limits`]).

use std::collections::HashSet;
use std::sync::Mutex;

use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::domain::engine::PricedCart;
use crate::store::redemptions;

/// The usage reconciler of one process.
pub struct Reconciler {
    db: DatabaseConnection,
    dirty: Mutex<(HashSet<Uuid>, HashSet<Uuid>)>,
}

impl Reconciler {
    /// A reconciler with nothing touched yet; the `usage-reconciler`
    /// worker ([`crate::workers::reconciler`]) flushes it.
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            dirty: Mutex::new(Default::default()),
        }
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
}
