//! `Coupon`, `CouponBatch` and their inputs.

use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};

use super::common::{Conn, connection, page_request, parse_id};
use super::promotion::PromotionObject;
use crate::auth::Caller;
use crate::domain::code_pattern::BatchDraft;
use crate::domain::coupon::{self as domain, CouponDraft, TermsUpdate, Update};
use crate::error::AppError;
use crate::graphql::loaders::Loaders;
use crate::state::AppState;
use crate::store::coupon_batches::Batch;
use crate::store::coupons::{self, CouponOwner};

/// A code that unlocks a CART promotion. Codes are bearer secrets: a
/// listing shows them to admins only; a coupon its caller named by code
/// (`coupon(code:)`) shows it to any role, since the caller knows it.
pub struct CouponObject {
    coupon: domain::Coupon,
    code_known: bool,
}

impl CouponObject {
    /// A coupon its caller named by its code.
    pub fn named(coupon: domain::Coupon) -> Self {
        Self {
            coupon,
            code_known: true,
        }
    }

    /// A coupon in a listing: its code is shown to admins only.
    pub fn listed(coupon: domain::Coupon) -> Self {
        Self {
            coupon,
            code_known: false,
        }
    }
}

async fn load_promotion(ctx: &Context<'_>, id: uuid::Uuid) -> Result<PromotionObject> {
    let loaders = ctx.data_unchecked::<Loaders>();
    let promotion = loaders
        .promotions
        .load_one(id)
        .await?
        .ok_or_else(|| AppError::internal(format!("promotion {id} of a coupon is missing")))?;
    Ok(PromotionObject(promotion))
}

#[Object(name = "Coupon")]
impl CouponObject {
    async fn id(&self) -> ID {
        ID(self.coupon.id.to_string())
    }
    /// Upper-case; matched case-insensitively. In listings (a promotion's
    /// or a batch's coupons) admins only: FORBIDDEN for other roles.
    async fn code(&self, ctx: &Context<'_>) -> Result<&str> {
        let listed_to_caller = ctx.data_opt::<Caller>().is_some_and(Caller::sees_coupon_codes);
        if self.code_known || listed_to_caller {
            return Ok(&self.coupon.definition.code);
        }
        Err(AppError::Forbidden(
            "coupon codes are listed to admins only; a code you know can be looked up with coupon(code:)".into(),
        )
        .into())
    }
    async fn promotion(&self, ctx: &Context<'_>) -> Result<PromotionObject> {
        load_promotion(ctx, self.coupon.promotion_id).await
    }
    async fn active(&self) -> bool {
        self.coupon.active
    }
    async fn usage_limit(&self) -> Option<i32> {
        self.coupon.definition.usage_limit
    }
    async fn usage_limit_per_customer(&self) -> Option<i32> {
        self.coupon.definition.usage_limit_per_customer
    }
    /// Redemptions not released.
    async fn times_used(&self) -> i32 {
        self.coupon.times_used
    }
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.coupon.definition.window.starts_at
    }
    async fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.coupon.definition.window.ends_at
    }
    async fn batch(&self, ctx: &Context<'_>) -> Result<Option<CouponBatchObject>> {
        let Some(id) = self.coupon.batch_id else {
            return Ok(None);
        };
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders.batches.load_one(id).await?.map(CouponBatchObject))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.coupon.created_at
    }
}

/// A single coupon.
#[derive(InputObject)]
pub struct CouponInput {
    pub promotion_id: ID,
    /// 3..64 letters, digits, '-' or '_'; stored upper-case.
    pub code: String,
    pub usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl CouponInput {
    /// The promotion id and the domain draft.
    pub fn into_draft(self) -> Result<(uuid::Uuid, CouponDraft), AppError> {
        Ok((
            parse_id("input.promotionId", &self.promotion_id)?,
            CouponDraft {
                code: self.code,
                usage_limit: self.usage_limit,
                usage_limit_per_customer: self.usage_limit_per_customer,
                starts_at: self.starts_at,
                expires_at: self.expires_at,
            },
        ))
    }
}

/// A change of a coupon's limits and window: a field left out stays as it
/// is, null removes it (no limit, an open window), a value sets it.
#[derive(InputObject)]
pub struct UpdateCouponInput {
    pub usage_limit: MaybeUndefined<i32>,
    pub usage_limit_per_customer: MaybeUndefined<i32>,
    pub starts_at: MaybeUndefined<DateTime<Utc>>,
    pub expires_at: MaybeUndefined<DateTime<Utc>>,
}

fn update<T>(field: MaybeUndefined<T>) -> Update<T> {
    match field {
        MaybeUndefined::Undefined => Update::Keep,
        MaybeUndefined::Null => Update::Clear,
        MaybeUndefined::Value(value) => Update::Set(value),
    }
}

impl UpdateCouponInput {
    /// The domain update.
    pub fn into_update(self) -> TermsUpdate {
        TermsUpdate {
            usage_limit: update(self.usage_limit),
            usage_limit_per_customer: update(self.usage_limit_per_customer),
            starts_at: update(self.starts_at),
            expires_at: update(self.expires_at),
        }
    }
}

/// Codes generated from a pattern. `pattern`: '#' is a digit, '?' a letter
/// or digit from an alphabet without look-alikes (no 0/O, 1/I/L), anything
/// else is literal. Example: SUMMER-????-####.
#[derive(InputObject)]
pub struct GenerateCouponsInput {
    pub promotion_id: ID,
    /// 1..1,000,000; more than 10,000 run as a background job.
    pub count: i32,
    pub pattern: String,
    #[graphql(default = 1)]
    pub usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub starts_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl GenerateCouponsInput {
    /// The promotion id and the domain draft.
    pub fn into_draft(self) -> Result<(uuid::Uuid, BatchDraft), AppError> {
        Ok((
            parse_id("input.promotionId", &self.promotion_id)?,
            BatchDraft {
                count: self.count,
                pattern: self.pattern,
                usage_limit: self.usage_limit,
                usage_limit_per_customer: self.usage_limit_per_customer,
                starts_at: self.starts_at,
                expires_at: self.expires_at,
            },
        ))
    }
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::store::coupon_batches::BatchStatus")]
pub enum BatchStatus {
    Pending,
    Running,
    Done,
    Failed,
}

/// Codes generated from one pattern.
pub struct CouponBatchObject(pub Batch);

#[Object(name = "CouponBatch")]
impl CouponBatchObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn promotion(&self, ctx: &Context<'_>) -> Result<PromotionObject> {
        load_promotion(ctx, self.0.promotion_id).await
    }
    async fn pattern(&self) -> &str {
        &self.0.pattern
    }
    async fn requested(&self) -> i32 {
        self.0.requested
    }
    async fn generated(&self) -> i32 {
        self.0.generated
    }
    async fn status(&self) -> BatchStatus {
        self.0.status.into()
    }
    async fn error(&self) -> Option<&str> {
        self.0.error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn finished_at(&self) -> Option<DateTime<Utc>> {
        self.0.finished_at
    }
    /// The generated coupons, newest first.
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<CouponObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let had_cursor = after.is_some();
        let page = coupons::list(&state.db, CouponOwner::Batch(self.0.id), page_request(first, after)?).await?;
        Ok(connection(page, had_cursor, |c| c.id, CouponObject::listed))
    }
}
