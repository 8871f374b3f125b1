//! Redemption: `applyPromotions` and `releaseRedemption`.
//!
//! Applying prices the cart, reserves every limit it touches in Redis
//! (one Lua script per promotion: check and take slots atomically), then
//! records the redemption, its slots and its outbox event in one PostgreSQL
//! transaction. A limit found full rejects that promotion with its reason
//! and the cart is priced again without it (bounded). If recording fails,
//! the reservations are given back and nothing is counted.
//!
//! The limits cannot be exceeded even when Redis is wrong: every counted use
//! holds a numbered slot in `usage_slots`, unique per pool and never above
//! the limit (see the migration). A slot clash (Redis lost data) makes the
//! pool reseed from PostgreSQL and the order try again.

pub mod pools;
pub mod reconcile;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::domain::cart::Cart;
use crate::domain::engine::PricedCart;
use crate::domain::validation::identifier;
use crate::error::{AppError, AppResult};
use crate::metrics::Metrics;
use crate::outbox::{self, Event};
use crate::pricing::{Priced, Pricing, Usage, pools_of};
use crate::store::redemptions::{self, RecordedPromotion, Redemption, SlotRow};
use pools::{Pool, Pools, Reserved, Slot};
use reconcile::Reconciler;

/// Most pricing rounds of one apply (each round drops at least one promotion).
const MAX_ROUNDS: usize = 16;
/// Most seeds of one pool within one reservation.
const MAX_SEEDS: usize = 3;
/// Most attempts when PostgreSQL refuses a slot that Redis gave.
const MAX_SLOT_CLASHES: usize = 3;

/// Everything the redemption use cases need.
#[derive(Clone)]
pub struct Redemptions {
    pub db: DatabaseConnection,
    pub pools: Pools,
    pub pricing: Arc<Pricing>,
    pub reconciler: Arc<Reconciler>,
    pub metrics: Arc<Metrics>,
}

/// The result of an apply: the priced cart and the redemption, if recorded.
pub struct Applied {
    pub cart: PricedCart,
    pub redemption: Option<Redemption>,
}

/// Reservations taken for one order so far.
#[derive(Default)]
struct Held {
    by_promotion: Vec<(Uuid, Vec<Slot>)>,
}

impl Held {
    fn slots(&self) -> impl Iterator<Item = &Slot> {
        self.by_promotion.iter().flat_map(|(_, s)| s)
    }
}

enum Outcome {
    Done(Box<Applied>),
    SlotClash(Vec<(Uuid, Pool)>),
}

