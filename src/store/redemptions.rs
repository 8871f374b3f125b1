//! Redemption rows and their promotions, the usage they count
//! (`usage_take` / `usage_give_back`, see [`super::usage`]), and the stored
//! usage counts (each apply and release writes its deltas; a fold adds them up).

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QueryOrder, Statement, TransactionTrait, Value,
};
use uuid::Uuid;

use super::entities::redemption;
use super::outbox::{self, NewEvent};
use super::redemption_result::StoredCart;
use super::usage;
use crate::domain::engine::PricedCart;
use crate::domain::usage::{Pool, pools_for};
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
    /// The client (token subject) that applied it; None: recorded before
    /// orders had owners, visible to every client.
    pub client_subject: Option<String>,
}

/// Whose orders a caller may see: one client's, or every client's (admin).
#[derive(Debug, Clone, Copy)]
pub enum Viewer<'a> {
    Client(&'a str),
    Everyone,
}

impl Viewer<'_> {
    /// Whether this viewer may see `redemption`.
    pub fn sees(&self, redemption: &Redemption) -> bool {
        match self {
            Viewer::Everyone => true,
            Viewer::Client(subject) => redemption
                .client_subject
                .as_deref()
                .is_none_or(|owner| owner == *subject),
        }
    }

    /// The condition on `redemptions` that keeps what this viewer may see.
    fn condition(&self) -> sea_orm::Condition {
        match self {
            Viewer::Everyone => sea_orm::Condition::all(),
            Viewer::Client(subject) => sea_orm::Condition::any()
                .add(redemption::Column::ClientSubject.eq(*subject))
                .add(redemption::Column::ClientSubject.is_null()),
        }
    }
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
    let result: PricedCart = serde_json::from_value::<StoredCart>(row.result)
        .map_err(|e| AppError::corrupt_row("redemptions", row.id, e))?
        .into();
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
        client_subject: row.client_subject,
    })
}

