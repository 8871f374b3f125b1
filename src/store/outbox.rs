//! Outbox rows: writing one with a change, listing them for the admin API,
//! putting DEAD rows back, the backlog's gauges, and waking the relays.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveEnum, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, Statement, Value};
use uuid::Uuid;

pub use super::entities::outbox_event::OutboxStatus;
use super::entities::outbox_event::{self, Column, Entity};
use super::page::{self, Page, PageRequest};
use crate::error::{AppError, AppResult};

/// An outbox row to write with a change: PENDING, due now.
pub struct NewEvent<'a> {
    pub id: Uuid,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a serde_json::Value,
    pub created_at: DateTime<Utc>,
}

/// The SQL that writes a [`NewEvent`] from parameters `$n .. $n+5` (in
/// the order of [`NewEvent::values`]), for a statement of its own or a
/// data-modifying CTE of a larger one.
pub fn insert_sql(n: usize) -> String {
    format!(
        "INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, payload, status, attempts,
                                    created_at, next_attempt_at)
         VALUES (${}, ${}, ${}, ${}, ${}, 'PENDING', 0, ${}, ${}) RETURNING id",
        n,
        n + 1,
        n + 2,
        n + 3,
        n + 4,
        n + 5,
        n + 5
    )
}

impl NewEvent<'_> {
    /// The parameters of [`insert_sql`].
    pub fn values(&self) -> [Value; 6] {
        [
            self.id.into(),
            self.aggregate_type.into(),
            self.aggregate_id.into(),
            self.event_type.into(),
            self.payload.clone().into(),
            self.created_at.into(),
        ]
    }
}

/// Writes `event` in the caller's transaction; `notify`: and wakes the
/// relays at its commit. One statement.
pub async fn insert(db: &impl ConnectionTrait, event: &NewEvent<'_>, notify: bool) -> Result<(), sea_orm::DbErr> {
    let mut values = event.values().to_vec();
    values.extend([CHANNEL.into(), notify.into()]);
    db.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        format!("WITH o AS ({}) SELECT pg_notify($7, '') FROM o WHERE $8", insert_sql(1)),
        values,
    ))
    .await
    .map(|_| ())
}

/// A stored outbox row, for operators.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    pub id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub published_at: Option<DateTime<Utc>>,
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl From<outbox_event::Model> for OutboxEvent {
    fn from(row: outbox_event::Model) -> Self {
        OutboxEvent {
            id: row.id,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            event_type: row.event_type,
            payload: row.payload,
            status: row.status,
            attempts: row.attempts,
            last_error: row.last_error,
            created_at: row.created_at,
            published_at: row.published_at,
            next_attempt_at: row.next_attempt_at,
        }
    }
}

/// A page of outbox rows, newest first, optionally of one status.
pub async fn list(
    db: &impl ConnectionTrait,
    status: Option<OutboxStatus>,
    page: PageRequest,
) -> AppResult<Page<OutboxEvent>> {
    let mut select = Entity::find();
    if let Some(status) = status {
        select = select.filter(Column::Status.eq(status));
    }
    let page = page::fetch(db, select, Column::Id, page).await?;
    Ok(Page {
        items: page.items.into_iter().map(OutboxEvent::from).collect(),
        has_next_page: page.has_next_page,
        total_count: page.total_count,
    })
}

/// Puts a DEAD row back to PENDING with fresh attempts; other states are CONFLICT.
pub async fn retry(db: &impl ConnectionTrait, id: Uuid) -> AppResult<OutboxEvent> {
    let rows = Entity::update_many()
        .col_expr(Column::Status, Expr::value(OutboxStatus::Pending))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::NextAttemptAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq(OutboxStatus::Dead))
        .exec_with_returning(db)
        .await?;
    if let Some(row) = rows.into_iter().next() {
        wake_relays(db).await?;
        return Ok(row.into());
    }
    match Entity::find_by_id(id).one(db).await? {
        None => Err(AppError::not_found("id", format!("no outbox event with id {id}"))),
        Some(row) => Err(AppError::Conflict {
            field: Some("id".into()),
            message: format!("only DEAD events can be retried; this one is {}", row.status.to_value()),
        }),
    }
}

/// Puts every DEAD row back to PENDING with fresh attempts, in one
/// statement (their order is their `seq`, which the relay follows); returns
/// how many.
pub async fn retry_all_dead(db: &impl ConnectionTrait) -> AppResult<u64> {
    let done = db
        .execute_raw(Statement::from_string(
            DbBackend::Postgres,
            "UPDATE outbox_events SET status = 'PENDING', attempts = 0, next_attempt_at = now() WHERE status = 'DEAD'",
        ))
        .await?;
    if done.rows_affected() > 0 {
        wake_relays(db).await?;
    }
    Ok(done.rows_affected())
}

/// The NOTIFY channel that wakes the outbox relays.
pub const CHANNEL: &str = "outbox";

/// Wakes the relays (inside a writing transaction: delivered at its commit).
pub async fn wake_relays(db: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    db.execute_unprepared(&format!("NOTIFY {CHANNEL}")).await.map(|_| ())
}

