//! Redemption rows, their promotions and their usage slots, and the
//! reconciliation of the stored usage counts.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement, Value};
use uuid::Uuid;

use super::entities::redemption;
use crate::domain::engine::PricedCart;
use crate::error::{AppError, AppResult};

/// A redemption's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedemptionStatus {
    /// Counted.
    Redeemed,
    /// Given back; the order id is free again.
    Released,
}

/// A stored redemption.
#[derive(Debug, Clone)]
pub struct Redemption {
    pub id: Uuid,
    pub order_id: String,
    pub customer_id: Option<String>,
    pub status: RedemptionStatus,
    pub discount_total: i64,
    pub cart_hash: String,
    /// What the cart got, as returned to the checkout.
    pub result: PricedCart,
    pub created_at: DateTime<Utc>,
    pub released_at: Option<DateTime<Utc>>,
}

/// The message of the CONFLICT raised when PostgreSQL refuses a usage slot
/// (taken by another redemption, or above the limit): Redis was stale.
pub const SLOT_CLASH: &str = "usage slot clash";

/// A usage slot row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRow {
    pub scope: String,
    pub owner_id: Uuid,
    pub customer_id: String,
    pub slot: i32,
}

fn decode(row: redemption::Model) -> AppResult<Redemption> {
    let status = match row.status.as_str() {
        "REDEEMED" => RedemptionStatus::Redeemed,
        "RELEASED" => RedemptionStatus::Released,
        other => {
            return Err(AppError::corrupt_row(
                "redemptions",
                row.id,
                format!("status {other:?}"),
            ));
        }
    };
    let result: PricedCart =
        serde_json::from_value(row.result).map_err(|e| AppError::corrupt_row("redemptions", row.id, e))?;
    Ok(Redemption {
        id: row.id,
        order_id: row.order_id,
        customer_id: row.customer_id,
        status,
        discount_total: row.discount_total,
        cart_hash: row.cart_hash,
        result,
        created_at: row.created_at,
        released_at: row.released_at,
    })
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Serialises every apply and release of one order id until the caller's
/// transaction ends (a concurrent duplicate waits, then sees the first's result).
pub async fn lock_order(db: &impl ConnectionTrait, order_id: &str) -> AppResult<()> {
    db.execute_raw(statement(
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 7))",
        vec![order_id.into()],
    ))
    .await?;
    Ok(())
}

/// The counted (REDEEMED) redemption of an order, if any.
pub async fn find_redeemed(db: &impl ConnectionTrait, order_id: &str) -> AppResult<Option<Redemption>> {
    redemption::Entity::find()
        .filter(redemption::Column::OrderId.eq(order_id))
        .filter(redemption::Column::Status.eq("REDEEMED"))
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// The order's current redemption: the counted one, else the latest released one.
pub async fn find_latest(db: &impl ConnectionTrait, order_id: &str) -> AppResult<Option<Redemption>> {
    if let Some(r) = find_redeemed(db, order_id).await? {
        return Ok(Some(r));
    }
    redemption::Entity::find()
        .filter(redemption::Column::OrderId.eq(order_id))
        .order_by_desc(redemption::Column::CreatedAt)
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// What one applied promotion recorded.
pub struct RecordedPromotion {
    pub promotion_id: Uuid,
    pub coupon_id: Option<Uuid>,
    pub amount: i64,
}

/// Inserts a REDEEMED redemption with its promotions and slots.
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(order.id = order_id))]
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    order_id: &str,
    customer_id: Option<&str>,
    cart_hash: &str,
    result: &PricedCart,
    promotions: &[RecordedPromotion],
    slots: &[SlotRow],
    now: DateTime<Utc>,
) -> AppResult<Redemption> {
    let json = serde_json::to_value(result).map_err(|e| AppError::Internal(format!("redemption result: {e}")))?;
    // One statement for the redemption, its promotions and its slots: a
    // checkout's recording costs one round trip, not three.
    let sql = "WITH r AS (
            INSERT INTO redemptions (id, order_id, customer_id, status, currency, discount_total, cart_hash, result, created_at)
            VALUES ($1, $2, $3, 'REDEEMED', $4, $5, $6, $7, $8) RETURNING *
        ), p AS (
            INSERT INTO redemption_promotions (redemption_id, promotion_id, coupon_id, amount)
            SELECT $1, x.promotion_id, NULLIF(x.coupon_id, '')::uuid, x.amount
            FROM unnest($9::uuid[], $10::text[], $11::bigint[]) AS x(promotion_id, coupon_id, amount)
        ), s AS (
            INSERT INTO usage_slots (scope, owner_id, customer_id, slot, redemption_id)
            SELECT x.scope, x.owner_id, x.customer_id, x.slot, $1
            FROM unnest($12::text[], $13::uuid[], $14::text[], $15::int[]) AS x(scope, owner_id, customer_id, slot)
        )
        SELECT * FROM r";
    let values: Vec<Value> = vec![
        id.into(),
        order_id.into(),
        customer_id.map(str::to_owned).into(),
        result.currency.clone().into(),
        result.discount_total.into(),
        cart_hash.into(),
        json.into(),
        now.into(),
        promotions.iter().map(|p| p.promotion_id).collect::<Vec<_>>().into(),
        promotions
            .iter()
            .map(|p| p.coupon_id.map(|c| c.to_string()).unwrap_or_default())
            .collect::<Vec<_>>()
            .into(),
        promotions.iter().map(|p| p.amount).collect::<Vec<_>>().into(),
        slots.iter().map(|s| s.scope.clone()).collect::<Vec<_>>().into(),
        slots.iter().map(|s| s.owner_id).collect::<Vec<_>>().into(),
        slots.iter().map(|s| s.customer_id.clone()).collect::<Vec<_>>().into(),
        slots.iter().map(|s| s.slot).collect::<Vec<_>>().into(),
    ];
    let row = redemption::Entity::find()
        .from_raw_sql(statement(sql, values))
        .one(db)
        .await
        .map_err(|e| {
            let clash = matches!(e.sql_err(), Some(sea_orm::SqlErr::UniqueConstraintViolation(m)) if m.contains("usage_slots"))
                || e.to_string().contains("exceeds its limit");
            if clash { AppError::Conflict { field: None, message: SLOT_CLASH.to_owned() } } else { e.into() }
        })?
        .ok_or_else(|| AppError::Internal("inserting a redemption returned no row".into()))?;
    decode(row)
}

