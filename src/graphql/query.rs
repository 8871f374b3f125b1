//! Query resolvers: look-ups by id or code (null when unknown) and
//! connections filtered and paged in SQL.

use async_graphql::{Context, ID, Object, Result};
use chrono::Utc;

use crate::auth::{self, Allow};
use crate::domain::coupon::normalize_code;
use crate::state::AppState;
use crate::store::{campaigns, coupon_batches, coupons, outbox, promotions, redemptions};

use super::types::campaign::{CampaignFilter, CampaignObject};
use super::types::checkout::{CartInput, PromotionResultObject, RedemptionObject};
use super::types::common::{Conn, connection, page_request, parse_id};
use super::types::coupon::{CouponBatchObject, CouponObject};
use super::types::outbox::{OutboxEventObject, OutboxStatus};
use super::types::promotion::{PromotionFilter, PromotionObject};

/// Who may preview a cart (also checked by [`super::fast_preview`]'s path).
pub const PREVIEW_ROLES: auth::Roles = auth::ANY;

/// The root query.
#[derive(Default)]
pub struct Query;

#[Object]
impl Query {
    #[graphql(guard = "Allow(auth::ANY)")]
    async fn campaign(&self, ctx: &Context<'_>, id: ID) -> Result<Option<CampaignObject>> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(campaigns::find(&state.db, parse_id("id", &id)?)
            .await?
            .map(CampaignObject))
    }

    #[graphql(guard = "Allow(auth::ANY)")]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<CampaignFilter>,
    ) -> Result<Conn<CampaignObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let had_cursor = after.is_some();
        let filter = filter.unwrap_or_default().into();
        let page = campaigns::list(&state.db, &filter, page_request(first, after)?).await?;
        Ok(connection(page, had_cursor, |c| c.id, CampaignObject))
    }

    #[graphql(guard = "Allow(auth::ANY)")]
    async fn promotion(&self, ctx: &Context<'_>, id: ID) -> Result<Option<PromotionObject>> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(promotions::find(&state.db, parse_id("id", &id)?)
            .await?
            .map(PromotionObject))
    }

    /// Filtered in the database (indexed), never in memory.
    #[graphql(guard = "Allow(auth::ANY)")]
    async fn promotions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        filter: Option<PromotionFilter>,
    ) -> Result<Conn<PromotionObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let had_cursor = after.is_some();
        let filter = filter.unwrap_or_default().into_store()?;
        let page = promotions::list(&state.db, &filter, Utc::now(), page_request(first, after)?).await?;
        Ok(connection(page, had_cursor, |p| p.id, PromotionObject))
    }

    /// What a cart would get now. Records nothing and counts no usage.
    #[graphql(guard = "Allow(PREVIEW_ROLES)")]
    async fn preview_promotions(&self, ctx: &Context<'_>, cart: CartInput) -> Result<PromotionResultObject> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(PromotionResultObject(cart.preview(state).await?, None))
    }

    /// The order's redemption: the counted one, else the latest released one.
    #[graphql(guard = "Allow(auth::ANY)")]
    async fn redemption(&self, ctx: &Context<'_>, order_id: String) -> Result<Option<RedemptionObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let caller = super::caller(ctx)?;
        Ok(
            redemptions::find_latest(&state.db, order_id.trim(), super::orders_of(caller))
                .await?
                .map(RedemptionObject),
        )
    }

    /// The transactional outbox, newest first.
    #[graphql(guard = "Allow(auth::READERS)")]
    async fn outbox_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        status: Option<OutboxStatus>,
    ) -> Result<Conn<OutboxEventObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let had_cursor = after.is_some();
        let page = outbox::list(&state.db, status.map(Into::into), page_request(first, after)?).await?;
        Ok(connection(page, had_cursor, |e| e.id, OutboxEventObject))
    }

    /// Matched case-insensitively; null when no coupon has this code.
    #[graphql(guard = "Allow(auth::ANY)")]
    async fn coupon(&self, ctx: &Context<'_>, code: String) -> Result<Option<CouponObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let Ok(code) = normalize_code("code", &code) else {
            return Ok(None);
        };
        Ok(coupons::find_by_code(&state.db, &code).await?.map(CouponObject::named))
    }

    #[graphql(guard = "Allow(auth::ANY)")]
    async fn coupon_batch(&self, ctx: &Context<'_>, id: ID) -> Result<Option<CouponBatchObject>> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(coupon_batches::find(&state.db, parse_id("id", &id)?)
            .await?
            .map(CouponBatchObject))
    }
}
