//! Promotion rows with their target and tier rows.
//!
//! A definition is written as typed columns plus normalised target rows and
//! tier rows; reading goes back through [`PromotionDefinition::new`], so a
//! row that breaks a rule is reported (naming the row), never half-used.
//! `rows` maps definitions to rows and back; `filter` builds the
//! `promotions` query's filters; this file holds the repository's calls.

mod filter;
mod rows;

pub use filter::PromotionFilter;
use filter::*;
use rows::*;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QueryOrder, QuerySelect, Select,
};
use uuid::Uuid;

use crate::domain::promotion::{Promotion, PromotionDefinition, Scope};
use crate::error::AppResult;
use crate::store::entities::{promotion, promotion_target, promotion_tier};
use crate::store::page::{self, Page, PageRequest};

async fn insert_children(db: &impl ConnectionTrait, id: Uuid, def: &PromotionDefinition) -> AppResult<()> {
    let targets = target_rows(id, def);
    if !targets.is_empty() {
        promotion_target::Entity::insert_many(targets).exec(db).await?;
    }
    let tiers = tier_rows(id, def);
    if !tiers.is_empty() {
        promotion_tier::Entity::insert_many(tiers).exec(db).await?;
    }
    Ok(())
}

/// Inserts a new promotion with zero usage.
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    def: &PromotionDefinition,
    now: DateTime<Utc>,
) -> AppResult<Promotion> {
    let mut row = to_row(id, def, now);
    row.created_at = Set(now);
    row.redemption_count = Set(0);
    row.discount_total = Set(0);
    let row = row.insert(db).await?;
    insert_children(db, id, def).await?;
    Ok(Promotion {
        id,
        definition: def.clone(),
        redemption_count: row.redemption_count,
        discount_total: row.discount_total,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Replaces the whole definition; usage and creation time are kept.
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn replace(
    db: &impl ConnectionTrait,
    id: Uuid,
    def: &PromotionDefinition,
    now: DateTime<Utc>,
) -> AppResult<Option<Promotion>> {
    let Some(existing) = promotion::Entity::find_by_id(id).lock_exclusive().one(db).await? else {
        return Ok(None);
    };
    let mut row = to_row(id, def, now);
    row.created_at = Set(existing.created_at);
    row.redemption_count = Set(existing.redemption_count);
    row.discount_total = Set(existing.discount_total);
    let row = row.reset_all().update(db).await?;
    promotion_target::Entity::delete_many()
        .filter(promotion_target::Column::PromotionId.eq(id))
        .exec(db)
        .await?;
    promotion_tier::Entity::delete_many()
        .filter(promotion_tier::Column::PromotionId.eq(id))
        .exec(db)
        .await?;
    insert_children(db, id, def).await?;
    Ok(Some(Promotion {
        id,
        definition: def.clone(),
        redemption_count: row.redemption_count,
        discount_total: row.discount_total,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

/// Switches a promotion on or off.
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn set_active(
    db: &impl ConnectionTrait,
    id: Uuid,
    active: bool,
    now: DateTime<Utc>,
) -> AppResult<Option<Promotion>> {
    let Some(row) = promotion::Entity::find_by_id(id).lock_exclusive().one(db).await? else {
        return Ok(None);
    };
    let mut row = row.into_active_model();
    row.active = Set(active);
    row.updated_at = Set(now);
    row.update(db).await?;
    find(db, id).await
}

/// One promotion by id.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Promotion>> {
    Ok(find_many(db, &[id]).await?.pop())
}

/// The promotions of these ids that exist, in no particular order.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<Promotion>> {
    let rows = promotion::Entity::find()
        .filter(promotion::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    decode_rows(db, rows).await
}

/// The scope of a promotion, if it exists (cheap check for coupons).
pub async fn scope_of(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Scope>> {
    let code: Option<String> = promotion::Entity::find_by_id(id)
        .select_only()
        .column(promotion::Column::Scope)
        .into_tuple()
        .one(db)
        .await?;
    code.map(|c| decode_scope(id, &c)).transpose()
}

/// A filtered page, newest first; status is derived at `now`.
#[tracing::instrument(skip_all)]
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &PromotionFilter,
    now: DateTime<Utc>,
    page: PageRequest,
) -> AppResult<Page<Promotion>> {
    use promotion::Column;
    let item = Item::of(filter);
    let only_item = filter.campaign_id.is_none()
        && filter.scope.is_none()
        && filter.status.is_none()
        && filter.active_at.is_none()
        && filter.name_contains.is_none();
    let page = match item {
        // The catalog's hot question ("what can discount this item?") never
        // touches the promotions table until the page's own rows.
        Some(item) if only_item => {
            page::fetch_by_ids::<promotion::Entity, _>(db, item.candidate_ids(), Column::Id, page).await?
        }
        item => {
            let mut select = promotion::Entity::find();
            if let Some(campaign) = filter.campaign_id {
                select = select.filter(Column::CampaignId.eq(campaign));
            }
            if let Some(scope) = filter.scope {
                select = select.filter(Column::Scope.eq(scope_code(scope)));
            }
            if let Some(status) = filter.status {
                select = select.filter(status_condition(status, now));
            }
            if let Some(at) = filter.active_at {
                select = select.filter(Expr::cust_with_values(IN_WINDOW, [at]));
            }
            if let Some(text) = &filter.name_contains {
                select = select.filter(Expr::cust_with_values(
                    "promotions.name ILIKE $1",
                    [super::like_pattern(text)],
                ));
            }
            if let Some(item) = item {
                let (sql, values) = item.candidate_ids();
                select = select.filter(Expr::cust_with_values(format!("promotions.id IN ({sql})"), values));
            }
            page::fetch(db, select, Column::Id, page).await?
        }
    };
    let items = decode_rows(db, page.items).await?;
    Ok(Page {
        items,
        has_next_page: page.has_next_page,
        total_count: page.total_count,
    })
}

/// Switched on, not over at `$1` (scheduled ones included), and in no ENDED
/// campaign (ENDED is final): what the pricing snapshot holds.
const LIVE: &str = "active AND (ends_at IS NULL OR ends_at > $1) AND NOT EXISTS \
     (SELECT 1 FROM campaigns WHERE campaigns.id = promotions.campaign_id AND campaigns.status = 'ENDED')";

/// The live promotions at `now` (see [`LIVE`]) after the id `after`, at most
/// `limit`, in id order: the pricing snapshot's full load, page by page.
#[tracing::instrument(skip_all)]
pub async fn live_page(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    after: Option<Uuid>,
    limit: u64,
) -> AppResult<Vec<Promotion>> {
    let mut select = live(now);
    if let Some(after) = after {
        select = select.filter(promotion::Column::Id.gt(after));
    }
    let rows = read_models(db, select.order_by_asc(promotion::Column::Id).limit(limit)).await?;
    decode_page(db, rows, after).await
}

/// Those of `ids` that are live at `now`; the others are not (or are gone).
#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn live_of(db: &impl ConnectionTrait, now: DateTime<Utc>, ids: &[Uuid]) -> AppResult<Vec<Promotion>> {
    let rows = read_models(db, live(now).filter(promotion::Column::Id.is_in(ids.iter().copied()))).await?;
    decode_rows(db, rows).await
}

/// The live promotions at `now` (see [`LIVE`]).
fn live(now: DateTime<Utc>) -> Select<promotion::Entity> {
    promotion::Entity::find().filter(Expr::cust_with_values(LIVE, [now]))
}

/// The rows `select` finds, read with [`model_of`] (the snapshot's reads).
async fn read_models(db: &impl ConnectionTrait, select: Select<promotion::Entity>) -> AppResult<Vec<promotion::Model>> {
    raw_rows(db, select).await?.iter().map(model_of).collect()
}

/// The ids of the promotions of these campaigns.
pub async fn ids_in_campaigns(db: &impl ConnectionTrait, campaigns: &[Uuid]) -> AppResult<Vec<Uuid>> {
    Ok(promotion::Entity::find()
        .select_only()
        .column(promotion::Column::Id)
        .filter(promotion::Column::CampaignId.is_in(campaigns.iter().copied()))
        .into_tuple()
        .all(db)
        .await?)
}
