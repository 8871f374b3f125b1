//! Coupon batch rows, their leases, and the bulk insert of generated codes.
//!
//! A batch job holds its row by a lease (`lease_owner`, `lease_until`): each
//! chunk locks the row, checks the lease is still its own, inserts codes and
//! advances `generated` in one transaction, so `generated` always equals the
//! committed codes and a job taken over after a crash resumes without gaps.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveEnum, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, Value};
use uuid::Uuid;

pub use super::entities::coupon_batch::BatchStatus;
use super::entities::coupon_batch::{self, Model};
use crate::domain::code_pattern::BatchDefinition;
use crate::error::AppResult;

/// A coupon batch, as the use cases and the API see it (its lease is the
/// store's business).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub id: Uuid,
    pub promotion_id: Uuid,
    pub pattern: String,
    pub requested: i32,
    pub generated: i32,
    pub status: BatchStatus,
    pub error: Option<String>,
    pub usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<Model> for Batch {
    fn from(row: Model) -> Self {
        Batch {
            id: row.id,
            promotion_id: row.promotion_id,
            pattern: row.pattern,
            requested: row.requested,
            generated: row.generated,
            status: row.status,
            error: row.error,
            usage_limit: row.usage_limit,
            usage_limit_per_customer: row.usage_limit_per_customer,
            starts_at: row.starts_at,
            expires_at: row.expires_at,
            created_at: row.created_at,
            finished_at: row.finished_at,
        }
    }
}

fn statement(sql: &str, values: impl IntoIterator<Item = Value>) -> Statement {
    Statement::from_sql_and_values(DbBackend::Postgres, sql, values)
}

async fn one(
    db: &impl ConnectionTrait,
    sql: &str,
    values: impl IntoIterator<Item = Value>,
) -> AppResult<Option<Batch>> {
    Ok(coupon_batch::Entity::find()
        .from_raw_sql(statement(sql, values))
        .one(db)
        .await?
        .map(Batch::from))
}

fn secs(lease: Duration) -> Value {
    lease.as_secs_f64().into()
}

/// Inserts a batch row in `status` (RUNNING for an inline batch, PENDING for a job).
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    promotion_id: Uuid,
    def: &BatchDefinition,
    status: BatchStatus,
    now: DateTime<Utc>,
) -> AppResult<Batch> {
    let row = one(
        db,
        "INSERT INTO coupon_batches (id, promotion_id, pattern, requested, generated, status, usage_limit,
             usage_limit_per_customer, starts_at, expires_at, created_at)
         VALUES ($1, $2, $3, $4, 0, $5, $6, $7, $8, $9, $10) RETURNING *",
        [
            id.into(),
            promotion_id.into(),
            def.pattern.as_str().into(),
            def.count.into(),
            status.to_value().into(),
            def.usage_limit.into(),
            def.usage_limit_per_customer.into(),
            def.window.starts_at.into(),
            def.window.ends_at.into(),
            now.into(),
        ],
    )
    .await?;
    row.ok_or_else(|| crate::error::AppError::internal("INSERT ... RETURNING gave no row"))
}

/// Inserts at most `limit` of the `(id, code)` candidates as coupons of
/// `batch`, skipping codes that exist (in any batch or as single coupons);
/// returns how many it inserted.
pub async fn insert_codes(
    db: &impl ConnectionTrait,
    batch: &Batch,
    ids: Vec<Uuid>,
    codes: Vec<String>,
    limit: i64,
) -> AppResult<u64> {
    let result = db
        .execute_raw(statement(
            "INSERT INTO coupons (id, code, promotion_id, batch_id, usage_limit, usage_limit_per_customer,
                 starts_at, expires_at, created_at)
             SELECT c.id, c.code, $3, $4, $5, $6, $7, $8, $9
             FROM unnest($1::uuid[], $2::text[]) AS c (id, code)
             WHERE NOT EXISTS (SELECT 1 FROM coupons e WHERE e.code = c.code)
             LIMIT $10
             ON CONFLICT (code) DO NOTHING",
            [
                ids.into(),
                codes.into(),
                batch.promotion_id.into(),
                batch.id.into(),
                batch.usage_limit.into(),
                batch.usage_limit_per_customer.into(),
                batch.starts_at.into(),
                batch.expires_at.into(),
                batch.created_at.into(),
                limit.into(),
            ],
        ))
        .await?;
    Ok(result.rows_affected())
}

