//! The checkout half of the API: carts in, priced results out.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::promotion::PromotionObject;
use crate::domain::cart::{Cart, CartDraft, CustomerDraft, LineDraft};
use crate::domain::engine::{self, PricedCart};
use crate::error::AppResult;
use crate::graphql::loaders::Loaders;
use crate::graphql::scalars::Long;
use crate::state::AppState;
use crate::store::redemptions::Redemption;

// Also read straight from a request's JSON by the compiled preview
// (crate::graphql::fast_preview): strictly, so that anything GraphQL would
// coerce or reject is left to async-graphql.
#[derive(InputObject, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CartInput {
    /// ISO 4217.
    pub currency: String,
    pub customer: Option<CustomerInput>,
    /// At most 200 lines.
    pub lines: Vec<CartLineInput>,
    #[graphql(default_with = "Some(Long(0))")]
    pub shipping_amount: Option<Long>,
    /// At most 10 codes.
    pub coupon_codes: Option<Vec<String>>,
}

#[derive(InputObject, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CustomerInput {
    pub id: String,
    pub segments: Option<Vec<String>>,
    /// Review-based promotions: how many reviews this customer has written.
    #[graphql(default_with = "Some(0)")]
    pub review_count: Option<i32>,
    /// Earlier orders; 0 means this is the first.
    #[graphql(default_with = "Some(0)")]
    pub order_count: Option<i32>,
}

#[derive(InputObject, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CartLineInput {
    pub id: String,
    pub product_id: String,
    pub category_ids: Option<Vec<String>>,
    pub brand_id: Option<String>,
    /// 1..10000.
    pub quantity: i32,
    /// Minor units, before any promotion.
    pub unit_price: Long,
    /// Average review rating of the product, 0-5.
    pub rating: Option<f64>,
}

impl CartInput {
    /// What this cart gets now, recording nothing: previewPromotions.
    pub async fn preview(self, state: &AppState) -> AppResult<PricedCart> {
        let cart = Cart::new("cart", &self.into_draft())?;
        state.pricing.preview(&cart).await
    }

    /// The domain draft; an explicit null on a defaulted field means its default.
    pub fn into_draft(self) -> CartDraft {
        CartDraft {
            currency: self.currency,
            customer: self.customer.map(|c| CustomerDraft {
                id: c.id,
                segments: c.segments.unwrap_or_default(),
                review_count: c.review_count.unwrap_or(0),
                order_count: c.order_count.unwrap_or(0),
            }),
            lines: self
                .lines
                .into_iter()
                .map(|l| LineDraft {
                    id: l.id,
                    product_id: l.product_id,
                    category_ids: l.category_ids.unwrap_or_default(),
                    brand_id: l.brand_id,
                    quantity: l.quantity,
                    unit_price: l.unit_price.0,
                    rating: l.rating,
                })
                .collect(),
            shipping_amount: self.shipping_amount.map_or(0, |s| s.0),
            coupon_codes: self.coupon_codes.unwrap_or_default(),
        }
    }
}

/// Why a promotion or coupon did not apply.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::engine::RejectionReason")]
pub enum RejectionReason {
    CouponNotFound,
    CouponInactive,
    CouponNotYetValid,
    CouponExpired,
    CouponUsageLimitReached,
    PromotionInactive,
    PromotionUsageLimitReached,
    CustomerUsageLimitReached,
    CustomerRequired,
    CustomerSegmentMismatch,
    CurrencyMismatch,
    NoEligibleItems,
    MinSubtotalNotMet,
    MinQuantityNotMet,
    MinCustomerReviewsNotMet,
    NotFirstOrder,
    DayOfWeekMismatch,
    NotStackable,
    StoppedByHigherPriority,
    NothingToDiscount,
}

/// What a cart gets; `redemption` is set by applyPromotions when it recorded one.
pub struct PromotionResultObject(pub PricedCart, pub Option<Redemption>);

