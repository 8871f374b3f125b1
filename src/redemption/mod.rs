//! Redemption: `applyPromotions` and `releaseRedemption`.
//!
//! Applying prices the cart, reserves every limited pool it touches in
//! Redis (one Lua script per promotion: check and count atomically), then
//! records the redemption, its usage and its outbox event in one PostgreSQL
//! transaction, which counts each use against the limit in force (see
//! [`crate::limits`]); it sends no NOTIFY (the [`outbox::Bell`] wakes the
//! relays after the commit), so concurrent orders commit in parallel. A pool found full, by Redis or by PostgreSQL, rejects
//! that promotion with its reason and the cart is priced again without it
//! (bounded). If recording fails, the reservations are given back and
//! nothing is counted. When Redis does not serve, nothing is reserved ahead
//! and PostgreSQL alone counts: the same result, exact, slower.

use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::domain::cart::Cart;
use crate::domain::engine::PricedCart;
use crate::domain::validation::identifier;
use crate::error::{AppError, AppResult};
use crate::limits::{Counters, Pool, Reserved, Usage, limited, pools_for, pools_of};
use crate::metrics::Metrics;
use crate::outbox::events::{RedeemedPromotion, RedemptionCreated, RedemptionReleased, ReleasedPromotion};
use crate::outbox::{self, Event, EventType};
use crate::pricing::{Priced, Pricing};
pub use crate::store::redemptions::Viewer;
use crate::store::redemptions::{self, RecordedPromotion, Redemption};
use crate::store::usage;

/// Most pricing rounds of one apply (each round drops at least one promotion).
const MAX_ROUNDS: usize = 16;
/// Most seeds of one pool within one reservation.
const MAX_SEEDS: usize = 3;

/// Everything the redemption use cases need.
#[derive(Clone)]
pub struct Redemptions {
    pub db: DatabaseConnection,
    pub counters: Counters,
    pub pricing: Arc<Pricing>,
    pub metrics: Arc<Metrics>,
    /// Wakes the relays after a commit that recorded an event.
    pub bell: outbox::Bell,
}

/// The result of an apply: the priced cart and the redemption, if recorded.
pub struct Applied {
    pub cart: PricedCart,
    pub redemption: Option<Redemption>,
}

/// Reservations taken in Redis for one order so far: per promotion, its
/// limited pools and the generation each was counted in.
#[derive(Default)]
struct Held {
    by_promotion: Vec<(Uuid, Vec<Pool>, Vec<String>)>,
}

enum Outcome {
    Done(Box<Applied>),
    /// PostgreSQL found this pool full (its limit in force): price again without it.
    Full(Pool),
}

impl Redemptions {
    /// Applies the cart's promotions to `order_id` for the client `subject`
    /// (the order's owner) and records their usage. Idempotent per order
    /// id: a retry with the same cart returns the recorded result; another
    /// cart is CONFLICT; another client's order is NOT_FOUND (it must not
    /// learn of it), unless `viewer` sees every order.
    #[tracing::instrument(skip_all, fields(order.id = order_id))]
    pub async fn apply(&self, order_id: &str, subject: &str, viewer: Viewer<'_>, cart: &Cart) -> AppResult<Applied> {
        let result = self.apply_with_retries(order_id, subject, viewer, cart).await;
        let outcome = match &result {
            Ok(applied) => {
                for rejected in &applied.cart.rejected {
                    if let Ok(serde_json::Value::String(reason)) = serde_json::to_value(rejected.reason) {
                        self.metrics.rejection(&reason);
                    }
                }
                if applied.redemption.is_some() {
                    "redeemed"
                } else {
                    "nothing_applied"
                }
            }
            Err(e) => e.code(),
        };
        self.metrics.redemption("apply", outcome);
        result
    }

