//! Pricing carts for the checkout: the promotion snapshot, the coupon cache
//! and the evaluation call. The hot path reads no promotion from PostgreSQL:
//! it uses the snapshot, rebuilt when any replica changes a promotion or
//! campaign (PostgreSQL NOTIFY sent in the change's transaction) and every
//! [`REFRESH_EVERY`] as a safety net. Coupons are read by code (unique
//! index) through a short-lived cache that changes invalidate.

pub mod snapshot;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc, Weekday};
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
    /// Loads the first snapshot; the `snapshot-refresh` worker
    /// ([`crate::workers::snapshot`]) keeps it fresh.
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
        Ok(pricing)
    }

    /// The database the snapshot is read from.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
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
