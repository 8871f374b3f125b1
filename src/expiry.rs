//! Time-driven housekeeping, each step a function of `now` (so tests control
//! time) run by the `housekeeping` worker:
//!
//! - expiry: promotions and coupons whose window closed get one
//!   `promotion.expired` / `coupon.expired` event each; campaigns past their
//!   end move to ENDED (`campaign.status_changed`). Batches are bounded and
//!   claimed with SKIP LOCKED, so replicas share the work.
//! - retention: PUBLISHED outbox rows older than the retention are deleted.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::outbox::events::Expiry;
use crate::outbox::{self, Event, EventType};
use crate::store::{self, Change};

/// Rows handled per statement.
const BATCH: i64 = 500;

/// What one expiry pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expired {
    pub promotions: usize,
    pub coupons: usize,
    pub campaigns: usize,
}

async fn claim(db: &impl ConnectionTrait, sql: &str, now: DateTime<Utc>) -> AppResult<Vec<(Uuid, serde_json::Value)>> {
    Ok(db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            [now.into(), BATCH.into()],
        ))
        .await?
        .iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "payload")?)))
        .collect::<Result<_, sea_orm::DbErr>>()?)
}

/// Announces expiries and ends campaigns due at `now` (one bounded batch of each).
#[tracing::instrument(skip_all)]
pub async fn expire(db: &DatabaseConnection, now: DateTime<Utc>) -> AppResult<Expired> {
    let txn = db.begin().await?;
    let promotions = claim(
        &txn,
        "UPDATE promotions p SET expiry_announced_at = $1 FROM (
             SELECT id FROM promotions WHERE expiry_announced_at IS NULL AND ends_at <= $1
             ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE p.id = due.id
         RETURNING p.id, jsonb_build_object('id', p.id, 'name', p.name, 'endsAt', p.ends_at) AS payload",
        now,
    )
    .await?;
    let coupons = claim(
        &txn,
        "UPDATE coupons c SET expiry_announced_at = $1 FROM (
             SELECT id FROM coupons WHERE expiry_announced_at IS NULL AND expires_at <= $1
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE c.id = due.id
         RETURNING c.id, jsonb_build_object('id', c.id, 'code', c.code, 'promotionId', c.promotion_id, 'expiresAt', c.expires_at) AS payload",
        now,
    )
    .await?;
    let campaigns = claim(
        &txn,
        "UPDATE campaigns c SET status = 'ENDED', updated_at = $1 FROM (
             SELECT id FROM campaigns WHERE status <> 'ENDED' AND ends_at <= $1
             ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE c.id = due.id
         RETURNING c.id, jsonb_build_object('id', c.id, 'name', c.name, 'status', c.status, 'endsAt', c.ends_at) AS payload",
        now,
    )
    .await?;
    // The SQL builds each payload; the typed [`Expiry`] checks its shape.
    let typed = |payload: &serde_json::Value| {
        serde_json::from_value::<Expiry>(payload.clone())
            .map_err(|e| AppError::Internal(format!("an expiry payload does not fit its type: {e}")))
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
    if !campaigns.is_empty() {
        store::notify_change(&txn, Change::Promotions).await?;
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
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM outbox_events WHERE id IN (
                 SELECT id FROM outbox_events WHERE status = 'PUBLISHED' AND published_at < $1 LIMIT $2)",
            [before.into(), (BATCH * 10).into()],
        ))
        .await?;
    Ok(done.rows_affected())
}
