//! Outbox rows for the admin API and operations: listing, putting DEAD
//! rows back, the backlog's gauges, and waking the relays.

use chrono::Utc;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::entities::outbox_event::{self, Column, Entity};
use super::page::{self, Page, PageRequest};
use crate::error::{AppError, AppResult};

/// A page of outbox rows, newest first, optionally of one status.
pub async fn list(
    db: &impl ConnectionTrait,
    status: Option<&str>,
    page: PageRequest,
) -> AppResult<Page<outbox_event::Model>> {
    let mut select = Entity::find();
    if let Some(status) = status {
        select = select.filter(Column::Status.eq(status));
    }
    Ok(page::fetch(db, select, Column::Id, page).await?)
}

/// Puts a DEAD row back to PENDING with fresh attempts; other states are CONFLICT.
pub async fn retry(db: &impl ConnectionTrait, id: Uuid) -> AppResult<outbox_event::Model> {
    let rows = Entity::update_many()
        .col_expr(Column::Status, Expr::value("PENDING"))
        .col_expr(Column::Attempts, Expr::value(0))
        .col_expr(Column::NextAttemptAt, Expr::value(Utc::now()))
        .filter(Column::Id.eq(id))
        .filter(Column::Status.eq("DEAD"))
        .exec_with_returning(db)
        .await?;
    if let Some(row) = rows.into_iter().next() {
        wake_relays(db).await?;
        return Ok(row);
    }
    match Entity::find_by_id(id).one(db).await? {
        None => Err(AppError::not_found("id", format!("no outbox event with id {id}"))),
        Some(row) => Err(AppError::Conflict {
            field: Some("id".into()),
            message: format!("only DEAD events can be retried; this one is {}", row.status),
        }),
    }
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