    async fn apply_with_retries(
        &self,
        order_id: &str,
        subject: &str,
        viewer: Viewer<'_>,
        cart: &Cart,
    ) -> AppResult<Applied> {
        let order_id = identifier("input.orderId", order_id)?;
        // Pools found full so far; each round finds at least one more or ends.
        let mut usage = Usage::default();
        for _ in 0..MAX_ROUNDS {
            match self.apply_once(&order_id, subject, viewer, cart, &mut usage).await? {
                Outcome::Done(applied) => return Ok(*applied),
                Outcome::Full(pool) => usage.exhaust(&pool),
            }
        }
        Err(AppError::unavailable(
            "the cart's limits kept changing; retry the order",
        ))
    }

    async fn apply_once(
        &self,
        order_id: &str,
        subject: &str,
        viewer: Viewer<'_>,
        cart: &Cart,
        usage: &mut Usage,
    ) -> AppResult<Outcome> {
        let fingerprint = cart.fingerprint();
        let txn = self.db.begin().await?;
        if let Some(existing) = redemptions::claim(&txn, order_id).await? {
            txn.commit().await?;
            if !viewer.sees(&existing) {
                return Err(not_this_clients("input.orderId", order_id));
            }
            if existing.cart_hash != fingerprint {
                return Err(AppError::Conflict {
                    field: Some("input.orderId".into()),
                    message: format!("order {order_id} was already applied with another cart"),
                });
            }
            return Ok(Outcome::Done(Box::new(Applied {
                cart: existing.result.clone(),
                redemption: Some(existing),
            })));
        }
        // Everything below runs on this transaction's connection: an apply
        // never waits for a second pooled connection while holding one.
        let (priced, held) = self.price_and_reserve(&txn, cart, usage).await?;
        if priced.cart.applied.is_empty() {
            txn.commit().await?;
            return Ok(Outcome::Done(Box::new(Applied {
                cart: priced.cart,
                redemption: None,
            })));
        }
        let recorded = match self.record(&txn, order_id, subject, cart, &fingerprint, &priced).await {
            Ok(Ok(redemption)) => txn.commit().await.map(|_| Ok(redemption)).map_err(AppError::from),
            other => other,
        };
        match recorded {
            Ok(Ok(redemption)) => {
                self.bell.ring();
                Ok(Outcome::Done(Box::new(Applied {
                    cart: priced.cart,
                    redemption: Some(redemption),
                })))
            }
            Ok(Err(pool)) => {
                // PostgreSQL's limit in force is reached, whatever Redis
                // counted: its state of that pool is rebuilt on next use.
                self.give_back(&held).await;
                if let Some(promotion) = self.promotion_of(&priced, &pool)
                    && let Err(e) = self.counters.forget(promotion, &pool).await
                {
                    tracing::warn!(error = ?e, "dropping a usage counter failed; it expires on its own");
                }
                Ok(Outcome::Full(pool))
            }
            Err(e) => {
                self.give_back(&held).await;
                Err(e)
            }
        }
    }

    /// The promotion under whose hash tag `pool` lives in this priced cart.
    fn promotion_of(&self, priced: &Priced, pool: &Pool) -> Option<Uuid> {
        priced
            .cart
            .applied
            .iter()
            .find(|a| a.promotion_id == pool.owner || a.coupon_id == Some(pool.owner))
            .map(|a| a.promotion_id)
    }