/// Releases the order's counted redemption: RELEASED, slots deleted (their
/// numbers are free again). Returns it with the freed slots, or None.
#[tracing::instrument(skip_all, fields(order.id = order_id))]
pub async fn release(
    db: &impl ConnectionTrait,
    order_id: &str,
    now: DateTime<Utc>,
) -> AppResult<Option<(Redemption, Vec<SlotRow>)>> {
    let rows = redemption::Entity::update_many()
        .col_expr(redemption::Column::Status, sea_orm::sea_query::Expr::value("RELEASED"))
        .col_expr(redemption::Column::ReleasedAt, sea_orm::sea_query::Expr::value(now))
        .filter(redemption::Column::OrderId.eq(order_id))
        .filter(redemption::Column::Status.eq("REDEEMED"))
        .exec_with_returning(db)
        .await?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let freed = db
        .query_all_raw(statement(
            "DELETE FROM usage_slots WHERE redemption_id = $1 RETURNING scope, owner_id, customer_id, slot",
            vec![row.id.into()],
        ))
        .await?
        .iter()
        .map(|r| {
            Ok(SlotRow {
                scope: r.try_get("", "scope")?,
                owner_id: r.try_get("", "owner_id")?,
                customer_id: r.try_get("", "customer_id")?,
                slot: r.try_get("", "slot")?,
            })
        })
        .collect::<Result<Vec<_>, sea_orm::DbErr>>()?;
    Ok(Some((decode(row)?, freed)))
}

/// The slot numbers a pool holds in PostgreSQL (at most its limit).
pub async fn used_slots(db: &impl ConnectionTrait, scope: &str, owner: Uuid, customer: &str) -> AppResult<Vec<i32>> {
    Ok(db
        .query_all_raw(statement(
            "SELECT slot FROM usage_slots WHERE scope = $1 AND owner_id = $2 AND customer_id = $3",
            vec![scope.into(), owner.into(), customer.into()],
        ))
        .await?
        .iter()
        .map(|r| r.try_get("", "slot"))
        .collect::<Result<_, _>>()?)
}

/// Whether the order has a counted redemption (for the reservation reconciler).
pub async fn is_redeemed(db: &impl ConnectionTrait, order_id: &str) -> AppResult<bool> {
    Ok(find_redeemed(db, order_id).await?.is_some())
}

/// Recomputes the stored usage counts of these promotions and coupons from
/// their counted redemptions (off the checkout path).
#[tracing::instrument(skip_all, fields(promotions = promotions.len(), coupons = coupons.len()))]
pub async fn reconcile_counts(db: &impl ConnectionTrait, promotions: &[Uuid], coupons: &[Uuid]) -> AppResult<()> {
    if !promotions.is_empty() {
        db.execute_raw(statement(
            "UPDATE promotions p SET redemption_count = s.n, discount_total = s.d
             FROM (SELECT id, (SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
                               WHERE rp.promotion_id = x.id AND r.status = 'REDEEMED')::int AS n,
                              (SELECT COALESCE(sum(rp.amount), 0) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
                               WHERE rp.promotion_id = x.id AND r.status = 'REDEEMED')::bigint AS d
                   FROM unnest($1::uuid[]) AS x(id)) s
             WHERE p.id = s.id AND (p.redemption_count, p.discount_total) IS DISTINCT FROM (s.n, s.d)",
            vec![promotions.to_vec().into()],
        ))
        .await?;
    }
    if !coupons.is_empty() {
        db.execute_raw(statement(
            "UPDATE coupons c SET times_used = s.n
             FROM (SELECT id, (SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
                               WHERE rp.coupon_id = x.id AND r.status = 'REDEEMED')::int AS n
                   FROM unnest($1::uuid[]) AS x(id)) s
             WHERE c.id = s.id AND c.times_used <> s.n",
            vec![coupons.to_vec().into()],
        ))
        .await?;
    }
    Ok(())
}
