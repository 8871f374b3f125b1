//! `Promotion`, its target, conditions and action, and their inputs.

use async_graphql::{Context, Enum, ID, InputObject, Object, OneofObject, Result, SimpleObject, Union};
use chrono::{DateTime, Utc};

use super::campaign::CampaignObject;
use super::common::{Conn, UsageStats, connection, page_request, parse_id};
use super::coupon::CouponObject;
use crate::domain::promotion::{self as domain, ActionDraft, ConditionDraft, PromotionDraft, TargetDraft, TierDraft};
use crate::error::AppError;
use crate::graphql::loaders::Loaders;
use crate::graphql::scalars::Long;
use crate::state::AppState;
use crate::store::coupons::CouponOwner;
use crate::store::{coupons, promotions};

/// CATALOG rules change item prices before the cart (no coupons); CART rules apply to the cart after them.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "PromotionScope", remote = "crate::domain::promotion::Scope")]
pub enum PromotionScope {
    Catalog,
    Cart,
}

/// Derived on read: INACTIVE (switched off), SCHEDULED (before its window),
/// EXPIRED (after it), EXHAUSTED (total limit used), else ACTIVE.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::promotion::PromotionStatus")]
pub enum PromotionStatus {
    Scheduled,
    Active,
    Inactive,
    Expired,
    Exhausted,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::promotion::DayOfWeek")]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::domain::promotion::TierBasis")]
pub enum TierBasis {
    Subtotal,
    Quantity,
}

/// A promotion: who and what it targets, when it applies and what it gives.
pub struct PromotionObject(pub domain::Promotion);