    /// Prices the cart and reserves its limited pools in Redis; a full pool
    /// drops its promotion (with the matching rejection) and prices again.
    async fn price_and_reserve(
        &self,
        db: &impl ConnectionTrait,
        cart: &Cart,
        usage: &mut Usage,
    ) -> AppResult<(Priced, Held)> {
        let customer = cart.customer.as_ref().map(|c| c.id.as_str());
        let (snapshot, found) = self.pricing.inputs(db, cart).await?;
        // No counts are read first: the reservations themselves say which
        // limit is full (one Redis call per limited promotion, not two).
        for _ in 0..MAX_ROUNDS {
            let priced = self.pricing.evaluate(cart, snapshot.clone(), found.clone(), usage);
            let mut held = Held::default();
            let mut full: Option<Pool> = None;
            for applied in &priced.cart.applied {
                let Some((promotion, coupon)) = priced.parts(applied.promotion_id, applied.coupon_id) else {
                    continue;
                };
                let pools = limited(&pools_of(&promotion, coupon.as_deref(), customer));
                if pools.is_empty() {
                    continue;
                }
                match self.reserve(db, promotion.id, pools).await {
                    Ok(Ok((pools, generations))) => held.by_promotion.push((promotion.id, pools, generations)),
                    Ok(Err(pool)) => {
                        full = Some(pool);
                        break;
                    }
                    // Redis does not serve: nothing is reserved ahead, and
                    // the recording statement alone counts these pools
                    // against their limits in force (exact, serialised per
                    // pool by PostgreSQL); a full one prices again without it.
                    Err(AppError::Unavailable(cause)) => {
                        tracing::debug!(error = %cause.chain(), "Redis does not serve: PostgreSQL alone counts the pools");
                    }
                    Err(e) => {
                        self.give_back(&held).await;
                        return Err(e);
                    }
                }
            }
            match full {
                None => return Ok((priced, held)),
                Some(pool) => {
                    self.give_back(&held).await;
                    usage.exhaust(&pool);
                }
            }
        }
        Err(AppError::unavailable(
            "the cart's limits kept changing; retry the order",
        ))
    }

    /// Reserves `pools` of one promotion, seeding missing pool state from
    /// PostgreSQL (one row each). A pool Redis finds full under the
    /// snapshot's limit is checked once against the limit in force (the
    /// snapshot may be a moment behind a change). Ok(Ok): the pools
    /// reserved and their generations; Ok(Err(pool)): that pool is full.
    async fn reserve(
        &self,
        db: &impl ConnectionTrait,
        promotion: Uuid,
        mut pools: Vec<Pool>,
    ) -> AppResult<Result<(Vec<Pool>, Vec<String>), Pool>> {
        let mut checked: Vec<Pool> = Vec::new();
        for _ in 0..=(MAX_SEEDS + 1) * pools.len() {
            if pools.is_empty() {
                return Ok(Ok((pools, Vec::new())));
            }
            match self.counters.reserve(promotion, &pools).await? {
                Reserved::Taken(generations) => return Ok(Ok((pools, generations))),
                Reserved::NeedsSeed(i) => {
                    let used = usage::used(db, &pools[i]).await?;
                    self.counters.seed(promotion, &pools[i], used).await?;
                }
                Reserved::Full(i) => {
                    let identity = Pool {
                        limit: None,
                        ..pools[i].clone()
                    };
                    if checked.contains(&identity) {
                        return Ok(Err(pools.swap_remove(i)));
                    }
                    checked.push(identity);
                    match usage::limit_in_force(db, &pools[i]).await? {
                        Some(limit) if Some(limit) == pools[i].limit => return Ok(Err(pools.swap_remove(i))),
                        Some(limit) => pools[i].limit = Some(limit),
                        None => {
                            pools.remove(i);
                        }
                    }
                }
            }
        }
        Err(AppError::unavailable(
            "usage counters could not be seeded; retry the order",
        ))
    }