/// The outbox's backlog: PENDING and DEAD rows, and the age in seconds of
/// the oldest PENDING one (0 when none).
pub struct Backlog {
    pub pending: i64,
    pub dead: i64,
    pub oldest_pending_secs: f64,
}

/// Reads the [`Backlog`] (one indexed aggregate over the rows not yet published).
pub async fn backlog(db: &impl ConnectionTrait) -> Result<Backlog, sea_orm::DbErr> {
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT count(*) FILTER (WHERE status = 'PENDING') AS pending,
                    count(*) FILTER (WHERE status = 'DEAD') AS dead,
                    COALESCE(EXTRACT(EPOCH FROM now() - min(created_at) FILTER (WHERE status = 'PENDING')), 0)::float8 AS age
             FROM outbox_events WHERE status IN ('PENDING', 'DEAD')",
        ))
        .await?;
    Ok(match row {
        Some(row) => Backlog {
            pending: row.try_get("", "pending")?,
            dead: row.try_get("", "dead")?,
            oldest_pending_secs: row.try_get("", "age")?,
        },
        None => Backlog {
            pending: 0,
            dead: 0,
            oldest_pending_secs: 0.0,
        },
    })
}

/// Deletes at most `limit` PUBLISHED rows published before `before`.
pub async fn prune_published(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sea_orm::DbErr> {
    let done = db
        .execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "DELETE FROM outbox_events WHERE id IN (
                 SELECT id FROM outbox_events WHERE status = 'PUBLISHED' AND published_at < $1 LIMIT $2)",
            [before.into(), limit.into()],
        ))
        .await?;
    Ok(done.rows_affected())
}

/// Advisory lock key of a relay batch.
const RELAY_LOCK: i64 = 0x6f75_7462_6f78; // "outbox"

/// Takes the relays' lock until the transaction ends: one batch at a time,
/// across replicas, so rows leave in creation order.
pub async fn lock_relay(txn: &impl ConnectionTrait) -> Result<(), sea_orm::DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT pg_advisory_xact_lock($1)",
        [RELAY_LOCK.into()],
    ))
    .await
    .map(|_| ())
}

/// A row due for publication.
pub struct DueEvent {
    pub id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub attempts: i32,
    pub created_at: DateTime<Utc>,
}

/// Claims up to `limit` PENDING rows that are due, in creation order,
/// leaving out every row of an aggregate that has an earlier row not yet
/// published (waiting for its retry, or DEAD): an aggregate's events reach
/// the stream in the order they were committed, whatever fails. The earlier
/// rows are found through `outbox_events_unpublished_idx`, so the check
/// costs what is unpublished, not an aggregate's history. Locked
/// `FOR UPDATE SKIP LOCKED` until the transaction ends.
pub async fn claim_due(txn: &impl ConnectionTrait, limit: i64) -> Result<Vec<DueEvent>, sea_orm::DbErr> {
    txn.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT e.id, e.aggregate_type, e.aggregate_id, e.event_type, e.payload, e.attempts, e.created_at
         FROM outbox_events e
         WHERE e.status = 'PENDING' AND e.next_attempt_at <= now()
           AND NOT EXISTS (SELECT 1 FROM outbox_events b
                           WHERE b.aggregate_type = e.aggregate_type AND b.aggregate_id = e.aggregate_id
                             AND b.seq < e.seq AND b.status <> 'PUBLISHED')
         ORDER BY e.seq LIMIT $1 FOR UPDATE SKIP LOCKED",
        [limit.into()],
    ))
    .await?
    .iter()
    .map(|r| {
        Ok(DueEvent {
            id: r.try_get("", "id")?,
            aggregate_type: r.try_get("", "aggregate_type")?,
            aggregate_id: r.try_get("", "aggregate_id")?,
            event_type: r.try_get("", "event_type")?,
            payload: r.try_get("", "payload")?,
            attempts: r.try_get("", "attempts")?,
            created_at: r.try_get("", "created_at")?,
        })
    })
    .collect()
}

/// Marks these rows PUBLISHED.
pub async fn mark_published(txn: &impl ConnectionTrait, ids: &[Uuid]) -> Result<(), sea_orm::DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE outbox_events SET status = 'PUBLISHED', published_at = clock_timestamp(), attempts = attempts + 1,
         last_error = NULL, next_attempt_at = NULL WHERE id = ANY($1)",
        [ids.to_vec().into()],
    ))
    .await
    .map(|_| ())
}

/// Records a failed attempt: the row is DEAD when `dead`, else due again after `delay`.
pub async fn schedule_retry(
    txn: &impl ConnectionTrait,
    id: Uuid,
    attempts: i32,
    error: &str,
    dead: bool,
    delay: std::time::Duration,
) -> Result<(), sea_orm::DbErr> {
    txn.execute_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "UPDATE outbox_events SET attempts = $2, last_error = $3,
         status = CASE WHEN $4 THEN 'DEAD' ELSE 'PENDING' END,
         next_attempt_at = CASE WHEN $4 THEN NULL ELSE now() + make_interval(secs => $5) END
         WHERE id = $1",
        [
            id.into(),
            attempts.into(),
            error.into(),
            dead.into(),
            delay.as_secs_f64().into(),
        ],
    ))
    .await
    .map(|_| ())
}
