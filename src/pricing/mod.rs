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
use sea_orm::DatabaseConnection;
use sea_orm::sqlx::postgres::PgListener;
use uuid::Uuid;

use crate::domain::cart::Cart;
use crate::domain::coupon::{Coupon, normalize_code};
use crate::domain::engine::{self, Evaluation, PricedCart, SubmittedCoupon, UsageCounts};
use crate::domain::promotion::DayOfWeek;
use crate::error::{AppError, AppResult};
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
    snapshot: RwLock<Arc<Snapshot>>,
    coupons: moka::sync::Cache<String, Option<Arc<Coupon>>>,
    time_zone: chrono_tz::Tz,
}

/// Usage counts as stored in PostgreSQL (reconciled counts of promotions and
/// coupons). Per-customer counts are not kept there: they read as 0 until
/// the live Redis counters of the redemption flow replace this.
struct StoredUsage<'a> {
    snapshot: &'a Snapshot,
    coupons: &'a [Arc<Coupon>],
}

impl UsageCounts for StoredUsage<'_> {
    fn promotion(&self, id: Uuid) -> i64 {
        self.snapshot
            .offer(id)
            .map_or(0, |o| o.promotion.redemption_count.into())
    }
    fn promotion_customer(&self, _: Uuid, _: &str) -> i64 {
        0
    }
    fn coupon(&self, id: Uuid) -> i64 {
        self.coupons
            .iter()
            .find(|c| c.id == id)
            .map_or(0, |c| c.times_used.into())
    }
    fn coupon_customer(&self, _: Uuid, _: &str) -> i64 {
        0
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
    pub async fn start(db: DatabaseConnection, time_zone: chrono_tz::Tz) -> AppResult<Arc<Self>> {
        let pricing = Arc::new(Self {
            db,
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

    /// Rebuilds the snapshot from PostgreSQL and swaps it in.
    #[tracing::instrument(skip_all)]
    pub async fn reload(&self) -> AppResult<()> {
        let now = Utc::now();
        let live = promotions::load_live(&self.db, now).await?;
        let campaigns: HashMap<Uuid, engine::CampaignState> = campaigns::load_states(&self.db).await?;
        let fresh = Arc::new(Snapshot::new(live, campaigns, now));
        tracing::debug!(promotions = fresh.len(), "snapshot rebuilt");
        *self.snapshot.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = fresh;
        Ok(())
    }

    /// Drops every cached coupon.
    pub fn forget_coupons(&self) {
        self.coupons.invalidate_all();
    }

    async fn coupon(&self, code: &str) -> AppResult<Option<Arc<Coupon>>> {
        let Ok(code) = normalize_code("code", code) else {
            return Ok(None);
        };
        if let Some(cached) = self.coupons.get(&code) {
            return Ok(cached);
        }
        let found = coupons::find_by_code(&self.db, &code).await?.map(Arc::new);
        self.coupons.insert(code, found.clone());
        Ok(found)
    }

    /// Prices `cart` now, recording nothing.
    #[tracing::instrument(skip_all, fields(cart.lines = cart.lines.len(), cart.codes = cart.coupon_codes.len()))]
    pub async fn preview(&self, cart: &Cart) -> AppResult<PricedCart> {
        let mut found: Vec<Option<Arc<Coupon>>> = Vec::with_capacity(cart.coupon_codes.len());
        for code in &cart.coupon_codes {
            found.push(self.coupon(code).await?);
        }
        let snapshot = self.snapshot();
        let now = Utc::now();
        let coupons_found: Vec<Arc<Coupon>> = found.iter().flatten().cloned().collect();
        let usage = StoredUsage {
            snapshot: &snapshot,
            coupons: &coupons_found,
        };
        let submitted = cart
            .coupon_codes
            .iter()
            .zip(&found)
            .map(|(code, coupon)| SubmittedCoupon {
                code: code.clone(),
                found: coupon.as_deref().map(|c| (c, snapshot.offer(c.promotion_id))),
            })
            .collect();
        Ok(engine::evaluate(&Evaluation {
            cart,
            now,
            weekday: weekday(now, self.time_zone),
            offers: snapshot.offers_for(cart),
            coupons: submitted,
            usage: &usage,
        }))
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
        let message = match e {
            AppError::Unavailable(m) | AppError::Internal(m) => m,
            other => other.code().to_owned(),
        };
        tracing::warn!(error = %message, "snapshot rebuild failed; keeping the previous one");
    }
}
