//! Pricing carts for the checkout: the promotion snapshot, the coupon cache
//! and the evaluation call. The hot path reads no promotion from PostgreSQL:
//! it uses the snapshot, which the `snapshot-refresh` worker
//! ([`crate::workers::snapshot`]) keeps fresh by reloading what each change
//! notification names ([`Pricing::apply`]), and wholly only when a change
//! may have been missed ([`Pricing::reload`]). Both build the next version
//! off the async workers and swap it in. Coupons are read by code (unique
//! index) through a short-lived cache that changes invalidate.

pub mod snapshot;

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Datelike, Utc, Weekday};
use sea_orm::{AccessMode, ConnectionTrait, DatabaseConnection, DatabaseTransaction, IsolationLevel, TransactionTrait};
use uuid::Uuid;

use crate::domain::cart::Cart;
use crate::domain::coupon::{Coupon, normalize_code};
use crate::domain::engine::{self, Evaluation, PricedCart, SubmittedCoupon};
use crate::domain::promotion::DayOfWeek;
use crate::domain::promotion::Promotion;
use crate::error::{AppError, AppResult};
use crate::limits::{self, Counters, Usage, limited, pools_of};
use crate::store::{campaigns, changes, coupons, promotions};
use snapshot::{FullLoad, Snapshot};

/// How long a coupon (or its absence) stays cached.
const COUPON_TTL: Duration = Duration::from_secs(10);
/// Most cached coupon codes.
const COUPON_CACHE_SIZE: u64 = 100_000;
/// Most promotions read per statement (a full load's page, an update's chunk).
const LOAD_BATCH: usize = 2_500;

/// The pricing service, shared by all requests.
pub struct Pricing {
    db: DatabaseConnection,
    counters: Counters,
    snapshot: RwLock<Arc<Snapshot>>,
    /// Held while a next version is built: one builder at a time, so that
    /// none overwrites another's version.
    builder: tokio::sync::Mutex<()>,
    /// How many full reloads ran (the first load included).
    full_reloads: AtomicU64,
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
            builder: tokio::sync::Mutex::new(()),
            full_reloads: AtomicU64::new(0),
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

    /// Loads every live promotion and campaign and swaps in a snapshot of
    /// them, for when changes may have been missed. Read in one snapshot of
    /// the database (so every promotion finds its campaign as of the same
    /// instant, and the pricing version says what is in), page by page: a
    /// promotion that did not change stays shared with the current version,
    /// index entries included.
    ///
    /// One blocking thread reads, decodes and adds each page in turn: what
    /// a page allocates is freed on the thread that allocated it, so the
    /// allocator hands it to the next page. Measured at 100,000 promotions,
    /// a reload's peak over the steady resident memory was 1.33x with the
    /// pages read on the async workers and decoded on another thread, 1.24x
    /// on one (1.19x and 1.11x with the purge delay the binary sets).
    #[tracing::instrument(skip_all)]
    pub async fn reload(&self) -> AppResult<()> {
        let _builder = self.builder.lock().await;
        let now = Utc::now();
        let txn = self.read_only().await?;
        let version = changes::version(&txn).await?;
        let campaigns = campaigns::states(&txn, None).await?;
        let current = self.snapshot();
        let runtime = tokio::runtime::Handle::current();
        let building = off_the_workers(move || {
            let mut load = FullLoad::over(&current);
            let mut after = None;
            loop {
                let page = runtime.block_on(promotions::live_page(&txn, now, after, LOAD_BATCH as u64))?;
                let last_page = page.len() < LOAD_BATCH;
                after = page.last().map(|p| p.id);
                page.into_iter().for_each(|p| load.add(p));
                if last_page {
                    break;
                }
            }
            runtime.block_on(txn.commit())?;
            Ok(load.finish(campaigns, version))
        });
        let next = built(building).await?;
        tracing::info!(promotions = next.len(), version, "pricing snapshot reloaded in full");
        self.swap(next);
        self.full_reloads.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Reloads these promotions and campaigns (what notifications up to
    /// `version` named) into a new version of the snapshot and swaps it in.
    /// A campaign that ENDED takes its promotions out with it.
    #[tracing::instrument(skip_all, fields(promotions = changed.len(), campaigns = campaign_ids.len()))]
    pub async fn apply(&self, changed: &[Uuid], campaign_ids: &[Uuid], version: i64) -> AppResult<()> {
        let _builder = self.builder.lock().await;
        let now = Utc::now();
        let txn = self.read_only().await?;
        let mut states = std::collections::HashMap::new();
        for chunk in campaign_ids.chunks(LOAD_BATCH) {
            states.extend(campaigns::states(&txn, Some(chunk)).await?);
        }
        let ended: Vec<Uuid> = campaign_ids
            .iter()
            .filter(|c| !states.contains_key(c))
            .copied()
            .collect();
        let mut ids = changed.to_vec();
        for chunk in ended.chunks(LOAD_BATCH) {
            ids.extend(promotions::ids_in_campaigns(&txn, chunk).await?);
        }
        let mut live = Vec::new();
        for chunk in ids.chunks(LOAD_BATCH) {
            live.extend(promotions::live_of(&txn, now, chunk).await?);
        }
        txn.commit().await?;
        let campaign_ids = campaign_ids.to_vec();
        let current = self.snapshot();
        let next = built(off_the_workers(move || {
            let mut next = Snapshot::clone(&current);
            let live_ids: HashSet<Uuid> = live.iter().map(|p| p.id).collect();
            ids.into_iter()
                .filter(|id| !live_ids.contains(id))
                .for_each(|id| next.remove(id));
            live.into_iter().for_each(|p| next.upsert(p));
            for id in campaign_ids {
                next.set_campaign(id, states.get(&id).copied());
            }
            next.set_version(next.version().max(version));
            Ok(next)
        }))
        .await?;
        self.swap(next);
        Ok(())
    }

    /// How many full reloads ran, the first load included.
    pub fn full_reloads(&self) -> u64 {
        self.full_reloads.load(Ordering::Relaxed)
    }

    async fn read_only(&self) -> AppResult<DatabaseTransaction> {
        Ok(self
            .db
            .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
            .await?)
    }

    fn swap(&self, next: Snapshot) {
        *self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(next);
    }

    /// Drops every cached coupon.
    pub fn forget_coupons(&self) {
        self.coupons.invalidate_all();
    }

    /// Drops the cached coupon of `code` (as stored: normalised).
    pub fn forget_coupon(&self, code: &str) {
        self.coupons.invalidate(code);
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

/// Starts `build` (of a version of the snapshot, or of a part of one) on a
/// blocking thread, so that building a version never holds up the async
/// workers that serve requests.
fn off_the_workers<T: Send + 'static>(
    build: impl FnOnce() -> AppResult<T> + Send + 'static,
) -> tokio::task::JoinHandle<AppResult<T>> {
    tokio::task::spawn_blocking(build)
}

/// What a blocking thread built.
async fn built<T>(building: tokio::task::JoinHandle<AppResult<T>>) -> AppResult<T> {
    building
        .await
        .map_err(|e| AppError::internal_from("building the next pricing snapshot failed", e))?
}
