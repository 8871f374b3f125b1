//! Pricing carts for the checkout: the promotion snapshot, the coupon cache
//! and the evaluation call. The hot path reads no promotion from PostgreSQL:
//! it uses the snapshot, rebuilt when any replica changes a promotion or
//! campaign (PostgreSQL NOTIFY sent in the change's transaction) and every
//! [`REFRESH_EVERY`] as a safety net. Coupons are read by code (unique
//! index) through a short-lived cache that changes invalidate.

pub mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc, Weekday};
use sea_orm::sqlx::postgres::PgListener;
use sea_orm::{AccessMode, ConnectionTrait, DatabaseConnection, IsolationLevel, TransactionTrait};
use uuid::Uuid;

use crate::domain::cart::Cart;
use crate::domain::coupon::{Coupon, normalize_code};
use crate::domain::engine::{self, Evaluation, PricedCart, SubmittedCoupon};
use crate::domain::promotion::DayOfWeek;
use crate::domain::promotion::Promotion;
use crate::error::AppResult;
use crate::limits::{self, Counters, Usage, limited, pools_of};
use crate::store::{campaigns, coupons, promotions};
use snapshot::Snapshot;

use crate::store::{CHANGES_CHANNEL, Change};

const CHANGED_PROMOTIONS: &str = Change::Promotions.as_str();
const CHANGED_COUPONS: &str = Change::Coupons.as_str();
/// Safety-net rebuild period, should a notification be missed.
pub const REFRESH_EVERY: Duration = Duration::from_secs(30);
/// How long a coupon (or its absence) stays cached.
const COUPON_TTL: Duration = Duration::from_secs(10);
/// Most cached coupon codes.
const COUPON_CACHE_SIZE: u64 = 100_000;

/// The pricing service, shared by all requests.
pub struct Pricing {
    db: DatabaseConnection,
    counters: Counters,
    snapshot: RwLock<Arc<Snapshot>>,
    coupons: moka::sync::Cache<String, Option<Arc<Coupon>>>,
    time_zone: chrono_tz::Tz,
}

/// A priced cart with what was needed to price it.
pub struct Priced {
    pub cart: PricedCart,
    pub snapshot: Arc<Snapshot>,
    /// The coupons the cart's codes found.
    pub coupons: Vec<Arc<Coupon>>,
}

impl Priced {
    /// The promotion and coupon of an applied promotion.
    pub fn parts(&self, promotion: Uuid, coupon: Option<Uuid>) -> Option<(Promotion, Option<Arc<Coupon>>)> {
        let p = self.snapshot.offer(promotion)?.promotion.clone();
        let c = coupon.and_then(|id| self.coupons.iter().find(|c| c.id == id).cloned());
        Some((p, c))
    }
}

fn weekday(now: DateTime<Utc>, tz: chrono_tz::Tz) -> DayOfWeek {
    match now.with_timezone(&tz).weekday() {
        Weekday::Mon => DayOfWeek::Monday,
        Weekday::Tue => DayOfWeek::Tuesday,
        Weekday::Wed => DayOfWeek::Wednesday,
        Weekday::Thu => DayOfWeek::Thursday,
        Weekday::Fri => DayOfWeek::Friday,
        Weekday::Sat => DayOfWeek::Saturday,
        Weekday::Sun => DayOfWeek::Sunday,
    }
}

