//! The expiry's statements: what the clock closed at an instant, claimed
//! in bounded batches with SKIP LOCKED (so replicas share the work) and
//! marked in the same statement; each returns (id, payload) of what it took.

use chrono::{DateTime, Utc};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use uuid::Uuid;

use crate::error::AppResult;

/// What one statement took: ids with their event payloads.
pub type Claimed = Vec<(Uuid, serde_json::Value)>;

/// What the clock closes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Promotions whose window closed and were not announced yet: now announced.
    PromotionExpiries,
    /// Coupons whose window closed and were not announced yet: now announced.
    CouponExpiries,
    /// Campaigns past their end that are not ENDED: now ENDED.
    CampaignEnds,
}

impl Due {
    /// The statement: `$1` is the instant, `$2` the batch.
    fn sql(self) -> &'static str {
        match self {
            Due::PromotionExpiries => "UPDATE promotions p SET expiry_announced_at = $1 FROM (
             SELECT id FROM promotions WHERE expiry_announced_at IS NULL AND ends_at <= $1
             ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE p.id = due.id
         RETURNING p.id, jsonb_build_object('id', p.id, 'name', p.name, 'endsAt', p.ends_at) AS payload",
            Due::CouponExpiries => "UPDATE coupons c SET expiry_announced_at = $1 FROM (
             SELECT id FROM coupons WHERE expiry_announced_at IS NULL AND expires_at <= $1
             ORDER BY expires_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE c.id = due.id
         RETURNING c.id, jsonb_build_object('id', c.id, 'code', c.code, 'promotionId', c.promotion_id, 'expiresAt', c.expires_at) AS payload",
            Due::CampaignEnds => "UPDATE campaigns c SET status = 'ENDED', updated_at = $1 FROM (
             SELECT id FROM campaigns WHERE status <> 'ENDED' AND ends_at <= $1
             ORDER BY ends_at LIMIT $2 FOR UPDATE SKIP LOCKED) due
         WHERE c.id = due.id
         RETURNING c.id, jsonb_build_object('id', c.id, 'name', c.name, 'status', c.status, 'endsAt', c.ends_at) AS payload",
        }
    }
}

/// Claims and marks at most `batch` of what `due` names at `now`.
pub async fn claim(db: &impl ConnectionTrait, due: Due, now: DateTime<Utc>, batch: i64) -> AppResult<Claimed> {
    Ok(db
        .query_all_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            due.sql(),
            [now.into(), batch.into()],
        ))
        .await?
        .iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "payload")?)))
        .collect::<Result<_, sea_orm::DbErr>>()?)
}