#[Object(name = "PromotionResult")]
impl PromotionResultObject {
    async fn currency(&self) -> &str {
        &self.0.currency
    }
    async fn subtotal(&self) -> Long {
        Long(self.0.subtotal)
    }
    /// Line discounts plus the shipping discount.
    async fn discount_total(&self) -> Long {
        Long(self.0.discount_total)
    }
    async fn shipping_amount(&self) -> Long {
        Long(self.0.shipping_amount)
    }
    async fn shipping_discount(&self) -> Long {
        Long(self.0.shipping_discount)
    }
    /// subtotal + shippingAmount - discountTotal
    async fn total(&self) -> Long {
        Long(self.0.total)
    }
    async fn lines(&self) -> Vec<LineResult<'_>> {
        self.0.lines.iter().map(LineResult).collect()
    }
    async fn applied(&self) -> Vec<AppliedPromotion<'_>> {
        self.0.applied.iter().map(AppliedPromotion).collect()
    }
    /// Set by applyPromotions when at least one promotion applied.
    async fn redemption(&self) -> Option<RedemptionObject> {
        self.1.clone().map(RedemptionObject)
    }
    /// Submitted coupons that did not apply, and automatic promotions that target the cart but did not apply.
    async fn rejected(&self) -> Vec<RejectedPromotion<'_>> {
        self.0.rejected.iter().map(RejectedPromotion).collect()
    }
}

// The result's parts are views of the priced cart: nothing is copied but
// the fields a query selects.

/// A priced line.
pub struct LineResult<'a>(&'a engine::PricedLine);

#[Object]
impl LineResult<'_> {
    async fn line_id(&self) -> &str {
        &self.0.line_id
    }
    async fn quantity(&self) -> i32 {
        self.0.quantity
    }
    async fn unit_price(&self) -> Long {
        Long(self.0.unit_price)
    }
    async fn subtotal(&self) -> Long {
        Long(self.0.subtotal)
    }
    async fn discount(&self) -> Long {
        Long(self.0.discount)
    }
    async fn total(&self) -> Long {
        Long(self.0.total)
    }
    async fn adjustments(&self) -> Vec<LineAdjustment<'_>> {
        self.0.adjustments.iter().map(LineAdjustment).collect()
    }
}

/// What one promotion took off one line.
pub struct LineAdjustment<'a>(&'a engine::Adjustment);

#[Object]
impl LineAdjustment<'_> {
    async fn promotion_id(&self) -> ID {
        ID(self.0.promotion_id.to_string())
    }
    async fn coupon_code(&self) -> Option<&str> {
        self.0.coupon_code.as_deref()
    }
    async fn amount(&self) -> Long {
        Long(self.0.amount)
    }
}

/// A promotion that applied, and how much it gave.
pub struct AppliedPromotion<'a>(&'a engine::Applied);

#[Object]
impl AppliedPromotion<'_> {
    async fn promotion_id(&self) -> ID {
        ID(self.0.promotion_id.to_string())
    }
    /// The promotion as it is now, with its usage (read from the database:
    /// the snapshot's usage counts are not kept current).
    async fn promotion(&self, ctx: &Context<'_>) -> Result<Option<PromotionObject>> {
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders
            .promotions
            .load_one(self.0.promotion_id)
            .await?
            .map(PromotionObject))
    }
    async fn coupon_code(&self) -> Option<&str> {
        self.0.coupon_code.as_deref()
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn amount(&self) -> Long {
        Long(self.0.amount)
    }
}

/// A promotion or coupon that did not apply, and why.
pub struct RejectedPromotion<'a>(&'a engine::Rejected);

#[Object]
impl RejectedPromotion<'_> {
    async fn promotion_id(&self) -> Option<ID> {
        self.0.promotion_id.map(|id| ID(id.to_string()))
    }
    async fn coupon_code(&self) -> Option<&str> {
        self.0.coupon_code.as_deref()
    }
    async fn reason(&self) -> RejectionReason {
        self.0.reason.into()
    }
    async fn message(&self) -> &str {
        &self.0.message
    }
}

#[derive(InputObject)]
pub struct ApplyPromotionsInput {
    /// The checkout's order id (1..200 characters); idempotency key.
    pub order_id: String,
    pub cart: CartInput,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::store::redemptions::RedemptionStatus")]
pub enum RedemptionStatus {
    Redeemed,
    Released,
}

/// The usage an order recorded.
pub struct RedemptionObject(pub Redemption);

#[Object(name = "Redemption")]
impl RedemptionObject {
    async fn order_id(&self) -> &str {
        &self.0.order_id
    }
    async fn customer_id(&self) -> Option<&str> {
        self.0.customer_id.as_deref()
    }
    async fn status(&self) -> RedemptionStatus {
        self.0.status.into()
    }
    async fn discount_total(&self) -> Long {
        Long(self.0.discount_total)
    }
    async fn promotions(&self) -> Vec<AppliedPromotion<'_>> {
        self.0.result.applied.iter().map(AppliedPromotion).collect()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn released_at(&self) -> Option<DateTime<Utc>> {
        self.0.released_at
    }
}
