//! Mutation resolvers: parse, call one use case, map.

use async_graphql::{Context, ID, Object, Result};

use crate::admin;
use crate::app::AppState;
use crate::domain::cart::Cart;
use crate::error::AppError;

use super::types::campaign::{CampaignInput, CampaignObject, CampaignStatus};
use super::types::checkout::{ApplyPromotionsInput, PromotionResultObject, RedemptionObject};
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

    /// The checkout call: evaluates the cart, atomically reserves every usage limit
    /// it touches and records the redemption under orderId. Idempotent per orderId:
    /// a retry with the same cart returns the recorded result and counts nothing
    /// twice; the same orderId with a different cart is a CONFLICT error. After a
    /// release, or when nothing was recorded, the orderId is free again.
    async fn apply_promotions(&self, ctx: &Context<'_>, input: ApplyPromotionsInput) -> Result<PromotionResultObject> {
        let state = ctx.data_unchecked::<AppState>();
        let cart = Cart::new("input.cart", &input.cart.into_draft()).map_err(AppError::from)?;
        let applied = state.redemptions.apply(&input.order_id, &cart).await?;
        Ok(PromotionResultObject(applied.cart, applied.redemption))
    }

    /// Gives the usage of a cancelled order back. Idempotent.
    async fn release_redemption(&self, ctx: &Context<'_>, order_id: String) -> Result<RedemptionObject> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(RedemptionObject(state.redemptions.release(&order_id).await?))
    }

    async fn set_coupon_active(&self, ctx: &Context<'_>, code: String, active: bool) -> Result<CouponObject> {
        let state = ctx.data_unchecked::<AppState>();
        Ok(CouponObject(
            admin::coupons::set_active(&state.db, &code, active).await?,
        ))
    }
}
