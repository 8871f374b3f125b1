//! Outbox rows for the admin API: listing and putting DEAD rows back.

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
        crate::outbox::relay::notify(db).await?;
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
