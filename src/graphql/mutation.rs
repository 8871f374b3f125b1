//! Mutation resolvers: parse, call one use case, map.

use async_graphql::{Context, ID, Object, Result};

use crate::admin;
use crate::app::AppState;

use super::types::campaign::{CampaignInput, CampaignObject, CampaignStatus};
use super::types::common::parse_id;
use super::types::coupon::{CouponInput, CouponObject};
use super::types::promotion::{PromotionInput, PromotionObject};

/// The root mutation.
#[derive(Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    async fn create_campaign(&self, ctx: &Context<'_>, input: CampaignInput) -> Result<CampaignObject> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(CampaignObject(
            admin::campaigns::create(&state.db, &input.into_draft()).await?,
        ))
    }

    async fn update_campaign(&self, ctx: &Context<'_>, id: ID, input: CampaignInput) -> Result<CampaignObject> {
        let state = ctx.data_unchecked::<AppState>();
        let id = parse_id("id", &id)?;
        Ok(CampaignObject(
            admin::campaigns::update(&state.db, id, &input.into_draft()).await?,
        ))
    }

    async fn set_campaign_status(&self, ctx: &Context<'_>, id: ID, status: CampaignStatus) -> Result<CampaignObject> {
        let state = ctx.data_unchecked::<AppState>();
        let id = parse_id("id", &id)?;
        Ok(CampaignObject(
            admin::campaigns::set_status(&state.db, id, status.into()).await?,
        ))
    }

    async fn create_promotion(&self, ctx: &Context<'_>, input: PromotionInput) -> Result<PromotionObject> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(PromotionObject(
            admin::promotions::create(&state.db, &input.into_draft()?).await?,
        ))
    }

    /// Replaces the whole definition; usage counts are kept.
    async fn update_promotion(&self, ctx: &Context<'_>, id: ID, input: PromotionInput) -> Result<PromotionObject> {
        let state = ctx.data_unchecked::<AppState>();
        let id = parse_id("id", &id)?;
        Ok(PromotionObject(
            admin::promotions::update(&state.db, id, &input.into_draft()?).await?,
        ))
    }

    async fn set_promotion_active(&self, ctx: &Context<'_>, id: ID, active: bool) -> Result<PromotionObject> {
        let state = ctx.data_unchecked::<AppState>();
        let id = parse_id("id", &id)?;
        Ok(PromotionObject(
            admin::promotions::set_active(&state.db, id, active).await?,
        ))
    }

    async fn create_coupon(&self, ctx: &Context<'_>, input: CouponInput) -> Result<CouponObject> {
        let state = ctx.data_unchecked::<AppState>();
        let (promotion_id, draft) = input.into_draft()?;
        Ok(CouponObject(
            admin::coupons::create(&state.db, promotion_id, &draft).await?,
        ))
    }

    async fn set_coupon_active(&self, ctx: &Context<'_>, code: String, active: bool) -> Result<CouponObject> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(CouponObject(
            admin::coupons::set_active(&state.db, &code, active).await?,
        ))
    }
}
