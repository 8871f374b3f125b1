//! Creating, replacing and moving campaigns.

use chrono::Utc;
use sea_orm::{DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::domain::campaign::{Campaign, CampaignDefinition, CampaignStatus};
use crate::error::{AppError, AppResult};
use crate::outbox::{self, Event, EventType};
use crate::store::campaigns as repo;

fn not_found(id: Uuid) -> AppError {
    AppError::not_found("id", format!("no campaign with id {id}"))
}

/// Creates a DRAFT campaign and its `campaign.created` event.
#[tracing::instrument(skip_all)]
pub async fn create(db: &DatabaseConnection, def: &CampaignDefinition) -> AppResult<Campaign> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let campaign = repo::insert(&txn, Uuid::now_v7(), def, now).await?;
    outbox::enqueue(
        &txn,
        Event::new(EventType::CampaignCreated, campaign.id, &campaign)?,
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(campaign)
}

/// Replaces name, description and window; the status is kept.
#[tracing::instrument(skip_all, fields(campaign.id = %id))]
pub async fn update(db: &DatabaseConnection, id: Uuid, def: &CampaignDefinition) -> AppResult<Campaign> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let campaign = repo::update(&txn, id, def, now).await?.ok_or_else(|| not_found(id))?;
    outbox::enqueue(&txn, Event::new(EventType::CampaignUpdated, id, &campaign)?, now).await?;
    txn.commit().await?;
    Ok(campaign)
}

/// Moves a campaign to `status` if the lifecycle allows it (else BAD_USER_INPUT).
#[tracing::instrument(skip_all, fields(campaign.id = %id))]
pub async fn set_status(db: &DatabaseConnection, id: Uuid, status: CampaignStatus) -> AppResult<Campaign> {
    let now = Utc::now();
    let txn = db.begin().await?;
    let current = repo::lock(&txn, id).await?.ok_or_else(|| not_found(id))?;
    if !current.status.can_move_to(status) {
        return Err(AppError::bad_input(
            "status",
            format!("a campaign cannot move from {:?} to {:?}", current.status, status).to_uppercase(),
        ));
    }
    let campaign = repo::set_status(&txn, id, status, now)
        .await?
        .ok_or_else(|| not_found(id))?;
    outbox::enqueue(&txn, Event::new(EventType::CampaignStatusChanged, id, &campaign)?, now).await?;
    txn.commit().await?;
    Ok(campaign)
}