    /// Records the redemption, its usage (PostgreSQL counts every pool
    /// against its limit in force) and its event, in one statement. Ok(Err(pool)): that
    /// pool is full; nothing may be committed.
    async fn record(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        order_id: &str,
        subject: &str,
        cart: &Cart,
        fingerprint: &str,
        priced: &Priced,
    ) -> AppResult<Result<Redemption, Pool>> {
        let now = Utc::now();
        let id = Uuid::now_v7();
        let customer = cart.customer.as_ref().map(|c| c.id.as_str());
        let promotions: Vec<RecordedPromotion> = priced
            .cart
            .applied
            .iter()
            .map(|a| RecordedPromotion {
                promotion_id: a.promotion_id,
                coupon_id: a.coupon_id,
                amount: a.amount,
            })
            .collect();
        let payload = RedemptionCreated {
            order_id: order_id.to_owned(),
            customer_id: customer.map(str::to_owned),
            currency: priced.cart.currency.clone(),
            discount_total: priced.cart.discount_total,
            promotions: priced
                .cart
                .applied
                .iter()
                .map(|a| RedeemedPromotion {
                    promotion_id: a.promotion_id,
                    campaign_id: priced
                        .snapshot
                        .offer(a.promotion_id)
                        .and_then(|o| o.promotion.definition.campaign_id),
                    coupon_code: a.coupon_code.clone(),
                    amount: a.amount,
                })
                .collect(),
        };
        let event = Event::new(EventType::RedemptionCreated, order_id, &payload)?;
        redemptions::insert(
            txn,
            id,
            order_id,
            subject,
            customer,
            fingerprint,
            &priced.cart,
            &promotions,
            &event.row(Uuid::now_v7(), now),
            now,
        )
        .await
    }

    /// Gives an order's Redis reservations back (after a failure); logged,
    /// not raised: a counter that missed it is seeded anew within its ttl.
    async fn give_back(&self, held: &Held) {
        for (promotion, pools, generations) in &held.by_promotion {
            if let Err(e) = self.counters.give_back(*promotion, pools, Some(generations)).await {
                tracing::warn!(error = ?e, promotion.id = %promotion, "giving a reservation back failed; it expires with its counter");
            }
        }
    }

    /// Releases the order's redemption (idempotent): its usage is given back
    /// and the order id is free again. An order never applied, or another
    /// client's (unless `viewer` sees every order), is NOT_FOUND.
    #[tracing::instrument(skip_all, fields(order.id = order_id))]
    pub async fn release(&self, order_id: &str, viewer: Viewer<'_>) -> AppResult<Redemption> {
        let result = self.release_once(order_id, viewer).await;
        let outcome = match &result {
            Ok(_) => "released",
            Err(e) => e.code(),
        };
        self.metrics.redemption("release", outcome);
        result
    }

    async fn release_once(&self, order_id: &str, viewer: Viewer<'_>) -> AppResult<Redemption> {
        let order_id = identifier("orderId", order_id)?;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        redemptions::lock_order(&txn, &order_id).await?;
        let Some(redemption) = redemptions::release(&txn, &order_id, viewer, now).await? else {
            let latest = redemptions::find_latest(&txn, &order_id, viewer).await?;
            txn.commit().await?;
            return latest.ok_or_else(|| not_this_clients("orderId", &order_id));
        };
        let payload = RedemptionReleased {
            order_id: order_id.clone(),
            customer_id: redemption.customer_id.clone(),
            discount_total: redemption.discount_total,
            promotions: redemption
                .result
                .applied
                .iter()
                .map(|a| ReleasedPromotion {
                    promotion_id: a.promotion_id,
                    coupon_code: a.coupon_code.clone(),
                    amount: a.amount,
                })
                .collect(),
        };
        outbox::record(
            &txn,
            Event::new(EventType::RedemptionReleased, &order_id, &payload)?,
            now,
        )
        .await?;
        txn.commit().await?;
        self.bell.ring();
        self.give_back_released(&redemption).await;
        Ok(redemption)
    }

    /// Takes the released uses out of the Redis counters (after the commit).
    async fn give_back_released(&self, redemption: &Redemption) {
        let customer = redemption.customer_id.as_deref();
        for applied in &redemption.result.applied {
            let pools = pools_for(applied.promotion_id, applied.coupon_id, customer);
            if let Err(e) = self.counters.give_back(applied.promotion_id, &pools, None).await {
                tracing::warn!(error = ?e, "taking released uses out of Redis failed; its counters are seeded anew within their ttl");
            }
        }
    }
}

/// NOT_FOUND for an order that does not exist or is another client's: the
/// same answer, so a client cannot learn of another's orders.
fn not_this_clients(field: &str, order_id: &str) -> AppError {
    AppError::not_found(field, format!("no redemption for order {order_id}"))
}
