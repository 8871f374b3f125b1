//! Mutation resolvers: parse, call one use case, map.
//!
//! Every use case runs [`detached`]: a client that disconnects mid-request
//! cannot cancel a transaction half-way (a dropped future would hand its
//! connection back with the transaction still open).

use async_graphql::{Context, ID, Object, Result};
use tracing::Instrument;

use crate::admin;
use crate::auth::{self, Allow};
use crate::domain::Invalid;
use crate::domain::campaign::CampaignDefinition;
use crate::domain::cart::Cart;
use crate::domain::code_pattern::BatchDefinition;
use crate::domain::coupon::CouponDefinition;
use crate::domain::promotion::PromotionDefinition;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

use super::types::campaign::{CampaignInput, CampaignObject, CampaignStatus};
use super::types::checkout::{ApplyPromotionsInput, PromotionResultObject, RedemptionObject};
use super::types::common::parse_id;
use super::types::coupon::{CouponBatchObject, CouponInput, CouponObject, GenerateCouponsInput, UpdateCouponInput};
use super::types::outbox::OutboxEventObject;
use super::types::promotion::{PromotionInput, PromotionObject};
use super::{caller, orders_of};

/// A definition checked from the mutation's `input`: the domain names
/// fields relative to the draft, the resolver puts them under `input`.
fn valid<T>(checked: Result<T, Invalid>) -> Result<T, AppError> {
    checked.map_err(|invalid| invalid.under("input").into())
}

/// Runs a use case on its own task, to completion, whatever the request does.
async fn detached<T: Send + 'static>(work: impl Future<Output = AppResult<T>> + Send + 'static) -> AppResult<T> {
    tokio::spawn(work.in_current_span())
        .await
        .map_err(|e| AppError::internal_from("a use case task failed", e))?
}

/// The root mutation.
#[derive(Default)]
pub struct Mutation;

#[Object]
impl Mutation {
    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn create_campaign(&self, ctx: &Context<'_>, input: CampaignInput) -> Result<CampaignObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let def = valid(CampaignDefinition::new(&input.into_draft()))?;
        Ok(CampaignObject(
            detached(async move { admin::campaigns::create(&db, &def).await }).await?,
        ))
    }

    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn update_campaign(&self, ctx: &Context<'_>, id: ID, input: CampaignInput) -> Result<CampaignObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let (id, def) = (
            parse_id("id", &id)?,
            valid(CampaignDefinition::new(&input.into_draft()))?,
        );
        Ok(CampaignObject(
            detached(async move { admin::campaigns::update(&db, id, &def).await }).await?,
        ))
    }

    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn set_campaign_status(&self, ctx: &Context<'_>, id: ID, status: CampaignStatus) -> Result<CampaignObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let id = parse_id("id", &id)?;
        Ok(CampaignObject(
            detached(async move { admin::campaigns::set_status(&db, id, status.into()).await }).await?,
        ))
    }

    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn create_promotion(&self, ctx: &Context<'_>, input: PromotionInput) -> Result<PromotionObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let def = valid(PromotionDefinition::new(&input.into_draft()?))?;
        Ok(PromotionObject(
            detached(async move { admin::promotions::create(&db, &def).await }).await?,
        ))
    }

    /// Replaces the whole definition; usage counts are kept.
    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn update_promotion(&self, ctx: &Context<'_>, id: ID, input: PromotionInput) -> Result<PromotionObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let (id, def) = (
            parse_id("id", &id)?,
            valid(PromotionDefinition::new(&input.into_draft()?))?,
        );
        Ok(PromotionObject(
            detached(async move { admin::promotions::update(&db, id, &def).await }).await?,
        ))
    }

    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn set_promotion_active(&self, ctx: &Context<'_>, id: ID, active: bool) -> Result<PromotionObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let id = parse_id("id", &id)?;
        Ok(PromotionObject(
            detached(async move { admin::promotions::set_active(&db, id, active).await }).await?,
        ))
    }

    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn create_coupon(&self, ctx: &Context<'_>, input: CouponInput) -> Result<CouponObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let (promotion_id, draft) = input.into_draft()?;
        let def = valid(CouponDefinition::new(&draft))?;
        Ok(CouponObject::named(
            detached(async move { admin::coupons::create(&db, promotion_id, &def).await }).await?,
        ))
    }

    /// Changes a coupon's limits and window; a limit counts every use so far.
    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn update_coupon(&self, ctx: &Context<'_>, code: String, input: UpdateCouponInput) -> Result<CouponObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let update = input.into_update();
        Ok(CouponObject::named(
            detached(async move { admin::coupons::update(&db, &code, &update).await }).await?,
        ))
    }

    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn set_coupon_active(&self, ctx: &Context<'_>, code: String, active: bool) -> Result<CouponObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        Ok(CouponObject::named(
            detached(async move { admin::coupons::set_active(&db, &code, active).await }).await?,
        ))
    }

    /// Generates unique codes from a pattern; large counts run as a background job.
    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn generate_coupons(&self, ctx: &Context<'_>, input: GenerateCouponsInput) -> Result<CouponBatchObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let (promotion_id, draft) = input.into_draft()?;
        let def = valid(BatchDefinition::new(&draft))?;
        Ok(CouponBatchObject(
            detached(async move { admin::coupon_batches::create(&db, promotion_id, &def).await }).await?,
        ))
    }

    /// The checkout call: evaluates the cart, atomically reserves every usage limit
    /// it touches and records the redemption under orderId. Idempotent per orderId:
    /// a retry with the same cart returns the recorded result and counts nothing
    /// twice; the same orderId with a different cart is a CONFLICT error. After a
    /// release, or when nothing was recorded, the orderId is free again.
    #[graphql(guard = "Allow(auth::CHECKOUT)")]
    async fn apply_promotions(&self, ctx: &Context<'_>, input: ApplyPromotionsInput) -> Result<PromotionResultObject> {
        let redemptions = ctx.data_unchecked::<AppState>().redemptions.clone();
        let caller = caller(ctx)?.clone();
        let cart = Cart::new("input.cart", &input.cart.into_draft()).map_err(AppError::from)?;
        let order_id = input.order_id;
        let applied = detached(async move {
            redemptions
                .apply(&order_id, &caller.subject, orders_of(&caller), &cart)
                .await
        })
        .await?;
        Ok(PromotionResultObject(applied.cart, applied.redemption))
    }

    /// Puts a DEAD outbox event back to PENDING.
    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn retry_outbox_event(&self, ctx: &Context<'_>, id: ID) -> Result<OutboxEventObject> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        let id = parse_id("id", &id)?;
        Ok(OutboxEventObject(
            detached(async move { crate::store::outbox::retry(&db, id).await }).await?,
        ))
    }

    /// Puts every DEAD outbox event back to PENDING, in their order; returns how many.
    #[graphql(guard = "Allow(auth::ADMIN)")]
    async fn retry_outbox_events(&self, ctx: &Context<'_>) -> Result<u64> {
        let db = ctx.data_unchecked::<AppState>().db.clone();
        Ok(detached(async move { crate::store::outbox::retry_all_dead(&db).await }).await?)
    }

    /// Gives the usage of a cancelled order back. Idempotent.
    #[graphql(guard = "Allow(auth::CHECKOUT)")]
    async fn release_redemption(&self, ctx: &Context<'_>, order_id: String) -> Result<RedemptionObject> {
        let redemptions = ctx.data_unchecked::<AppState>().redemptions.clone();
        let caller = caller(ctx)?.clone();
        Ok(RedemptionObject(
            detached(async move { redemptions.release(&order_id, orders_of(&caller)).await }).await?,
        ))
    }
}
