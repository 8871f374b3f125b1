//! Time-driven housekeeping, each step a function of `now` (so tests control
//! time) run by the `housekeeping` worker:
//!
//! - expiry: promotions and coupons whose window closed get one
//!   `promotion.expired` / `coupon.expired` event each; campaigns past their
//!   end move to ENDED (`campaign.status_changed`). Batches are bounded and
//!   claimed with SKIP LOCKED, so replicas share the work.
//! - retention: PUBLISHED outbox rows older than the retention are deleted.

use chrono::{DateTime, Utc};
use sea_orm::{DatabaseConnection, TransactionTrait};

use crate::error::{AppError, AppResult};
use crate::outbox::events::Expiry;
use crate::outbox::{self, Event, EventType};
use crate::store;
use crate::store::expiry::{self as due, Due};

/// Rows handled per statement.
const BATCH: i64 = 500;

/// What one expiry pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expired {
    pub promotions: usize,
    pub coupons: usize,
    pub campaigns: usize,
}

/// Announces expiries and ends campaigns due at `now` (one bounded batch of each).
#[tracing::instrument(skip_all)]
pub async fn expire(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<Expired> {
    let txn = db.begin().await?;
    let promotions = due::claim(&txn, Due::PromotionExpiries, now, BATCH).await?;
    let coupons = due::claim(&txn, Due::CouponExpiries, now, BATCH).await?;
    let campaigns = due::claim(&txn, Due::CampaignEnds, now, BATCH).await?;
    // The SQL builds each payload; the typed [`Expiry`] checks its shape.
    let typed = |payload: &serde_json::Value| {
        serde_json::from_value::<Expiry>(payload.clone())
            .map_err(|e| AppError::internal_from("an expiry payload does not fit its type", e))
    };
    for (id, payload) in &promotions {
        outbox::enqueue(
            &txn,
            Event::new(EventType::PromotionExpired, id, &typed(payload)?)?,
            now,
        )
        .await?;
    }
    for (id, payload) in &coupons {
        outbox::enqueue(&txn, Event::new(EventType::CouponExpired, id, &typed(payload)?)?, now).await?;
    }
    for (id, payload) in &campaigns {
        outbox::enqueue(
            &txn,
            Event::new(EventType::CampaignStatusChanged, id, &typed(payload)?)?,
            now,
        )
        .await?;
    }
    txn.commit().await?;
    Ok(Expired {
        promotions: promotions.len(),
        coupons: coupons.len(),
        campaigns: campaigns.len(),
    })
}

/// Deletes PUBLISHED outbox rows published before `before` (one bounded batch).
pub async fn prune_outbox(db: &DatabaseConnection, before: DateTime<Utc>) -> AppResult<u64> {
    Ok(store::outbox::prune_published(db, before, BATCH * 10).await?)
}
