//! Creating, changing and switching single coupons.

use chrono::Utc;
use sea_orm::{ConnectionTrait, DatabaseConnection, TransactionTrait};
use uuid::Uuid;

use crate::domain::coupon::{Coupon, CouponDefinition, TermsUpdate, normalize_code};
use crate::domain::promotion::Scope;
use crate::error::{AppError, AppResult};
use crate::outbox::{self, Event, EventType};
use crate::store::changes;
use crate::store::{coupons as repo, promotions};

/// Checks that `input.promotionId` names a CART promotion (coupons unlock only those).
pub(crate) async fn check_cart_promotion(db: &impl ConnectionTrait, promotion_id: Uuid) -> AppResult<()> {
    match promotions::scope_of(db, promotion_id).await? {
        None => Err(AppError::not_found(
            "input.promotionId",
            format!("no promotion with id {promotion_id}"),
        )),
        Some(Scope::Catalog) => Err(AppError::bad_input(
            "input.promotionId",
            "coupons unlock CART promotions; this promotion is a CATALOG promotion",
        )),
        Some(Scope::Cart) => Ok(()),
    }
}

/// Creates an active coupon for a CART promotion (`coupon.created`).
#[tracing::instrument(skip_all, fields(promotion.id = %promotion_id))]
pub async fn create(db: &DatabaseConnection, promotion_id: Uuid, def: &CouponDefinition) -> AppResult<Coupon> {
    let now = Utc::now();
    let txn = db.begin().await?;
    check_cart_promotion(&txn, promotion_id).await?;
    let coupon = repo::insert(&txn, Uuid::now_v7(), promotion_id, def, now).await?;
    outbox::enqueue(&txn, Event::new(EventType::CouponCreated, coupon.id, &coupon)?, now).await?;
    changes::notify_coupons(&txn, Some(&coupon.definition.code)).await?;
    txn.commit().await?;
    Ok(coupon)
}

/// Switches a coupon on or off by code (`coupon.activated` / `coupon.deactivated`).
#[tracing::instrument(skip_all)]
pub async fn set_active(db: &DatabaseConnection, code: &str, active: bool) -> AppResult<Coupon> {
    let code = normalize_code("code", code)?;
    let now = Utc::now();
    let txn = db.begin().await?;
    let coupon = repo::set_active(&txn, &code, active)
        .await?
        .ok_or_else(|| AppError::not_found("code", format!("no coupon with code {code}")))?;
    let event_type = if active {
        EventType::CouponActivated
    } else {
        EventType::CouponDeactivated
    };
    outbox::enqueue(&txn, Event::new(event_type, coupon.id, &coupon)?, now).await?;
    changes::notify_coupons(&txn, Some(&coupon.definition.code)).await?;
    txn.commit().await?;
    Ok(coupon)
}

/// Changes a coupon's limits and window by code (`coupon.updated`). A
/// limit change is exact from its commit on: PostgreSQL's usage counts
/// follow it (the migration `count_usage`), every replica's snapshot within
/// a second.
#[tracing::instrument(skip_all)]
pub async fn update(db: &DatabaseConnection, code: &str, update: &TermsUpdate) -> AppResult<Coupon> {
    let code = normalize_code("code", code)?;
    let now = Utc::now();
    let txn = db.begin().await?;
    let current = repo::find_for_update(&txn, &code)
        .await?
        .ok_or_else(|| AppError::not_found("code", format!("no coupon with code {code}")))?;
    // Checked against the stored coupon, so here: its fields are the input's.
    let def = current.definition.updated(update).map_err(|e| e.under("input"))?;
    let coupon = repo::update_terms(&txn, current.id, &def).await?;
    outbox::enqueue(&txn, Event::new(EventType::CouponUpdated, coupon.id, &coupon)?, now).await?;
    changes::notify_coupons(&txn, Some(&coupon.definition.code)).await?;
    txn.commit().await?;
    Ok(coupon)
}