#[Object(name = "Promotion")]
impl PromotionObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn campaign(&self, ctx: &Context<'_>) -> Result<Option<CampaignObject>> {
        let Some(id) = self.0.definition.campaign_id else {
            return Ok(None);
        };
        let loaders = ctx.data_unchecked::<Loaders>();
        Ok(loaders.campaigns.load_one(id).await?.map(CampaignObject))
    }
    async fn name(&self) -> &str {
        &self.0.definition.name
    }
    async fn description(&self) -> Option<&str> {
        self.0.definition.description.as_deref()
    }
    async fn scope(&self) -> PromotionScope {
        self.0.definition.scope.into()
    }
    async fn active(&self) -> bool {
        self.0.definition.active
    }
    async fn status(&self) -> PromotionStatus {
        self.0.status(Utc::now()).into()
    }
    /// Higher runs first.
    async fn priority(&self) -> i32 {
        self.0.definition.priority
    }
    /// false: applies only alone: not after another promotion, and none after it.
    async fn stackable(&self) -> bool {
        self.0.definition.stackable
    }
    /// true: no promotion after this one in the same scope (lower priority, or equal priority created later) is applied.
    async fn stop_further_rules(&self) -> bool {
        self.0.definition.stop_further_rules
    }
    async fn requires_coupon(&self) -> bool {
        self.0.definition.requires_coupon
    }
    async fn starts_at(&self) -> Option<DateTime<Utc>> {
        self.0.definition.window.starts_at
    }
    async fn ends_at(&self) -> Option<DateTime<Utc>> {
        self.0.definition.window.ends_at
    }
    /// Required for amount-based promotions (any money amount in the action, a cap or a condition); the promotion then applies only to carts in this currency.
    async fn currency(&self) -> Option<&str> {
        self.0.definition.currency.as_deref()
    }
    async fn total_usage_limit(&self) -> Option<i32> {
        self.0.definition.total_usage_limit
    }
    async fn usage_limit_per_customer(&self) -> Option<i32> {
        self.0.definition.usage_limit_per_customer
    }
    /// Empty: every customer.
    async fn customer_segments(&self) -> &[String] {
        &self.0.definition.customer_segments
    }
    async fn target(&self) -> Target {
        Target::from(&self.0.definition.target)
    }
    /// In contract order; all must hold.
    async fn conditions(&self) -> Vec<Condition> {
        self.0
            .definition
            .conditions
            .to_drafts()
            .into_iter()
            .map(Condition::from)
            .collect()
    }
    async fn action(&self) -> Action {
        Action::from(&self.0.definition.action)
    }
    async fn usage(&self) -> UsageStats {
        UsageStats::new(
            self.0.redemption_count.into(),
            self.0.discount_total,
            self.0.definition.total_usage_limit,
        )
    }
    /// This promotion's coupons, newest first.
    async fn coupons(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> Result<Conn<CouponObject>> {
        let state = ctx.data_unchecked::<AppState>();
        let had_cursor = after.is_some();
        let page = coupons::list(
            &state.db,
            CouponOwner::Promotion(self.0.id),
            page_request(first, after)?,
        )
        .await?;
        Ok(connection(page, had_cursor, |c| c.id, CouponObject::listed))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Which cart lines a promotion may discount. A line is eligible when all the
/// include lists are empty or it matches any of them, it is not excluded, and its
/// rating is at least minRating when that is set. Lists are sets: their order is not kept.
#[derive(SimpleObject)]
pub struct Target {
    pub product_ids: Vec<String>,
    pub category_ids: Vec<String>,
    pub brand_ids: Vec<String>,
    pub exclude_product_ids: Vec<String>,
    pub min_rating: Option<f64>,
}

impl From<&domain::Target> for Target {
    fn from(t: &domain::Target) -> Self {
        Self {
            product_ids: t.product_ids.to_vec(),
            category_ids: t.category_ids.to_vec(),
            brand_ids: t.brand_ids.to_vec(),
            exclude_product_ids: t.exclude_product_ids.to_vec(),
            min_rating: t.min_rating,
        }
    }
}

#[derive(SimpleObject)]
pub struct MinSubtotalCondition {
    pub amount: Long,
}

#[derive(SimpleObject)]
pub struct MinQuantityCondition {
    pub quantity: i32,
}

#[derive(SimpleObject)]
pub struct MinCustomerReviewsCondition {
    pub reviews: i32,
}

#[derive(SimpleObject)]
pub struct FirstOrderCondition {
    pub first_order_only: bool,
}

#[derive(SimpleObject)]
pub struct DaysOfWeekCondition {
    pub days: Vec<DayOfWeek>,
}

#[derive(Union)]
pub enum Condition {
    MinSubtotal(MinSubtotalCondition),
    MinQuantity(MinQuantityCondition),
    MinCustomerReviews(MinCustomerReviewsCondition),
    FirstOrder(FirstOrderCondition),
    DaysOfWeek(DaysOfWeekCondition),
}

impl From<ConditionDraft> for Condition {
    fn from(c: ConditionDraft) -> Self {
        match c {
            ConditionDraft::MinSubtotal(a) => Condition::MinSubtotal(MinSubtotalCondition { amount: Long(a) }),
            ConditionDraft::MinQuantity(q) => Condition::MinQuantity(MinQuantityCondition { quantity: q }),
            ConditionDraft::MinCustomerReviews(r) => {
                Condition::MinCustomerReviews(MinCustomerReviewsCondition { reviews: r })
            }
            ConditionDraft::FirstOrderOnly(f) => Condition::FirstOrder(FirstOrderCondition { first_order_only: f }),
            ConditionDraft::DaysOfWeek(days) => Condition::DaysOfWeek(DaysOfWeekCondition {
                days: days.into_iter().map(Into::into).collect(),
            }),
        }
    }
}

#[derive(SimpleObject)]
pub struct PercentageOff {
    pub basis_points: i32,
    pub max_discount: Option<Long>,
}

#[derive(SimpleObject)]
pub struct AmountOff {
    pub amount: Long,
    pub per_item: bool,
}

#[derive(SimpleObject)]
pub struct FixedPrice {
    pub unit_price: Long,
}

#[derive(SimpleObject)]
pub struct BuyXGetY {
    pub buy_quantity: i32,
    pub get_quantity: i32,
    pub basis_points_off: i32,
    pub max_applications: Option<i32>,
    pub get_target: Option<Target>,
}

#[derive(SimpleObject)]
pub struct Tier {
    pub threshold: Long,
    pub basis_points_off: Option<i32>,
    pub amount_off: Option<Long>,
}

#[derive(SimpleObject)]
pub struct Tiered {
    pub basis: TierBasis,
    pub tiers: Vec<Tier>,
}

#[derive(SimpleObject)]
pub struct FreeShipping {
    pub max_discount: Option<Long>,
}

#[derive(Union)]
pub enum Action {
    PercentageOff(PercentageOff),
    AmountOff(AmountOff),
    FixedPrice(FixedPrice),
    BuyXGetY(BuyXGetY),
    Tiered(Tiered),
    FreeShipping(FreeShipping),
}

impl From<&domain::Action> for Action {
    fn from(a: &domain::Action) -> Self {
        use domain::Action as A;
        match a {
            A::PercentageOff {
                basis_points,
                max_discount,
            } => Action::PercentageOff(PercentageOff {
                basis_points: *basis_points,
                max_discount: max_discount.map(Long),
            }),
            A::AmountOff { amount, per_item } => Action::AmountOff(AmountOff {
                amount: Long(*amount),
                per_item: *per_item,
            }),
            A::FixedPrice { unit_price } => Action::FixedPrice(FixedPrice {
                unit_price: Long(*unit_price),
            }),
            A::BuyXGetY {
                buy_quantity,
                get_quantity,
                basis_points_off,
                max_applications,
                get_target,
            } => Action::BuyXGetY(BuyXGetY {
                buy_quantity: *buy_quantity,
                get_quantity: *get_quantity,
                basis_points_off: *basis_points_off,
                max_applications: *max_applications,
                get_target: get_target.as_deref().map(Target::from),
            }),
            A::Tiered { basis, tiers } => Action::Tiered(Tiered {
                basis: (*basis).into(),
                tiers: tiers
                    .iter()
                    .map(|t| Tier {
                        threshold: Long(t.threshold),
                        basis_points_off: match t.discount {
                            domain::TierDiscount::BasisPoints(bp) => Some(bp),
                            domain::TierDiscount::Amount(_) => None,
                        },
                        amount_off: match t.discount {
                            domain::TierDiscount::Amount(a) => Some(Long(a)),
                            domain::TierDiscount::BasisPoints(_) => None,
                        },
                    })
                    .collect(),
            }),
            A::FreeShipping { max_discount } => Action::FreeShipping(FreeShipping {
                max_discount: max_discount.map(Long),
            }),
        }
    }
}

// ------------------------------------------------------------------ inputs

#[derive(InputObject)]
pub struct PromotionInput {
    pub campaign_id: Option<ID>,
    pub name: String,
    pub description: Option<String>,
    pub scope: PromotionScope,
    #[graphql(default_with = "Some(0)")]
    pub priority: Option<i32>,
    #[graphql(default_with = "Some(true)")]
    pub stackable: Option<bool>,
    #[graphql(default_with = "Some(false)")]
    pub stop_further_rules: Option<bool>,
    #[graphql(default_with = "Some(false)")]
    pub requires_coupon: Option<bool>,
    #[graphql(default_with = "Some(true)")]
    pub active: Option<bool>,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub currency: Option<String>,
    pub total_usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub customer_segments: Option<Vec<String>>,
    pub target: Option<TargetInput>,
    pub conditions: Option<Vec<ConditionInput>>,
    pub action: ActionInput,
}

impl PromotionInput {
    /// The domain draft; an explicit null on a defaulted field means its default.
    pub fn into_draft(self) -> Result<PromotionDraft, AppError> {
        Ok(PromotionDraft {
            campaign_id: self
                .campaign_id
                .as_ref()
                .map(|id| parse_id("input.campaignId", id))
                .transpose()?,
            name: self.name,
            description: self.description,
            scope: self.scope.into(),
            priority: self.priority.unwrap_or(0),
            stackable: self.stackable.unwrap_or(true),
            stop_further_rules: self.stop_further_rules.unwrap_or(false),
            requires_coupon: self.requires_coupon.unwrap_or(false),
            active: self.active.unwrap_or(true),
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            currency: self.currency,
            total_usage_limit: self.total_usage_limit,
            usage_limit_per_customer: self.usage_limit_per_customer,
            customer_segments: self.customer_segments.unwrap_or_default(),
            target: self.target.map(TargetInput::into_draft).unwrap_or_default(),
            conditions: self
                .conditions
                .unwrap_or_default()
                .into_iter()
                .map(ConditionInput::into_draft)
                .collect(),
            action: self.action.into_draft(),
        })
    }
}

#[derive(InputObject, Default)]
pub struct TargetInput {
    pub product_ids: Option<Vec<String>>,
    pub category_ids: Option<Vec<String>>,
    pub brand_ids: Option<Vec<String>>,
    pub exclude_product_ids: Option<Vec<String>>,
    /// Review-based: only items whose average rating is at least this (0-5).
    pub min_rating: Option<f64>,
}

impl TargetInput {
    fn into_draft(self) -> TargetDraft {
        TargetDraft {
            product_ids: self.product_ids.unwrap_or_default(),
            category_ids: self.category_ids.unwrap_or_default(),
            brand_ids: self.brand_ids.unwrap_or_default(),
            exclude_product_ids: self.exclude_product_ids.unwrap_or_default(),
            min_rating: self.min_rating,
        }
    }
}

/// All conditions must hold. Amounts and quantities count eligible lines only.
#[derive(OneofObject)]
pub enum ConditionInput {
    MinSubtotal(Long),
    MinQuantity(i32),
    /// Review-based: the customer has written at least this many reviews.
    MinCustomerReviews(i32),
    /// true: only a customer with no earlier order.
    FirstOrderOnly(bool),
    DaysOfWeek(Vec<DayOfWeek>),
}

impl ConditionInput {
    fn into_draft(self) -> ConditionDraft {
        match self {
            ConditionInput::MinSubtotal(a) => ConditionDraft::MinSubtotal(a.0),
            ConditionInput::MinQuantity(q) => ConditionDraft::MinQuantity(q),
            ConditionInput::MinCustomerReviews(r) => ConditionDraft::MinCustomerReviews(r),
            ConditionInput::FirstOrderOnly(f) => ConditionDraft::FirstOrderOnly(f),
            ConditionInput::DaysOfWeek(days) => ConditionDraft::DaysOfWeek(days.into_iter().map(Into::into).collect()),
        }
    }
}

#[derive(OneofObject)]
pub enum ActionInput {
    PercentageOff(PercentageOffInput),
    AmountOff(AmountOffInput),
    FixedPrice(FixedPriceInput),
    BuyXGetY(BuyXGetYInput),
    Tiered(TieredInput),
    FreeShipping(FreeShippingInput),
}

impl ActionInput {
    fn into_draft(self) -> ActionDraft {
        match self {
            ActionInput::PercentageOff(p) => ActionDraft::PercentageOff {
                basis_points: p.basis_points,
                max_discount: p.max_discount.map(|m| m.0),
            },
            ActionInput::AmountOff(a) => ActionDraft::AmountOff {
                amount: a.amount.0,
                per_item: a.per_item.unwrap_or(false),
            },
            ActionInput::FixedPrice(f) => ActionDraft::FixedPrice {
                unit_price: f.unit_price.0,
            },
            ActionInput::BuyXGetY(b) => ActionDraft::BuyXGetY {
                buy_quantity: b.buy_quantity,
                get_quantity: b.get_quantity,
                basis_points_off: b.basis_points_off.unwrap_or(10_000),
                max_applications: b.max_applications,
                get_target: b.get_target.map(TargetInput::into_draft),
            },
            ActionInput::Tiered(t) => ActionDraft::Tiered {
                basis: t.basis.into(),
                tiers: t
                    .tiers
                    .into_iter()
                    .map(|tier| TierDraft {
                        threshold: tier.threshold.0,
                        basis_points_off: tier.basis_points_off,
                        amount_off: tier.amount_off.map(|a| a.0),
                    })
                    .collect(),
            },
            ActionInput::FreeShipping(f) => ActionDraft::FreeShipping {
                max_discount: f.max_discount.map(|m| m.0),
            },
        }
    }
}

#[derive(InputObject)]
pub struct PercentageOffInput {
    pub basis_points: i32,
    /// Cap on the discount of one application, in minor units.
    pub max_discount: Option<Long>,
}

#[derive(InputObject)]
pub struct AmountOffInput {
    pub amount: Long,
    /// true: off every eligible unit; false: once, spread over the eligible lines.
    #[graphql(default_with = "Some(false)")]
    pub per_item: Option<bool>,
}

/// Eligible units cost this much each (never more than before).
#[derive(InputObject)]
pub struct FixedPriceInput {
    pub unit_price: Long,
}

/// Buy buyQuantity eligible units, get getQuantity units at basisPointsOff
/// (10000 = free). Without getTarget both come from the eligible units and the
/// cheapest ones are discounted.
#[derive(InputObject)]
pub struct BuyXGetYInput {
    pub buy_quantity: i32,
    pub get_quantity: i32,
    #[graphql(default_with = "Some(10000)")]
    pub basis_points_off: Option<i32>,
    pub max_applications: Option<i32>,
    pub get_target: Option<TargetInput>,
}

/// The highest tier whose threshold the eligible lines reach applies.
#[derive(InputObject)]
pub struct TieredInput {
    pub basis: TierBasis,
    pub tiers: Vec<TierInput>,
}

#[derive(InputObject)]
pub struct TierInput {
    pub threshold: Long,
    pub basis_points_off: Option<i32>,
    pub amount_off: Option<Long>,
}

#[derive(InputObject)]
pub struct FreeShippingInput {
    /// Cap on the shipping discount, in minor units; none: all of it.
    pub max_discount: Option<Long>,
}

/// Filters of `promotions`; all set ones must hold, all applied in SQL.
#[derive(InputObject, Default)]
pub struct PromotionFilter {
    pub campaign_id: Option<ID>,
    pub scope: Option<PromotionScope>,
    pub status: Option<PromotionStatus>,
    /// Promotions that can discount this product (by product, category or brand targeting, or untargeted).
    pub product_id: Option<String>,
    /// With productId and brandId: describe one item; a promotion targeting any of them matches.
    pub category_id: Option<String>,
    pub brand_id: Option<String>,
    /// Switched on and inside their own window at this instant.
    pub active_at: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

impl PromotionFilter {
    /// The store filter; a malformed campaignId is BAD_USER_INPUT.
    pub fn into_store(self) -> Result<promotions::PromotionFilter, AppError> {
        Ok(promotions::PromotionFilter {
            campaign_id: self
                .campaign_id
                .as_ref()
                .map(|id| parse_id("filter.campaignId", id))
                .transpose()?,
            scope: self.scope.map(Into::into),
            status: self.status.map(Into::into),
            product_id: self.product_id,
            category_id: self.category_id,
            brand_id: self.brand_id,
            active_at: self.active_at,
            name_contains: self.name_contains,
        })
    }
}
