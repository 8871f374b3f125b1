//! Subscription resolvers (served on `/graphql/ws`, graphql-transport-ws
//! and the legacy graphql-ws protocol).

use std::time::Duration;

use async_graphql::futures_util::Stream;
use std::sync::Arc;

use async_graphql::{Context, Enum, ID, Result, SimpleObject, Subscription as GqlSubscription};
use chrono::{DateTime, Utc};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use super::feed::Feed;
use super::scalars::Long;
use super::types::common::parse_id;
use super::types::coupon::CouponBatchObject;
use crate::auth::{self, Allow};
use crate::error::AppError;
use crate::outbox::EventType;
use crate::outbox::events::{Envelope, RedemptionPromotions};
use crate::state::AppState;
use crate::store::coupon_batches;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum UsageChange {
    Redeemed,
    Released,
}

/// A redemption or release of one promotion, with its live counts after it.
#[derive(SimpleObject, Clone)]
pub struct UsageUpdate {
    pub promotion_id: ID,
    pub campaign_id: Option<ID>,
    pub order_id: String,
    pub change: UsageChange,
    pub amount: Long,
    pub redemptions: i32,
    pub remaining: Option<i32>,
    pub at: DateTime<Utc>,
}

/// How many more subscriptions one socket may open (its connection data).
#[derive(Clone)]
pub struct SubscriptionSlots {
    free: Arc<Semaphore>,
    capacity: usize,
}

impl SubscriptionSlots {
    /// `n` slots.
    pub fn new(n: usize) -> Self {
        Self {
            free: Arc::new(Semaphore::new(n)),
            capacity: n,
        }
    }

    /// A slot for a new subscription of this socket, held until it ends.
    fn take(ctx: &Context<'_>) -> Result<Option<OwnedSemaphorePermit>> {
        let Some(slots) = ctx.data_opt::<SubscriptionSlots>() else {
            return Ok(None);
        };
        match slots.free.clone().try_acquire_owned() {
            Ok(permit) => Ok(Some(permit)),
            Err(_) => Err(AppError::RateLimited {
                message: format!("this socket holds the most subscriptions it may ({})", slots.capacity),
                retry_after: None,
            }
            .into()),
        }
    }
}

/// The root subscription.
#[derive(Default)]
pub struct Subscription;

/// One promotion an event changed: (promotion, campaign, amount).
type Changed = (Uuid, Option<Uuid>, i64);

/// The promotions a redemption event changed.
fn changed(envelope: &Envelope) -> Option<(UsageChange, Vec<Changed>)> {
    let change = match EventType::parse(&envelope.event_type)? {
        EventType::RedemptionCreated => UsageChange::Redeemed,
        EventType::RedemptionReleased => UsageChange::Released,
        _ => return None,
    };
    let payload: RedemptionPromotions = serde_json::from_value(envelope.payload.clone()).ok()?;
    let parsed = payload
        .promotions
        .into_iter()
        .map(|p| (p.promotion_id, p.campaign_id, p.amount))
        .collect();
    Some((change, parsed))
}

#[GqlSubscription]
impl Subscription {
    /// Live usage for dashboards: every redemption and release, from any replica.
    #[graphql(guard = "Allow(auth::READERS)")]
    async fn usage_updated(
        &self,
        ctx: &Context<'_>,
        promotion_id: Option<ID>,
        campaign_id: Option<ID>,
    ) -> Result<impl Stream<Item = UsageUpdate>> {
        let state = ctx.data_unchecked::<AppState>().clone();
        let feed = ctx.data_unchecked::<Feed>().clone();
        let promotion_filter = promotion_id
            .as_ref()
            .map(|id| parse_id("promotionId", id))
            .transpose()?;
        let campaign_filter = campaign_id.as_ref().map(|id| parse_id("campaignId", id)).transpose()?;
        let mut events = feed.subscribe();
        let slot = SubscriptionSlots::take(ctx)?;
        Ok(async_stream::stream! {
            let _slot = slot;
            loop {
                let envelope = match events.recv().await {
                    Ok(e) => e,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                };
                let Some((change, promotions)) = changed(&envelope) else { continue };
                for (promotion, campaign, amount) in promotions {
                    let snapshot = state.pricing.snapshot();
                    let offer = snapshot.offer(promotion);
                    let campaign = campaign.or_else(|| offer.and_then(|o| o.promotion.definition.campaign_id));
                    if promotion_filter.is_some_and(|p| p != promotion) || campaign_filter.is_some_and(|c| Some(c) != campaign) {
                        continue;
                    }
                    let Ok(count) = crate::store::redemptions::counted_of_promotion(&state.db, promotion).await else { continue };
                    let limit = offer.and_then(|o| o.promotion.definition.total_usage_limit);
                    let redemptions = i32::try_from(count).unwrap_or(i32::MAX);
                    yield UsageUpdate {
                        promotion_id: ID(promotion.to_string()),
                        campaign_id: campaign.map(|c| ID(c.to_string())),
                        order_id: envelope.aggregate_id.clone(),
                        change,
                        amount: Long(amount),
                        redemptions,
                        remaining: limit.map(|l| (l - redemptions).max(0)),
                        at: DateTime::parse_from_rfc3339(&envelope.occurred_at).map(|t| t.with_timezone(&Utc)).unwrap_or_else(|_| Utc::now()),
                    };
                }
            }
        })
    }

    /// A coupon batch's state each time it changes, until it is DONE or FAILED.
    #[graphql(guard = "Allow(auth::READERS)")]
    async fn coupon_batch_progress(
        &self,
        ctx: &Context<'_>,
        batch_id: ID,
    ) -> Result<impl Stream<Item = CouponBatchObject>> {
        let state = ctx.data_unchecked::<AppState>().clone();
        let id = parse_id("batchId", &batch_id)?;
        if coupon_batches::find(&state.db, id).await?.is_none() {
            return Err(AppError::not_found("batchId", format!("no coupon batch with id {id}")).into());
        }
        let slot = SubscriptionSlots::take(ctx)?;
        Ok(async_stream::stream! {
            let _slot = slot;
            let mut last = None;
            loop {
                let Ok(Some(batch)) = coupon_batches::find(&state.db, id).await else { break };
                let now = (batch.generated, batch.status);
                let finished = batch.status.is_finished();
                if last.as_ref() != Some(&now) {
                    last = Some(now);
                    yield CouponBatchObject(batch);
                }
                if finished {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    }
}
