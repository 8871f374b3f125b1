//! Creating, replacing and switching promotions.

use chrono::Utc;
use sea_orm::{DatabaseConnection, DatabaseTransaction, TransactionTrait};
use uuid::Uuid;

use crate::domain::promotion::{Promotion, PromotionDefinition};
use crate::error::{AppError, AppResult};
use crate::outbox::{self, Event, EventType};
use crate::store::{campaigns, promotions as repo};

fn not_found(id: Uuid) -> AppError {
    AppError::not_found("id", format!("no promotion with id {id}"))
}

async fn check_campaign(txn: &DatabaseTransaction, def: &PromotionDefinition) -> AppResult<()> {
    match def.campaign_id {
        Some(id) if !campaigns::exists(txn, id).await? => Err(AppError::not_found(
            "input.campaignId",
            format!("no campaign with id {id}"),
        )),
        _ => Ok(()),
    }
}

/// Creates a promotion and its `promotion.created` event.
#[tracing::instrument(skip_all)]
pub async fn create(db: &DatabaseConnection, def: &PromotionDefinition) -> AppResult<Promotion> {
    let now = Utc::now();
    let txn = db.begin().await?;
    check_campaign(&txn, def).await?;
    let promotion = repo::insert(&txn, Uuid::now_v7(), def, now).await?;
    outbox::enqueue(
        &txn,
        Event::new(EventType::PromotionCreated, promotion.id, &promotion)?,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(promotion)
}

/// Replaces the whole definition; usage counts are kept.
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn update(db: &DatabaseConnection, id: Uuid, def: &PromotionDefinition) -> AppResult<Promotion> {
    let now = Utc::now();
    let txn = db.begin().await?;
    check_campaign(&txn, def).await?;
    let promotion = repo::replace(&txn, id, def, now).await?.ok_or_else(|| not_found(id))?;
    outbox::enqueue(&txn, Event::new(EventType::PromotionUpdated, id, &promotion)?, now).await?;
    txn.commit().await?;
    Ok(promotion)
}

/// Switches a promotion on or off (`promotion.activated` / `promotion.deactivated`).
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn set_active(db: &DatabaseConnection, id: Uuid, active: bool) -> AppResult<Promotion> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let promotion = repo::set_active(&txn, id, active, now)
        .await?
        .ok_or_else(|| not_found(id))?;
    let event_type = if active {
        EventType::PromotionActivated
    } else {
        EventType::PromotionDeactivated
    };
    outbox::enqueue(&txn, Event::new(event_type, id, &promotion)?, now).await?;
    txn.commit().await?;
    Ok(promotion)
}