fn statement(sql: &str, values: Vec<Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

/// Serialises every apply and release of one order id until the caller's
/// transaction ends (a concurrent duplicate waits, then sees the first's result).
pub async fn lock_order(db: &impl ConnectionTrait, order_id: &str) -> AppResult<()> {
    db.execute_raw(statement("SELECT redemption_lock($1)", vec![order_id.into()]))
        .await?;
    Ok(())
}

/// Takes the order's lock (as [`lock_order`]) and returns its counted
/// redemption, read after the lock: one round trip.
pub async fn claim(db: &impl ConnectionTrait, order_id: &str) -> AppResult<Option<Redemption>> {
    redemption::Entity::find()
        .from_raw_sql(statement("SELECT * FROM redemption_claim($1)", vec![order_id.into()]))
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// The counted (REDEEMED) redemption of an order that `viewer` may see, if any.
pub async fn find_redeemed(
    db: &impl ConnectionTrait,
    order_id: &str,
    viewer: Viewer<'_>,
) -> AppResult<Option<Redemption>> {
    redemption::Entity::find()
        .filter(redemption::Column::OrderId.eq(order_id))
        .filter(redemption::Column::Status.eq("REDEEMED"))
        .filter(viewer.condition())
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// The order's current redemption that `viewer` may see: the counted one,
/// else the latest released one.
pub async fn find_latest(
    db: &impl ConnectionTrait,
    order_id: &str,
    viewer: Viewer<'_>,
) -> AppResult<Option<Redemption>> {
    if let Some(r) = find_redeemed(db, order_id, viewer).await? {
        return Ok(Some(r));
    }
    redemption::Entity::find()
        .filter(redemption::Column::OrderId.eq(order_id))
        .filter(viewer.condition())
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

/// Inserts a REDEEMED redemption with its promotions and its outbox
/// `event`, counting one use in each of their pools that has a limit in
/// force. `Ok(Err(pool))`: that pool is full (the statement failed: the
/// transaction must be rolled back).
#[allow(clippy::too_many_arguments)]
#[tracing::instrument(skip_all, fields(order.id = order_id))]
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    order_id: &str,
    client_subject: &str,
    customer_id: Option<&str>,
    cart_hash: &str,
    result: &PricedCart,
    promotions: &[RecordedPromotion],
    event: &NewEvent<'_>,
    now: DateTime<Utc>,
) -> AppResult<Result<Redemption, Pool>> {
    let pools = counted_pools(promotions.iter().map(|p| (p.promotion_id, p.coupon_id)), customer_id);
    let json =
        serde_json::to_value(StoredCart::from(result)).map_err(|e| AppError::internal_from("redemption result", e))?;
    // One statement for the redemption, its promotions, its usage and its
    // event: a checkout's recording costs one round trip.
    let sql = format!(
        "WITH r AS (
            INSERT INTO redemptions (id, order_id, customer_id, status, currency, discount_total, cart_hash, result, created_at, client_subject)
            VALUES ($1, $2, $3, 'REDEEMED', $4, $5, $6, $7, $8, $15) RETURNING *
        ), x AS (
            SELECT x.promotion_id, NULLIF(x.coupon_id, '')::uuid AS coupon_id, x.amount
            FROM unnest($9::uuid[], $10::text[], $11::bigint[]) AS x(promotion_id, coupon_id, amount)
        ), p AS (
            INSERT INTO redemption_promotions (redemption_id, promotion_id, coupon_id, amount)
            SELECT $1, promotion_id, coupon_id, amount FROM x
        ), d AS (
            INSERT INTO usage_deltas (promotion_id, coupon_id, uses, amount)
            SELECT promotion_id, coupon_id, 1, amount FROM x
        ), u AS (
            SELECT usage_take($12::text[], $13::uuid[], $14::text[]) AS taken
        ), o AS ({})
        SELECT r.* FROM r, u",
        outbox::insert_sql(16)
    );
    let [scopes, owners, customers] = usage::arrays(&pools);
    let mut values: Vec<Value> = vec![
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
        scopes,
        owners,
        customers,
        client_subject.into(),
    ];
    values.extend(event.values());
    let row = match redemption::Entity::find()
        .from_raw_sql(statement(&sql, values))
        .one(db)
        .await
    {
        Ok(row) => row.ok_or_else(|| AppError::internal("inserting a redemption returned no row"))?,
        Err(e) => {
            return match full_pool(&e).and_then(|i| pools.get(i)) {
                Some(pool) => Ok(Err(pool.clone())),
                None => Err(e.into()),
            };
        }
    };
    decode(row).map(Ok)
}

/// The index of the pool `usage_take` found full: its message is
/// "usage pool <i> is full" (1-based); sqlx gives only the message.
fn full_pool(error: &sea_orm::DbErr) -> Option<usize> {
    let message = error.to_string();
    let rest = &message[message.find("usage pool ")? + "usage pool ".len()..];
    let (number, tail) = rest.split_once(' ')?;
    tail.starts_with("is full")
        .then_some(number.parse::<usize>().ok()?.checked_sub(1)?)
}

/// The pools a redemption's (promotion, coupon) pairs count in for its
/// customer, limited or not (`usage_take` skips those without a limit).
fn counted_pools(applied: impl Iterator<Item = (Uuid, Option<Uuid>)>, customer: Option<&str>) -> Vec<Pool> {
    applied
        .flat_map(|(promotion, coupon)| pools_for(promotion, coupon, customer))
        .collect()
}

/// Releases the order's counted redemption, if `viewer` may see it:
/// RELEASED, and one use taken back from each pool it counted in. Returns
/// it, or None.
#[tracing::instrument(skip_all, fields(order.id = order_id))]
pub async fn release(
    db: &impl ConnectionTrait,
    order_id: &str,
    viewer: Viewer<'_>,
    now: DateTime<Utc>,
) -> AppResult<Option<Redemption>> {
    let rows = redemption::Entity::update_many()
        .col_expr(redemption::Column::Status, sea_orm::sea_query::Expr::value("RELEASED"))
        .col_expr(redemption::Column::ReleasedAt, sea_orm::sea_query::Expr::value(now))
        .filter(redemption::Column::OrderId.eq(order_id))
        .filter(redemption::Column::Status.eq("REDEEMED"))
        .filter(viewer.condition())
        .exec_with_returning(db)
        .await?;
    let Some(row) = rows.into_iter().next() else {
        return Ok(None);
    };
    let redemption = decode(row)?;
    let pools = counted_pools(
        redemption.result.applied.iter().map(|a| (a.promotion_id, a.coupon_id)),
        redemption.customer_id.as_deref(),
    );
    let [scopes, owners, customers] = usage::arrays(&pools);
    db.execute_raw(statement(
        "WITH d AS (
             INSERT INTO usage_deltas (promotion_id, coupon_id, uses, amount)
             SELECT promotion_id, coupon_id, -1, -amount FROM redemption_promotions WHERE redemption_id = $4
         )
         SELECT usage_give_back($1::text[], $2::uuid[], $3::text[])",
        vec![scopes, owners, customers, redemption.id.into()],
    ))
    .await?;
    Ok(Some(redemption))
}

/// Most usage deltas folded by one statement.
pub const DELTAS_PER_FOLD: i64 = 10_000;

/// Folds up to [`DELTAS_PER_FOLD`] of the oldest usage deltas (what applies
/// and releases changed, written in their transactions) into the stored
/// counts of their promotions and coupons, and deletes them, in one
/// transaction: exact, and costing what changed. One fold at a time across
/// replicas (a try-lock: a replica that finds it taken skips its turn), so
/// two never lock the same counts in different orders. Returns how many
/// deltas it folded.
#[tracing::instrument(skip_all)]
pub async fn fold_usage_deltas(db: &sea_orm::DatabaseConnection) -> AppResult<u64> {
    let txn = db.begin().await?;
    let folded = txn
        .query_one_raw(statement(
            "WITH lock AS (SELECT pg_try_advisory_xact_lock($1) AS held),
             d AS (
                 DELETE FROM usage_deltas WHERE id IN (
                     SELECT id FROM usage_deltas WHERE (SELECT held FROM lock) ORDER BY id LIMIT $2)
                 RETURNING promotion_id, coupon_id, uses, amount
             ), p AS (
                 UPDATE promotions p SET redemption_count = p.redemption_count + s.uses,
                                         discount_total = p.discount_total + s.amount
                 FROM (SELECT promotion_id, sum(uses)::int AS uses, sum(amount)::bigint AS amount
                       FROM d GROUP BY promotion_id) s
                 WHERE p.id = s.promotion_id
             ), c AS (
                 UPDATE coupons c SET times_used = c.times_used + s.uses
                 FROM (SELECT coupon_id, sum(uses)::int AS uses FROM d WHERE coupon_id IS NOT NULL GROUP BY coupon_id) s
                 WHERE c.id = s.coupon_id
             )
             SELECT count(*) AS folded FROM d",
            vec![FOLD_LOCK.into(), DELTAS_PER_FOLD.into()],
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "folded"))
        .transpose()?
        .unwrap_or(0);
    txn.commit().await?;
    Ok(u64::try_from(folded).unwrap_or(0))
}

/// Advisory lock key of a fold of usage deltas.
const FOLD_LOCK: i64 = 0x7573_6167_6573; // "usages"

/// Counted (not released) redemptions of a promotion now, from the committed rows.
pub async fn counted_of_promotion(db: &impl ConnectionTrait, promotion: Uuid) -> AppResult<i64> {
    let row = db
        .query_one_raw(statement(
            "SELECT count(*) AS n FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
             WHERE rp.promotion_id = $1 AND r.status = 'REDEEMED'",
            vec![promotion.into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get::<i64>("", "n")).transpose()?.unwrap_or(0))
}
