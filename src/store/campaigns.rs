//! Campaign rows: insert, replace, status, look-ups and filtered pages.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, QueryFilter, QuerySelect,
    Statement,
};
use uuid::Uuid;

use super::entities::campaign::{self, Column, Entity};
use super::page::{self, Page, PageRequest};
use crate::domain::campaign::{Campaign, CampaignDefinition, CampaignStatus};
use crate::domain::validation::Window;
use crate::error::{AppError, AppResult};

/// Filters of the `campaigns` query, all applied in SQL.
#[derive(Debug, Clone, Default)]
pub struct CampaignFilter {
    /// Exactly this status.
    pub status: Option<CampaignStatus>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// ACTIVE and inside the window at this instant.
    pub active_at: Option<DateTime<Utc>>,
}

pub(crate) fn status_code(status: CampaignStatus) -> &'static str {
    match status {
        CampaignStatus::Draft => "DRAFT",
        CampaignStatus::Active => "ACTIVE",
        CampaignStatus::Paused => "PAUSED",
        CampaignStatus::Ended => "ENDED",
    }
}

fn decode(row: campaign::Model) -> AppResult<Campaign> {
    let status = match row.status.as_str() {
        "DRAFT" => CampaignStatus::Draft,
        "ACTIVE" => CampaignStatus::Active,
        "PAUSED" => CampaignStatus::Paused,
        "ENDED" => CampaignStatus::Ended,
        other => {
            return Err(AppError::corrupt_row("campaigns", row.id, format!("status {other:?}")));
        }
    };
    Ok(Campaign {
        id: row.id,
        definition: CampaignDefinition {
            name: row.name,
            description: row.description,
            window: Window {
                starts_at: row.starts_at,
                ends_at: row.ends_at,
            },
        },
        status,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Inserts a DRAFT campaign.
#[tracing::instrument(skip_all, fields(campaign.id = %id))]
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    def: &CampaignDefinition,
    now: DateTime<Utc>,
) -> AppResult<Campaign> {
    let row = campaign::ActiveModel {
        id: Set(id),
        name: Set(def.name.clone()),
        description: Set(def.description.clone()),
        status: Set(status_code(CampaignStatus::Draft).to_owned()),
        starts_at: Set(def.window.starts_at),
        ends_at: Set(def.window.ends_at),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    decode(row)
}

/// Locks and reads a campaign for a change in the caller's transaction.
pub async fn lock(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Campaign>> {
    Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?
        .map(decode)
        .transpose()
}

/// Replaces name, description and window.
#[tracing::instrument(skip_all, fields(campaign.id = %id))]
pub async fn update(
    db: &impl ConnectionTrait,
    id: Uuid,
    def: &CampaignDefinition,
    now: DateTime<Utc>,
) -> AppResult<Option<Campaign>> {
    let rows = Entity::update_many()
        .col_expr(Column::Name, Expr::value(def.name.clone()))
        .col_expr(Column::Description, Expr::value(def.description.clone()))
        .col_expr(Column::StartsAt, Expr::value(def.window.starts_at))
        .col_expr(Column::EndsAt, Expr::value(def.window.ends_at))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    rows.into_iter().next().map(decode).transpose()
}

/// Sets the status (the caller checked the move).
#[tracing::instrument(skip_all, fields(campaign.id = %id))]
pub async fn set_status(
    db: &impl ConnectionTrait,
    id: Uuid,
    status: CampaignStatus,
    now: DateTime<Utc>,
) -> AppResult<Option<Campaign>> {
    let rows = Entity::update_many()
        .col_expr(Column::Status, Expr::value(status_code(status)))
        .col_expr(Column::UpdatedAt, Expr::value(now))
        .filter(Column::Id.eq(id))
        .exec_with_returning(db)
        .await?;
    rows.into_iter().next().map(decode).transpose()
}

/// One campaign by id.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Campaign>> {
    Ok(find_many(db, &[id]).await?.pop())
}

/// The campaigns of these ids that exist, in no particular order.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<Campaign>> {
    Entity::find()
        .filter(Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?
        .into_iter()
        .map(decode)
        .collect()
}

/// Whether a campaign exists.
pub async fn exists(db: &impl ConnectionTrait, id: Uuid) -> AppResult<bool> {
    Ok(Entity::find_by_id(id)
        .select_only()
        .column(Column::Id)
        .into_tuple::<Uuid>()
        .one(db)
        .await?
        .is_some())
}

/// A filtered page, newest first.
#[tracing::instrument(skip_all)]
pub async fn list(db: &impl ConnectionTrait, filter: &CampaignFilter, page: PageRequest) -> AppResult<Page<Campaign>> {
    let mut select = Entity::find();
    if let Some(status) = filter.status {
        select = select.filter(Column::Status.eq(status_code(status)));
    }
    if let Some(text) = &filter.name_contains {
        select = select.filter(Expr::cust_with_values(
            "campaigns.name ILIKE $1",
            [super::like_pattern(text)],
        ));
    }
    if let Some(at) = filter.active_at {
        select = select
            .filter(Column::Status.eq("ACTIVE"))
            .filter(Expr::cust_with_values(
                "COALESCE(campaigns.starts_at <= $1, true) AND COALESCE(campaigns.ends_at > $1, true)",
                [at],
            ));
    }
    page::fetch(db, select, Column::Id, page).await?.try_map(decode)
}

/// Usage summed over a campaign's promotions: (redemptions, discount total).
pub async fn usage(db: &impl ConnectionTrait, id: Uuid) -> AppResult<(i64, i64)> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT COALESCE(SUM(redemption_count), 0)::bigint AS redemptions, \
             COALESCE(SUM(discount_total), 0)::bigint AS discount FROM promotions WHERE campaign_id = $1",
            [id.into()],
        ))
        .await?
        .ok_or_else(|| AppError::internal("usage aggregate returned no row"))?;
    Ok((row.try_get("", "redemptions")?, row.try_get("", "discount")?))
}

/// The state of the campaigns that are not ENDED, for the pricing snapshot:
/// all of them, or those of `ids` (the others are ENDED or gone).
pub async fn states(
    db: &impl ConnectionTrait,
    ids: Option<&[Uuid]>,
) -> AppResult<std::collections::HashMap<Uuid, crate::domain::engine::CampaignState>> {
    let mut select = Entity::find().filter(Column::Status.ne("ENDED"));
    if let Some(ids) = ids {
        select = select.filter(Column::Id.is_in(ids.iter().copied()));
    }
    select
        .all(db)
        .await?
        .into_iter()
        .map(|row| {
            decode(row).map(|c| {
                (
                    c.id,
                    crate::domain::engine::CampaignState {
                        status: c.status,
                        window: c.definition.window,
                    },
                )
            })
        })
        .collect()
}
