//! Coupon and coupon batch rows.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::UniqueKey;
use super::entities::coupon;
use super::page::{self, Page, PageRequest};
use crate::domain::coupon::{Coupon, CouponDefinition};
use crate::domain::validation::Window;
use crate::error::{AppError, AppResult};

/// Codes are unique across the service.
const CODE_KEY: UniqueKey = UniqueKey {
    constraint: "coupons_code_key",
    field: "input.code",
};

/// Which coupons a page lists.
#[derive(Debug, Clone, Copy)]
pub enum CouponOwner {
    /// The coupons of a promotion.
    Promotion(Uuid),
    /// The coupons a batch generated.
    Batch(Uuid),
}

fn decode(row: coupon::Model) -> Coupon {
    Coupon {
        id: row.id,
        promotion_id: row.promotion_id,
        batch_id: row.batch_id,
        definition: CouponDefinition {
            code: row.code,
            usage_limit: row.usage_limit,
            usage_limit_per_customer: row.usage_limit_per_customer,
            window: Window {
                starts_at: row.starts_at,
                ends_at: row.expires_at,
            },
        },
        active: row.active,
        times_used: row.times_used,
        created_at: row.created_at,
    }
}

/// Inserts an active coupon; a taken code is CONFLICT on `input.code`.
#[tracing::instrument(skip_all, fields(coupon.id = %id, promotion.id = %promotion_id))]
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    promotion_id: Uuid,
    def: &CouponDefinition,
    now: DateTime<Utc>,
) -> AppResult<Coupon> {
    let row = coupon::ActiveModel {
        id: Set(id),
        code: Set(def.code.clone()),
        promotion_id: Set(promotion_id),
        batch_id: Set(None),
        active: Set(true),
        usage_limit: Set(def.usage_limit),
        usage_limit_per_customer: Set(def.usage_limit_per_customer),
        times_used: Set(0),
        starts_at: Set(def.window.starts_at),
        expires_at: Set(def.window.ends_at),
        created_at: Set(now),
    }
    .insert(db)
    .await
    .map_err(|err| super::conflict_on(err, &[CODE_KEY], || format!("the code {} is already taken", def.code)))?;
    Ok(decode(row))
}

/// Switches a coupon on or off by code.
#[tracing::instrument(skip_all)]
pub async fn set_active(db: &impl ConnectionTrait, code: &str, active: bool) -> AppResult<Option<Coupon>> {
    let rows = coupon::Entity::update_many()
        .col_expr(coupon::Column::Active, Expr::value(active))
        .filter(coupon::Column::Code.eq(code))
        .exec_with_returning(db)
        .await?;
    Ok(rows.into_iter().next().map(decode))
}

/// A coupon by its normalised code, locked for an update in this transaction.
pub async fn find_for_update(db: &impl ConnectionTrait, code: &str) -> AppResult<Option<Coupon>> {
    use sea_orm::QuerySelect;
    Ok(coupon::Entity::find()
        .filter(coupon::Column::Code.eq(code))
        .lock_exclusive()
        .one(db)
        .await?
        .map(decode))
}

/// Writes a coupon's limits and window (a limit change counts as the
/// migration `count_usage` says).
#[tracing::instrument(skip_all, fields(coupon.id = %id))]
pub async fn update_terms(db: &impl ConnectionTrait, id: Uuid, def: &CouponDefinition) -> AppResult<Coupon> {
    let rows = coupon::Entity::update_many()
        .col_expr(coupon::Column::UsageLimit, Expr::value(def.usage_limit))
        .col_expr(
            coupon::Column::UsageLimitPerCustomer,
            Expr::value(def.usage_limit_per_customer),
        )
        .col_expr(coupon::Column::StartsAt, Expr::value(def.window.starts_at))
        .col_expr(coupon::Column::ExpiresAt, Expr::value(def.window.ends_at))
        .filter(coupon::Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    rows.into_iter()
        .next()
        .map(decode)
        .ok_or_else(|| AppError::internal(format!("coupon {id} vanished while locked")))
}

/// A coupon by its normalised code.
pub async fn find_by_code(db: &impl ConnectionTrait, code: &str) -> AppResult<Option<Coupon>> {
    Ok(coupon::Entity::find()
        .filter(coupon::Column::Code.eq(code))
        .one(db)
        .await?
        .map(decode))
}

/// A page of a promotion's or a batch's coupons, newest first.
pub async fn list(db: &impl ConnectionTrait, owner: CouponOwner, page: PageRequest) -> AppResult<Page<Coupon>> {
    let select = match owner {
        CouponOwner::Promotion(id) => coupon::Entity::find().filter(coupon::Column::PromotionId.eq(id)),
        CouponOwner::Batch(id) => coupon::Entity::find().filter(coupon::Column::BatchId.eq(id)),
    };
    page::fetch(db, select, coupon::Column::Id, page)
        .await?
        .try_map(|r| Ok(decode(r)))
}
