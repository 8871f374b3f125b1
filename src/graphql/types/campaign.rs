//! `Campaign` and its inputs.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};

use super::common::{Conn, UsageStats, connection, page_request};
use super::promotion::PromotionObject;
use crate::domain::campaign::{self as domain, CampaignDraft};
use crate::state::AppState;
use crate::store::{campaigns, promotions};

/// A campaign's lifecycle state.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::campaign::CampaignStatus")]
pub enum CampaignStatus {
    /// Being prepared; its promotions do not apply.
    Draft,
    /// Its promotions apply inside its window.
    Active,
    /// Temporarily off.
    Paused,
    /// Over for good.
    Ended,
}

/// A campaign: a named window that groups promotions.
pub struct CampaignObject(pub domain::Campaign);

#[Object(name = "Campaign")]
impl CampaignObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn name(&self) -> &str {
        &self.0.definition.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.definition.description.as_deref()
    }
    async fn status(&self) -> CampaignStatus {
        self.0.status.into()
    }
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.definition.window.starts_at
    }
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.definition.window.ends_at
    }
    /// This campaign's promotions, newest first.
    async fn promotions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<PromotionObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let had_cursor = after.is_some();
        let filter = promotions::PromotionFilter {
            campaign_id: Some(self.0.id),
            ..Default::default()
        };
        let page = promotions::list(&state.db, &filter, Utc::now(), page_request(first, after)?).await?;
        Ok(connection(page, had_cursor, |p| p.id, PromotionObject))
    }
    /// Usage summed over this campaign's promotions (no limit of its own).
    async fn usage(&self, ctx: &Context<'_>) -> Result<UsageStats> {
        let state = ctx.data_unchecked::<AppState>();
        let (redemptions, discount) = campaigns::usage(&state.db, self.0.id).await?;
        Ok(UsageStats::new(redemptions, discount, None))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// A campaign's definition.
#[derive(InputObject)]
pub struct CampaignInput {
    /// 1..200 characters.
    pub name: String,
    /// At most 2000 characters.
    pub description: Option<String>,
    pub starts_at: Option<DateTime<Utc>>,
    /// Must be after startsAt.
    pub ends_at: Option<DateTime<Utc>>,
}

impl CampaignInput {
    /// The domain draft.
    pub fn into_draft(self) -> CampaignDraft {
        CampaignDraft {
            name: self.name,
            description: self.description,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
        }
    }
}

/// Filters of `campaigns`; all set ones must hold.
#[derive(InputObject, Default)]
pub struct CampaignFilter {
    pub status: Option<CampaignStatus>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    /// ACTIVE campaigns whose window contains this instant.
    pub active_at: Option<DateTime<Utc>>,
}

impl From<CampaignFilter> for campaigns::CampaignFilter {
    fn from(f: CampaignFilter) -> Self {
        Self {
            status: f.status.map(Into::into),
            name_contains: f.name_contains,
            active_at: f.active_at,
        }
    }
}