impl Pricing {
    /// Loads the first snapshot and starts the task that keeps it fresh.
    pub async fn start(db: DatabaseConnection, counters: Counters, time_zone: chrono_tz::Tz) -> AppResult<Arc<Self>> {
        let pricing = Arc::new(Self {
            db,
            counters,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            coupons: moka::sync::Cache::builder()
                .max_capacity(COUPON_CACHE_SIZE)
                .time_to_live(COUPON_TTL)
                .build(),
            time_zone,
        });
        pricing.reload().await?;
        tokio::spawn(refresh_loop(Arc::downgrade(&pricing)));
        Ok(pricing)
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Rebuilds the snapshot from PostgreSQL and swaps it in. Promotions and
    /// campaigns are read in one snapshot of the database, so that every
    /// loaded promotion finds its campaign's state as of the same instant.
    #[tracing::instrument(skip_all)]
    pub async fn reload(&self) -> AppResult<()> {
        let now = Utc::now();
        let txn = self
            .db
            .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
            .await?;
        let live = promotions::load_live(&txn, now).await?;
        let campaigns: HashMap<Uuid, engine::CampaignState> = campaigns::load_states(&txn).await?;
        txn.commit().await?;
        let fresh = Arc::new(Snapshot::new(live, campaigns, now));
        tracing::debug!(promotions = fresh.len(), "snapshot rebuilt");
        *self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// Drops every cached coupon.
    pub fn forget_coupons(&self) {
        self.coupons.invalidate_all();
    }

    async fn coupon(&self, db: &impl ConnectionTrait, code: &str) -> AppResult<Option<Arc<Coupon>>> {
        let Ok(code) = normalize_code("code", code) else {
            return Ok(None);
        };
        if let Some(cached) = self.coupons.get(&code) {
            return Ok(cached);
        }
        let found = coupons::find_by_code(db, &code).await?.map(Arc::new);
        self.coupons.insert(code, found.clone());
        Ok(found)
    }

    /// Prices `cart` now with live usage counts, recording nothing.
    pub async fn preview(&self, cart: &Cart) -> AppResult<PricedCart> {
        let (snapshot, coupons) = self.inputs(&self.db, cart).await?;
        let usage = self.live_usage(&self.db, &snapshot, &coupons, cart).await?;
        Ok(self.evaluate(cart, snapshot, coupons, &usage).cart)
    }

    /// The snapshot and the coupons of the cart's codes (None: no such code).
    /// `db` is the connection to read coupons with (the caller's transaction, if any).
    pub async fn inputs(
        &self,
        db: &impl ConnectionTrait,
        cart: &Cart,
    ) -> AppResult<(Arc<Snapshot>, Vec<Option<Arc<Coupon>>>)> {
        let mut found: Vec<Option<Arc<Coupon>>> = Vec::with_capacity(cart.coupon_codes.len());
        for code in &cart.coupon_codes {
            found.push(self.coupon(db, code).await?);
        }
        Ok((self.snapshot(), found))
    }

    /// Live counts of every limit the cart's candidates touch (see
    /// [`limits::live_counts`]).
    #[tracing::instrument(skip_all)]
    pub async fn live_usage(
        &self,
        db: &impl ConnectionTrait,
        snapshot: &Snapshot,
        coupons: &[Option<Arc<Coupon>>],
        cart: &Cart,
    ) -> AppResult<Usage> {
        let customer = cart.customer.as_ref().map(|c| c.id.as_str());
        let mut usage = Usage::default();
        let mut touched: Vec<(&Promotion, Option<&Coupon>)> = Vec::new();
        for coupon in coupons.iter().flatten() {
            if let Some(offer) = snapshot.offer(coupon.promotion_id) {
                touched.push((offer.promotion, Some(coupon)));
            }
        }
        for offer in snapshot.offers_for(cart) {
            let d = &offer.promotion.definition;
            if d.total_usage_limit.is_some() || d.usage_limit_per_customer.is_some() {
                touched.push((offer.promotion, None));
            }
        }
        for (promotion, coupon) in touched {
            let pools = limited(&pools_of(promotion, coupon, customer));
            if pools.is_empty() {
                continue;
            }
            let counts = limits::live_counts(&self.counters, db, promotion.id, &pools).await?;
            for (pool, count) in pools.iter().zip(counts) {
                usage.set(pool, count);
            }
        }
        Ok(usage)
    }

    /// Evaluates `cart` with these inputs and usage counts.
    pub fn evaluate(
        &self,
        cart: &Cart,
        snapshot: Arc<Snapshot>,
        found: Vec<Option<Arc<Coupon>>>,
        usage: &Usage,
    ) -> Priced {
        let now = Utc::now();
        let submitted = cart
            .coupon_codes
            .iter()
            .zip(&found)
            .map(|(code, coupon)| SubmittedCoupon {
                code: code.clone(),
                found: coupon.as_deref().map(|c| (c, snapshot.offer(c.promotion_id))),
            })
            .collect();
        let priced = engine::evaluate(&Evaluation {
            cart,
            now,
            weekday: weekday(now, self.time_zone),
            offers: snapshot.offers_for(cart),
            coupons: submitted,
            usage,
        });
        let coupons = found.iter().flatten().cloned().collect();
        Priced {
            cart: priced,
            snapshot,
            coupons,
        }
    }
}

/// Keeps the snapshot fresh: rebuilds on a change notification (debounced)
/// and every [`REFRESH_EVERY`]; ends when the service is dropped.
async fn refresh_loop(pricing: Weak<Pricing>) {
    let mut listener: Option<PgListener> = None;
    loop {
        let Some(strong) = pricing.upgrade() else { return };
        if listener.is_none() {
            match PgListener::connect_with(strong.db.get_postgres_connection_pool()).await {
                Ok(mut l) => match l.listen(CHANGES_CHANNEL).await {
                    Ok(()) => {
                        listener = Some(l);
                        // Changes made while we were not listening.
                        reload_logged(&strong).await;
                        strong.forget_coupons();
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot LISTEN for promotion changes"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot connect to LISTEN for promotion changes"),
            }
        }
        drop(strong);
        let event = match listener.as_mut() {
            Some(l) => tokio::time::timeout(REFRESH_EVERY, l.try_recv()).await,
            None => {
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let Some(strong) = pricing.upgrade() else { return };
        match event {
            Ok(Ok(Some(notification))) => {
                // Let a burst of changes settle into one rebuild.
                tokio::time::sleep(Duration::from_millis(20)).await;
                let mut rebuild = notification.payload() != CHANGED_COUPONS;
                let mut forget = notification.payload() != CHANGED_PROMOTIONS;
                if let Some(l) = listener.as_mut() {
                    while let Some(more) = l.next_buffered() {
                        rebuild |= more.payload() != CHANGED_COUPONS;
                        forget |= more.payload() != CHANGED_PROMOTIONS;
                    }
                }
                if forget {
                    strong.forget_coupons();
                }
                if rebuild {
                    reload_logged(&strong).await;
                }
            }
            // The connection dropped (sqlx reconnects on the next call): what
            // changed meanwhile is unknown, so rebuild and forget.
            Ok(Ok(None)) => {
                strong.forget_coupons();
                reload_logged(&strong).await;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "promotion change listener failed; reconnecting");
                listener = None;
            }
            Err(_) => reload_logged(&strong).await,
        }
    }
}

async fn reload_logged(pricing: &Pricing) {
    if let Err(e) = pricing.reload().await {
        let message = e.into_cause();
        tracing::warn!(error = %message, "snapshot rebuild failed; keeping the previous one");
    }
}