impl Redemptions {
    /// Applies the cart's promotions to `order_id` and records their usage.
    /// Idempotent per order id: a retry with the same cart returns the
    /// recorded result; another cart is CONFLICT.
    #[tracing::instrument(skip_all, fields(order.id = order_id))]
    pub async fn apply(&self, order_id: &str, cart: &Cart) -> AppResult<Applied> {
        let result = self.apply_with_retries(order_id, cart).await;
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

    async fn apply_with_retries(&self, order_id: &str, cart: &Cart) -> AppResult<Applied> {
        let order_id = identifier("input.orderId", order_id)?;
        for _ in 0..MAX_SLOT_CLASHES {
            match self.apply_once(&order_id, cart).await? {
                Outcome::Done(applied) => return Ok(*applied),
                Outcome::SlotClash(pools) => {
                    // Redis handed out a slot PostgreSQL holds: its state is
                    // stale (lost data). Rebuild those pools from PostgreSQL.
                    for (promotion, pool) in pools {
                        self.pools.forget(promotion, &pool).await?;
                    }
                }
            }
        }
        Err(AppError::Unavailable(
            "usage counters are being rebuilt; retry the order".into(),
        ))
    }

    async fn apply_once(&self, order_id: &str, cart: &Cart) -> AppResult<Outcome> {
        let fingerprint = cart.fingerprint();
        let txn = self.db.begin().await?;
        redemptions::lock_order(&txn, order_id).await?;
        if let Some(existing) = redemptions::find_redeemed(&txn, order_id).await? {
            txn.commit().await?;
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
        let (priced, held) = self.price_and_reserve(&txn, order_id, cart).await?;
        if priced.cart.applied.is_empty() {
            txn.commit().await?;
            return Ok(Outcome::Done(Box::new(Applied {
                cart: priced.cart,
                redemption: None,
            })));
        }
        let recorded = match self.record(&txn, order_id, cart, &fingerprint, &priced, &held).await {
            Ok(r) => txn.commit().await.map(|_| r).map_err(|e| Recorded::Failed(e.into())),
            Err(e) => Err(e),
        };
        match recorded {
            Ok(redemption) => {
                let promotions: Vec<Uuid> = held.by_promotion.iter().map(|(p, _)| *p).collect();
                let (pools, order) = (self.pools.clone(), order_id.to_owned());
                // Off the response path; a pending entry left behind is cleared by the reconciler.
                tokio::spawn(async move {
                    for promotion in promotions {
                        if let Err(e) = pools.confirm(promotion, &order).await {
                            tracing::warn!(error = ?e, "confirming a reservation failed");
                        }
                    }
                });
                self.reconciler.touch(&priced.cart);
                Ok(Outcome::Done(Box::new(Applied {
                    cart: priced.cart,
                    redemption: Some(redemption),
                })))
            }
            Err(error) => {
                self.give_back(order_id, &held).await;
                match error {
                    Recorded::SlotClash => Ok(Outcome::SlotClash(
                        held.by_promotion
                            .iter()
                            .flat_map(|(p, s)| s.iter().map(|s| (*p, s.pool.clone())))
                            .collect(),
                    )),
                    Recorded::Failed(e) => Err(e),
                }
            }
        }
    }

    /// Prices the cart and reserves its limits; a full limit drops its
    /// promotion (with the matching rejection) and prices again.
    async fn price_and_reserve(
        &self,
        db: &impl ConnectionTrait,
        order_id: &str,
        cart: &Cart,
    ) -> AppResult<(Priced, Held)> {
        let customer = cart.customer.as_ref().map(|c| c.id.as_str());
        let (snapshot, found) = self.pricing.inputs(db, cart).await?;
        // No counts are read first: the reservations themselves say which
        // limit is full (one Redis call per limited promotion, not two).
        let mut usage = Usage::default();
        let now = Utc::now().timestamp();
        for _ in 0..MAX_ROUNDS {
            let priced = self.pricing.evaluate(cart, snapshot.clone(), found.clone(), &usage);
            let mut held = Held::default();
            let mut full: Option<Pool> = None;
            for applied in &priced.cart.applied {
                let Some((promotion, coupon)) = priced.parts(applied.promotion_id, applied.coupon_id) else {
                    continue;
                };
                let pools = pools_of(&promotion, coupon.as_deref(), customer);
                if pools.is_empty() {
                    continue;
                }
                match self.reserve(db, promotion.id, order_id, &pools, now).await {
                    Ok(Ok(slots)) => held.by_promotion.push((promotion.id, slots)),
                    Ok(Err(pool)) => {
                        full = Some(pool);
                        break;
                    }
                    Err(e) => {
                        self.give_back(order_id, &held).await;
                        return Err(e);
                    }
                }
            }
            match full {
                None => return Ok((priced, held)),
                Some(pool) => {
                    self.give_back(order_id, &held).await;
                    usage.exhaust(&pool);
                }
            }
        }
        Err(AppError::Unavailable(
            "the cart's limits kept changing; retry the order".into(),
        ))
    }

    /// Reserves `pools` of one promotion, seeding missing pool state from
    /// PostgreSQL. Ok(Err(pool)): that pool is full.
    async fn reserve(
        &self,
        db: &impl ConnectionTrait,
        promotion: Uuid,
        order_id: &str,
        pools: &[Pool],
        now: i64,
    ) -> AppResult<Result<Vec<Slot>, Pool>> {
        for _ in 0..=MAX_SEEDS * pools.len() {
            match self.pools.reserve(promotion, order_id, pools, now).await? {
                Reserved::Taken(numbers) => {
                    let slots = pools
                        .iter()
                        .cloned()
                        .zip(numbers)
                        .map(|(pool, slot)| Slot { pool, slot })
                        .collect();
                    return Ok(Ok(slots));
                }
                Reserved::Full(i) => return Ok(Err(pools[i].clone())),
                Reserved::NeedsSeed(i) => {
                    let pool = &pools[i];
                    let customer = pool.customer.as_deref().unwrap_or("");
                    let used = redemptions::used_slots(db, pool.scope.as_str(), pool.owner, customer).await?;
                    self.pools.seed(promotion, pool, &used).await?;
                }
            }
        }
        Err(AppError::Unavailable(
            "usage counters could not be seeded; retry the order".into(),
        ))
    }

    async fn record(
        &self,
        txn: &sea_orm::DatabaseTransaction,
        order_id: &str,
        cart: &Cart,
        fingerprint: &str,
        priced: &Priced,
        held: &Held,
    ) -> Result<Redemption, Recorded> {
        let now = Utc::now();
        let id = Uuid::now_v7();
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
        let slots: Vec<SlotRow> = held
            .slots()
            .map(|s| SlotRow {
                scope: s.pool.scope.as_str().to_owned(),
                owner_id: s.pool.owner,
                customer_id: s.pool.customer.clone().unwrap_or_default(),
                slot: s.slot,
            })
            .collect();
        let customer = cart.customer.as_ref().map(|c| c.id.as_str());
        let redemption = redemptions::insert(
            txn,
            id,
            order_id,
            customer,
            fingerprint,
            &priced.cart,
            &promotions,
            &slots,
            now,
        )
        .await
        .map_err(Recorded::from)?;
        let payload = serde_json::json!({
            "orderId": order_id,
            "customerId": customer,
            "currency": priced.cart.currency,
            "discountTotal": priced.cart.discount_total,
            "promotions": priced.cart.applied.iter().map(|a| serde_json::json!({
                "promotionId": a.promotion_id,
                "campaignId": priced.snapshot.offer(a.promotion_id).and_then(|o| o.promotion.definition.campaign_id),
                "couponCode": a.coupon_code,
                "amount": a.amount,
            })).collect::<Vec<_>>(),
        });
        let event = Event::new("redemption.created", "redemption", order_id, &payload).map_err(Recorded::Failed)?;
        outbox::enqueue(txn, event, now).await.map_err(Recorded::Failed)?;
        Ok(redemption)
    }

    /// Gives an order's reservations back (after a failure); logged, not raised.
    async fn give_back(&self, order_id: &str, held: &Held) {
        for (promotion, slots) in &held.by_promotion {
            if let Err(e) = self.pools.release(*promotion, Some(order_id), slots).await {
                tracing::warn!(error = ?e, promotion.id = %promotion, "giving a reservation back failed; the reconciler will");
            }
        }
    }

    /// Releases the order's redemption (idempotent): its usage is given back
    /// and the order id is free again. An order never applied is NOT_FOUND.
    #[tracing::instrument(skip_all, fields(order.id = order_id))]
    pub async fn release(&self, order_id: &str) -> AppResult<Redemption> {
        let result = self.release_once(order_id).await;
        let outcome = match &result {
            Ok(_) => "released",
            Err(e) => e.code(),
        };
        self.metrics.redemption("release", outcome);
        result
    }

    async fn release_once(&self, order_id: &str) -> AppResult<Redemption> {
        let order_id = identifier("orderId", order_id)?;
        let now = Utc::now();
        let txn = self.db.begin().await?;
        redemptions::lock_order(&txn, &order_id).await?;
        let Some((redemption, freed)) = redemptions::release(&txn, &order_id, now).await? else {
            let latest = redemptions::find_latest(&txn, &order_id).await?;
            txn.commit().await?;
            return latest.ok_or_else(|| AppError::not_found("orderId", format!("no redemption for order {order_id}")));
        };
        let payload = serde_json::json!({
            "orderId": order_id,
            "customerId": redemption.customer_id,
            "discountTotal": redemption.discount_total,
            "promotions": redemption.result.applied.iter().map(|a| serde_json::json!({
                "promotionId": a.promotion_id, "couponCode": a.coupon_code, "amount": a.amount,
            })).collect::<Vec<_>>(),
        });
        outbox::enqueue(
            &txn,
            Event::new("redemption.released", "redemption", &order_id, &payload)?,
            now,
        )
        .await?;
        txn.commit().await?;
        self.give_back_freed(&redemption, &freed).await;
        self.reconciler.touch(&redemption.result);
        Ok(redemption)
    }

    /// Puts released slots back in their Redis pools (after the commit).
    async fn give_back_freed(&self, redemption: &Redemption, freed: &[SlotRow]) {
        let customer = redemption.customer_id.clone();
        let mut done: HashSet<Uuid> = HashSet::new();
        for applied in &redemption.result.applied {
            if !done.insert(applied.promotion_id) {
                continue;
            }
            let owners = [Some(applied.promotion_id), applied.coupon_id];
            let slots: Vec<Slot> = freed
                .iter()
                .filter(|row| owners.contains(&Some(row.owner_id)))
                .filter_map(|row| {
                    let scope = match row.scope.as_str() {
                        "PROMOTION" => pools::Scope::Promotion,
                        "PROMOTION_CUSTOMER" => pools::Scope::PromotionCustomer,
                        "COUPON" => pools::Scope::Coupon,
                        "COUPON_CUSTOMER" => pools::Scope::CouponCustomer,
                        _ => return None,
                    };
                    let customer = (!row.customer_id.is_empty()).then(|| row.customer_id.clone());
                    Some(Slot {
                        pool: Pool {
                            scope,
                            owner: row.owner_id,
                            customer,
                            limit: 0,
                        },
                        slot: row.slot,
                    })
                })
                .collect();
            if slots.is_empty() {
                continue;
            }
            if let Err(e) = self.pools.release(applied.promotion_id, None, &slots).await {
                tracing::warn!(error = ?e, customer = ?customer, "returning released slots to Redis failed; counts stay high until reseeded");
            }
        }
    }
}

/// Why recording failed.
enum Recorded {
    /// PostgreSQL refused a slot (taken, or above the limit): Redis was stale.
    SlotClash,
    Failed(AppError),
}

impl From<AppError> for Recorded {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Conflict { message, .. } if message == redemptions::SLOT_CLASH => Recorded::SlotClash,
            other => Recorded::Failed(other),
        }
    }
}