/// Records `inserted` more codes; a finished batch (all generated, or
/// `error` set) becomes DONE or FAILED and drops its lease, otherwise the
/// lease is extended by `lease` from now.
pub async fn advance(
    db: &impl ConnectionTrait,
    id: Uuid,
    inserted: i32,
    error: Option<String>,
    lease: Duration,
) -> AppResult<Batch> {
    let row = one(
        db,
        "UPDATE coupon_batches SET generated = generated + $2,
             status = CASE WHEN $3::text IS NOT NULL THEN 'FAILED'
                           WHEN generated + $2 = requested THEN 'DONE' ELSE 'RUNNING' END,
             error = $3,
             finished_at = CASE WHEN $3::text IS NOT NULL OR generated + $2 = requested THEN clock_timestamp() END,
             lease_owner = CASE WHEN $3::text IS NULL AND generated + $2 < requested THEN lease_owner END,
             lease_until = CASE WHEN $3::text IS NULL AND generated + $2 < requested
                                THEN clock_timestamp() + make_interval(secs => $4) END
         WHERE id = $1 RETURNING *",
        [id.into(), inserted.into(), error.into(), secs(lease)],
    )
    .await?;
    row.ok_or_else(|| crate::error::AppError::internal(format!("coupon batch {id} vanished while generating")))
}

/// Takes the oldest unfinished batch nobody holds (never leased, or its lease
/// ran out) for `owner`, until `lease` from now.
pub async fn claim(db: &impl ConnectionTrait, owner: Uuid, lease: Duration) -> AppResult<Option<Batch>> {
    one(
        db,
        "UPDATE coupon_batches SET status = 'RUNNING', lease_owner = $1,
             lease_until = clock_timestamp() + make_interval(secs => $2)
         WHERE id = (SELECT id FROM coupon_batches
                     WHERE status IN ('PENDING', 'RUNNING') AND (lease_until IS NULL OR lease_until < clock_timestamp())
                     ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)
         RETURNING *",
        [owner.into(), secs(lease)],
    )
    .await
}

/// Locks the batch for this transaction if `owner` still holds it.
pub async fn hold(db: &impl ConnectionTrait, id: Uuid, owner: Uuid) -> AppResult<Option<Batch>> {
    one(
        db,
        "SELECT * FROM coupon_batches WHERE id = $1 AND lease_owner = $2 AND status = 'RUNNING'
             AND lease_until > clock_timestamp()
         FOR UPDATE",
        [id.into(), owner.into()],
    )
    .await
}

/// Gives a held batch up (on shutdown), so another worker resumes it at once.
pub async fn let_go(db: &impl ConnectionTrait, id: Uuid, owner: Uuid) -> AppResult<()> {
    db.execute_raw(statement(
        "UPDATE coupon_batches SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
        [id.into(), owner.into()],
    ))
    .await?;
    Ok(())
}

/// A batch's codes after `after` (by id), oldest first, at most `limit`.
pub async fn codes(
    db: &impl ConnectionTrait,
    batch: Uuid,
    after: Option<Uuid>,
    limit: i64,
) -> AppResult<Vec<(Uuid, String)>> {
    let rows = db
        .query_all_raw(statement(
            "SELECT id, code FROM coupons WHERE batch_id = $1 AND ($2::uuid IS NULL OR id > $2) ORDER BY id LIMIT $3",
            [batch.into(), after.into(), limit.into()],
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| Ok((r.try_get("", "id")?, r.try_get("", "code")?)))
        .collect::<Result<_, sea_orm::DbErr>>()?)
}

/// A batch row by id.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Batch>> {
    Ok(find_many(db, &[id]).await?.pop())
}

/// The batch rows of these ids that exist, in no particular order.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<Batch>> {
    Ok(coupon_batch::Entity::find()
        .filter(coupon_batch::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(Batch::from)
        .collect())
}

/// The NOTIFY channel that wakes the coupon generators.
pub const CHANNEL: &str = "coupon_batches";

/// Wakes the coupon generators (inside the writing transaction: delivered at its commit).
pub async fn wake_generators(db: &impl ConnectionTrait) -> AppResult<()> {
    db.execute_unprepared(&format!("NOTIFY {CHANNEL}")).await?;
    Ok(())
}
