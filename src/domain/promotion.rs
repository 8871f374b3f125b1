//! Promotion definitions: what a promotion targets, when it applies and what
//! it gives. A [`PromotionDraft`] holds raw values as a client (or a stored
//! row) gave them; [`PromotionDefinition::new`] checks every rule of
//! DESIGN.md 3.7 and is the only way to obtain a definition.

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};
use uuid::Uuid;

use super::validation::{self as v, Invalid, Window, path};

/// CATALOG rules change item prices before the cart; CART rules follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    /// Item-price rules (no coupons, no cart-level actions or conditions).
    Catalog,
    /// Cart rules, optionally behind a coupon.
    Cart,
}

/// A day of the week, in the service's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DayOfWeek {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl DayOfWeek {
    /// All days, Monday first.
    pub const ALL: [DayOfWeek; 7] = [
        Self::Monday,
        Self::Tuesday,
        Self::Wednesday,
        Self::Thursday,
        Self::Friday,
        Self::Saturday,
        Self::Sunday,
    ];

    fn bit(self) -> i16 {
        1 << (self as i16)
    }
}

/// A non-empty set of days, stored as a 7-bit mask (Monday = bit 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DaySet(i16);

impl Serialize for DaySet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.days().serialize(serializer)
    }
}

impl DaySet {
    /// The set of `days`; an empty list is invalid.
    pub fn new(field: &str, days: &[DayOfWeek]) -> Result<Self, Invalid> {
        let mask = days.iter().fold(0, |mask, day| mask | day.bit());
        Self::from_mask(field, mask)
    }

    /// The set stored as `mask`; it must name at least one day and no other bits.
    pub fn from_mask(field: &str, mask: i16) -> Result<Self, Invalid> {
        if (1..=127).contains(&mask) {
            Ok(Self(mask))
        } else {
            Err(Invalid::new(field, "must name at least one day"))
        }
    }

    /// The stored mask.
    pub fn mask(self) -> i16 {
        self.0
    }

    /// Whether `day` is in the set.
    pub fn contains(self, day: DayOfWeek) -> bool {
        self.0 & day.bit() != 0
    }

    /// The days, Monday first.
    pub fn days(self) -> Vec<DayOfWeek> {
        DayOfWeek::ALL.into_iter().filter(|d| self.contains(*d)).collect()
    }
}

/// Which cart lines a promotion may discount (see the contract's `Target`).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    /// Include lists: a line matches when all are empty or it is in any.
    pub product_ids: Vec<String>,
    pub category_ids: Vec<String>,
    pub brand_ids: Vec<String>,
    /// Never eligible, whatever the include lists say.
    pub exclude_product_ids: Vec<String>,
    /// Review-based: lines rated at least this (a line without rating is not eligible).
    pub min_rating: Option<f64>,
}

impl Target {
    /// Whether any include list is set (else every line is a candidate).
    pub fn is_targeted(&self) -> bool {
        !(self.product_ids.is_empty() && self.category_ids.is_empty() && self.brand_ids.is_empty())
    }
}

/// Raw target lists as given.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TargetDraft {
    pub product_ids: Vec<String>,
    pub category_ids: Vec<String>,
    pub brand_ids: Vec<String>,
    pub exclude_product_ids: Vec<String>,
    pub min_rating: Option<f64>,
}

impl TargetDraft {
    /// Validates the lists; they are sets, kept sorted so that a definition
    /// reads back exactly as it was stored.
    fn validate(&self, field: &str) -> Result<Target, Invalid> {
        let set = |name: &str, values: &[String]| {
            v::identifiers(&path(field, name), values).map(|mut ids| {
                ids.sort();
                ids
            })
        };
        Ok(Target {
            product_ids: set("productIds", &self.product_ids)?,
            category_ids: set("categoryIds", &self.category_ids)?,
            brand_ids: set("brandIds", &self.brand_ids)?,
            exclude_product_ids: set("excludeProductIds", &self.exclude_product_ids)?,
            min_rating: self
                .min_rating
                .map(|r| v::rating(&path(field, "minRating"), r))
                .transpose()?,
        })
    }
}

/// One condition as given (the contract's `ConditionInput`).
#[derive(Debug, Clone, PartialEq)]
pub enum ConditionDraft {
    MinSubtotal(i64),
    MinQuantity(i32),
    MinCustomerReviews(i32),
    FirstOrderOnly(bool),
    DaysOfWeek(Vec<DayOfWeek>),
}

/// All conditions of a promotion; each kind at most once, all must hold.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Conditions {
    /// Eligible lines' remaining amount must reach this (minor units).
    pub min_subtotal: Option<i64>,
    /// Eligible units must reach this.
    pub min_quantity: Option<i32>,
    /// The customer has written at least this many reviews.
    pub min_customer_reviews: Option<i32>,
    /// Only a customer with no earlier order.
    pub first_order_only: bool,
    /// Only on these days.
    pub days_of_week: Option<DaySet>,
}

impl Conditions {
    fn from_drafts(field: &str, drafts: &[ConditionDraft]) -> Result<Self, Invalid> {
        let mut out = Conditions::default();
        let mut seen: Vec<std::mem::Discriminant<ConditionDraft>> = Vec::new();
        for (i, draft) in drafts.iter().enumerate() {
            let at = format!("{field}[{i}]");
            if seen.contains(&std::mem::discriminant(draft)) {
                return Err(Invalid::new(at, "each kind of condition may appear only once"));
            }
            seen.push(std::mem::discriminant(draft));
            match draft {
                ConditionDraft::MinSubtotal(a) => out.min_subtotal = Some(v::amount(&path(&at, "minSubtotal"), *a)?),
                ConditionDraft::MinQuantity(q) => out.min_quantity = Some(v::positive(&path(&at, "minQuantity"), *q)?),
                ConditionDraft::MinCustomerReviews(r) => {
                    out.min_customer_reviews = Some(v::positive(&path(&at, "minCustomerReviews"), *r)?)
                }
                ConditionDraft::FirstOrderOnly(only) => out.first_order_only = *only,
                ConditionDraft::DaysOfWeek(days) => {
                    out.days_of_week = Some(DaySet::new(&path(&at, "daysOfWeek"), days)?)
                }
            }
        }
        Ok(out)
    }

    /// The conditions in contract order, as drafts (for output and storage round trips).
    pub fn to_drafts(&self) -> Vec<ConditionDraft> {
        let mut out = Vec::new();
        if let Some(a) = self.min_subtotal {
            out.push(ConditionDraft::MinSubtotal(a));
        }
        if let Some(q) = self.min_quantity {
            out.push(ConditionDraft::MinQuantity(q));
        }
        if let Some(r) = self.min_customer_reviews {
            out.push(ConditionDraft::MinCustomerReviews(r));
        }
        if self.first_order_only {
            out.push(ConditionDraft::FirstOrderOnly(true));
        }
        if let Some(days) = self.days_of_week {
            out.push(ConditionDraft::DaysOfWeek(days.days()));
        }
        out
    }

    fn is_cart_level(&self) -> bool {
        self.min_subtotal.is_some() || self.min_quantity.is_some()
    }
}

/// What a tier counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TierBasis {
    /// Eligible remaining amount, in minor units.
    Subtotal,
    /// Eligible units.
    Quantity,
}

/// A tier's discount: exactly one of basis points or an amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TierDiscount {
    BasisPoints(i32),
    Amount(i64),
}

/// One tier of a tiered action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tier {
    /// Reached when the basis is at least this.
    pub threshold: i64,
    pub discount: TierDiscount,
}

/// A tier as given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TierDraft {
    pub threshold: i64,
    pub basis_points_off: Option<i32>,
    pub amount_off: Option<i64>,
}

/// Most tiers in one tiered action.
pub const MAX_TIERS: usize = 50;

/// What a promotion gives, validated.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Action {
    /// Basis points of the eligible remaining amount, optionally capped.
    PercentageOff {
        basis_points: i32,
        max_discount: Option<i64>,
    },
    /// An amount once (spread) or off every eligible unit.
    AmountOff { amount: i64, per_item: bool },
    /// Eligible units cost at most this each.
    FixedPrice { unit_price: i64 },
    /// Buy X, get Y at a discount.
    BuyXGetY {
        buy_quantity: i32,
        get_quantity: i32,
        basis_points_off: i32,
        max_applications: Option<i32>,
        /// Where the discounted units come from; none: the eligible units.
        get_target: Option<Target>,
    },
    /// The highest reached tier applies.
    Tiered {
        basis: TierBasis,
        /// Strictly increasing thresholds.
        tiers: Vec<Tier>,
    },
    /// Shipping off, optionally capped.
    FreeShipping { max_discount: Option<i64> },
}

impl Action {
    /// Whether the action names a money amount (then the promotion needs a currency).
    fn is_amount_based(&self) -> bool {
        match self {
            Action::PercentageOff { max_discount, .. } | Action::FreeShipping { max_discount } => {
                max_discount.is_some()
            }
            Action::AmountOff { .. } | Action::FixedPrice { .. } => true,
            Action::BuyXGetY { .. } => false,
            Action::Tiered { basis, tiers } => {
                *basis == TierBasis::Subtotal || tiers.iter().any(|t| matches!(t.discount, TierDiscount::Amount(_)))
            }
        }
    }

    /// Whether a CATALOG promotion may use it (per-unit price changes only).
    fn fits_catalog(&self) -> bool {
        matches!(
            self,
            Action::PercentageOff { .. } | Action::FixedPrice { .. } | Action::AmountOff { per_item: true, .. }
        )
    }
}

/// An action as given (the contract's `ActionInput`).
#[derive(Debug, Clone, PartialEq)]
pub enum ActionDraft {
    PercentageOff {
        basis_points: i32,
        max_discount: Option<i64>,
    },
    AmountOff {
        amount: i64,
        per_item: bool,
    },
    FixedPrice {
        unit_price: i64,
    },
    BuyXGetY {
        buy_quantity: i32,
        get_quantity: i32,
        basis_points_off: i32,
        max_applications: Option<i32>,
        get_target: Option<TargetDraft>,
    },
    Tiered {
        basis: TierBasis,
        tiers: Vec<TierDraft>,
    },
    FreeShipping {
        max_discount: Option<i64>,
    },
}

impl ActionDraft {
    fn validate(&self, field: &str) -> Result<Action, Invalid> {
        let opt_amount =
            |name: &str, at: &str, value: Option<i64>| value.map(|a| v::amount(&path(at, name), a)).transpose();
        Ok(match self {
            ActionDraft::PercentageOff {
                basis_points,
                max_discount,
            } => {
                let at = path(field, "percentageOff");
                Action::PercentageOff {
                    basis_points: v::basis_points(&path(&at, "basisPoints"), *basis_points)?,
                    max_discount: opt_amount("maxDiscount", &at, *max_discount)?,
                }
            }
            ActionDraft::AmountOff { amount, per_item } => Action::AmountOff {
                amount: v::amount(&path(&path(field, "amountOff"), "amount"), *amount)?,
                per_item: *per_item,
            },
            ActionDraft::FixedPrice { unit_price } => Action::FixedPrice {
                unit_price: v::amount(&path(&path(field, "fixedPrice"), "unitPrice"), *unit_price)?,
            },
            ActionDraft::BuyXGetY {
                buy_quantity,
                get_quantity,
                basis_points_off,
                max_applications,
                get_target,
            } => {
                let at = path(field, "buyXGetY");
                Action::BuyXGetY {
                    buy_quantity: v::positive(&path(&at, "buyQuantity"), *buy_quantity)?,
                    get_quantity: v::positive(&path(&at, "getQuantity"), *get_quantity)?,
                    basis_points_off: v::basis_points(&path(&at, "basisPointsOff"), *basis_points_off)?,
                    max_applications: max_applications
                        .map(|m| v::positive(&path(&at, "maxApplications"), m))
                        .transpose()?,
                    get_target: get_target
                        .as_ref()
                        .map(|t| t.validate(&path(&at, "getTarget")))
                        .transpose()?,
                }
            }
            ActionDraft::Tiered { basis, tiers } => {
                let at = path(field, "tiered");
                Action::Tiered {
                    basis: *basis,
                    tiers: validate_tiers(&path(&at, "tiers"), tiers)?,
                }
            }
            ActionDraft::FreeShipping { max_discount } => Action::FreeShipping {
                max_discount: opt_amount("maxDiscount", &path(field, "freeShipping"), *max_discount)?,
            },
        })
    }
}

fn validate_tiers(field: &str, drafts: &[TierDraft]) -> Result<Vec<Tier>, Invalid> {
    if drafts.is_empty() {
        return Err(Invalid::new(field, "must hold at least one tier"));
    }
    if drafts.len() > MAX_TIERS {
        return Err(Invalid::new(field, format!("must hold at most {MAX_TIERS} tiers")));
    }
    let mut tiers: Vec<Tier> = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.iter().enumerate() {
        let at = format!("{field}[{i}]");
        let threshold = v::amount(&path(&at, "threshold"), draft.threshold)?;
        if tiers.last().is_some_and(|prev| prev.threshold >= threshold) {
            return Err(Invalid::new(
                path(&at, "threshold"),
                "thresholds must strictly increase from one tier to the next",
            ));
        }
        let discount = match (draft.basis_points_off, draft.amount_off) {
            (Some(bp), None) => TierDiscount::BasisPoints(v::basis_points(&path(&at, "basisPointsOff"), bp)?),
            (None, Some(a)) => TierDiscount::Amount(v::amount(&path(&at, "amountOff"), a)?),
            _ => {
                return Err(Invalid::new(
                    at,
                    "each tier needs exactly one of basisPointsOff and amountOff",
                ));
            }
        };
        tiers.push(Tier { threshold, discount });
    }
    Ok(tiers)
}

/// Most customer segments on one promotion.
pub const MAX_SEGMENTS: usize = 100;

/// A promotion as given by a client or read back from a row.
#[derive(Debug, Clone, PartialEq)]
pub struct PromotionDraft {
    pub campaign_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub scope: Scope,
    pub priority: i32,
    pub stackable: bool,
    pub stop_further_rules: bool,
    pub requires_coupon: bool,
    pub active: bool,
    pub starts_at: Option<DateTime<Utc>>,
    pub ends_at: Option<DateTime<Utc>>,
    pub currency: Option<String>,
    pub total_usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub customer_segments: Vec<String>,
    pub target: TargetDraft,
    pub conditions: Vec<ConditionDraft>,
    pub action: ActionDraft,
}

/// A valid promotion definition (everything but identity and usage).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PromotionDefinition {
    pub campaign_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub scope: Scope,
    /// Higher runs first.
    pub priority: i32,
    pub stackable: bool,
    pub stop_further_rules: bool,
    pub requires_coupon: bool,
    pub active: bool,
    #[serde(flatten)]
    pub window: Window,
    /// Set for amount-based promotions; restricts the promotion to carts in it.
    pub currency: Option<String>,
    pub total_usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    /// Empty: every customer.
    pub customer_segments: Vec<String>,
    pub target: Target,
    pub conditions: Conditions,
    pub action: Action,
}

impl PromotionDefinition {
    /// Checks every rule; errors name the input path under `input`.
    pub fn new(draft: &PromotionDraft) -> Result<Self, Invalid> {
        let field = |name: &str| path("input", name);
        if draft.customer_segments.len() > MAX_SEGMENTS {
            return Err(Invalid::new(
                field("customerSegments"),
                format!("must hold at most {MAX_SEGMENTS} segments"),
            ));
        }
        let definition = PromotionDefinition {
            campaign_id: draft.campaign_id,
            name: v::name(&field("name"), &draft.name)?,
            description: v::description(&field("description"), draft.description.as_deref())?,
            scope: draft.scope,
            priority: draft.priority,
            stackable: draft.stackable,
            stop_further_rules: draft.stop_further_rules,
            requires_coupon: draft.requires_coupon,
            active: draft.active,
            window: Window::new(&field("endsAt"), draft.starts_at, draft.ends_at)?,
            currency: draft
                .currency
                .as_deref()
                .map(|c| v::currency(&field("currency"), c))
                .transpose()?,
            total_usage_limit: draft
                .total_usage_limit
                .map(|l| v::positive(&field("totalUsageLimit"), l))
                .transpose()?,
            usage_limit_per_customer: draft
                .usage_limit_per_customer
                .map(|l| v::positive(&field("usageLimitPerCustomer"), l))
                .transpose()?,
            customer_segments: v::identifiers(&field("customerSegments"), &draft.customer_segments)?,
            target: draft.target.validate(&field("target"))?,
            conditions: Conditions::from_drafts(&field("conditions"), &draft.conditions)?,
            action: draft.action.validate(&field("action"))?,
        };
        definition.check_combination()?;
        Ok(definition)
    }

    /// Rules that span several fields.
    fn check_combination(&self) -> Result<(), Invalid> {
        if self.scope == Scope::Catalog {
            if self.requires_coupon {
                return Err(Invalid::new(
                    "input.requiresCoupon",
                    "a CATALOG promotion cannot require a coupon: coupons apply to carts",
                ));
            }
            if !self.action.fits_catalog() {
                return Err(Invalid::new(
                    "input.action",
                    "a CATALOG promotion changes unit prices: use percentageOff, fixedPrice or \
                     amountOff with perItem; the other actions are CART actions",
                ));
            }
            if self.conditions.is_cart_level() {
                return Err(Invalid::new(
                    "input.conditions",
                    "minSubtotal and minQuantity are cart conditions: use a CART promotion",
                ));
            }
        }
        if self.currency.is_none() && (self.action.is_amount_based() || self.conditions.min_subtotal.is_some()) {
            return Err(Invalid::new(
                "input.currency",
                "is required for a promotion with a money amount (action, cap or minSubtotal)",
            ));
        }
        Ok(())
    }

    /// This definition as a draft again (for storage round trips).
    pub fn to_draft(&self) -> PromotionDraft {
        let target_draft = |t: &Target| TargetDraft {
            product_ids: t.product_ids.clone(),
            category_ids: t.category_ids.clone(),
            brand_ids: t.brand_ids.clone(),
            exclude_product_ids: t.exclude_product_ids.clone(),
            min_rating: t.min_rating,
        };
        PromotionDraft {
            campaign_id: self.campaign_id,
            name: self.name.clone(),
            description: self.description.clone(),
            scope: self.scope,
            priority: self.priority,
            stackable: self.stackable,
            stop_further_rules: self.stop_further_rules,
            requires_coupon: self.requires_coupon,
            active: self.active,
            starts_at: self.window.starts_at,
            ends_at: self.window.ends_at,
            currency: self.currency.clone(),
            total_usage_limit: self.total_usage_limit,
            usage_limit_per_customer: self.usage_limit_per_customer,
            customer_segments: self.customer_segments.clone(),
            target: target_draft(&self.target),
            conditions: self.conditions.to_drafts(),
            action: match &self.action {
                Action::PercentageOff {
                    basis_points,
                    max_discount,
                } => ActionDraft::PercentageOff {
                    basis_points: *basis_points,
                    max_discount: *max_discount,
                },
                Action::AmountOff { amount, per_item } => ActionDraft::AmountOff {
                    amount: *amount,
                    per_item: *per_item,
                },
                Action::FixedPrice { unit_price } => ActionDraft::FixedPrice {
                    unit_price: *unit_price,
                },
                Action::BuyXGetY {
                    buy_quantity,
                    get_quantity,
                    basis_points_off,
                    max_applications,
                    get_target,
                } => ActionDraft::BuyXGetY {
                    buy_quantity: *buy_quantity,
                    get_quantity: *get_quantity,
                    basis_points_off: *basis_points_off,
                    max_applications: *max_applications,
                    get_target: get_target.as_ref().map(target_draft),
                },
                Action::Tiered { basis, tiers } => ActionDraft::Tiered {
                    basis: *basis,
                    tiers: tiers
                        .iter()
                        .map(|t| TierDraft {
                            threshold: t.threshold,
                            basis_points_off: match t.discount {
                                TierDiscount::BasisPoints(bp) => Some(bp),
                                TierDiscount::Amount(_) => None,
                            },
                            amount_off: match t.discount {
                                TierDiscount::Amount(a) => Some(a),
                                TierDiscount::BasisPoints(_) => None,
                            },
                        })
                        .collect(),
                },
                Action::FreeShipping { max_discount } => ActionDraft::FreeShipping {
                    max_discount: *max_discount,
                },
            },
        }
    }
}

/// A stored promotion.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Promotion {
    /// Time-ordered (UUIDv7).
    pub id: Uuid,
    /// What it is.
    #[serde(flatten)]
    pub definition: PromotionDefinition,
    /// Redemptions not released (reconciled from the redemptions).
    pub redemption_count: i32,
    /// Their discount, in minor units.
    pub discount_total: i64,
    /// When it was created (second key of the evaluation order).
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

impl Promotion {
    /// Its status at `now`.
    pub fn status(&self, now: DateTime<Utc>) -> PromotionStatus {
        let d = &self.definition;
        PromotionStatus::derive(d.active, &d.window, d.total_usage_limit, self.redemption_count, now)
    }
}

/// A promotion's status, derived on read (DESIGN.md 3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromotionStatus {
    /// Before its window.
    Scheduled,
    /// In its window, active, under its total limit.
    Active,
    /// Switched off.
    Inactive,
    /// After its window.
    Expired,
    /// Its total usage limit is used up.
    Exhausted,
}

impl PromotionStatus {
    /// The status at `now`, given the stored flag, window, limit and usage.
    pub fn derive(
        active: bool,
        window: &Window,
        total_usage_limit: Option<i32>,
        redemptions: i32,
        now: DateTime<Utc>,
    ) -> Self {
        if !active {
            Self::Inactive
        } else if window.is_before(now) {
            Self::Scheduled
        } else if window.is_after(now) {
            Self::Expired
        } else if total_usage_limit.is_some_and(|limit| redemptions >= limit) {
            Self::Exhausted
        } else {
            Self::Active
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(action: ActionDraft) -> PromotionDraft {
        PromotionDraft {
            campaign_id: None,
            name: "Ten off".into(),
            description: None,
            scope: Scope::Cart,
            priority: 0,
            stackable: true,
            stop_further_rules: false,
            requires_coupon: false,
            active: true,
            starts_at: None,
            ends_at: None,
            currency: None,
            total_usage_limit: None,
            usage_limit_per_customer: None,
            customer_segments: vec![],
            target: TargetDraft::default(),
            conditions: vec![],
            action,
        }
    }

    fn pct(bp: i32) -> ActionDraft {
        ActionDraft::PercentageOff {
            basis_points: bp,
            max_discount: None,
        }
    }

    fn field_of(d: &PromotionDraft) -> String {
        PromotionDefinition::new(d).unwrap_err().field
    }

    #[test]
    fn basis_points_out_of_range_name_their_field() {
        assert_eq!(field_of(&draft(pct(0))), "input.action.percentageOff.basisPoints");
        assert_eq!(field_of(&draft(pct(10_001))), "input.action.percentageOff.basisPoints");
        assert!(PromotionDefinition::new(&draft(pct(10_000))).is_ok());
    }

    #[test]
    fn amount_based_actions_need_a_currency() {
        let d = draft(ActionDraft::AmountOff {
            amount: 500,
            per_item: false,
        });
        assert_eq!(field_of(&d), "input.currency");
        let capped = draft(ActionDraft::PercentageOff {
            basis_points: 10,
            max_discount: Some(5),
        });
        assert_eq!(field_of(&capped), "input.currency");
        let mut min_subtotal = draft(pct(10));
        min_subtotal.conditions = vec![ConditionDraft::MinSubtotal(1000)];
        assert_eq!(field_of(&min_subtotal), "input.currency");
        let by_subtotal = draft(ActionDraft::Tiered {
            basis: TierBasis::Subtotal,
            tiers: vec![TierDraft {
                threshold: 1,
                basis_points_off: Some(5),
                amount_off: None,
            }],
        });
        assert_eq!(field_of(&by_subtotal), "input.currency");
        let mut ok = draft(ActionDraft::AmountOff {
            amount: 500,
            per_item: false,
        });
        ok.currency = Some("eur".into());
        assert_eq!(PromotionDefinition::new(&ok).unwrap().currency.as_deref(), Some("EUR"));
    }

    #[test]
    fn catalog_promotions_refuse_coupons_cart_actions_and_cart_conditions() {
        let mut d = draft(pct(10));
        d.scope = Scope::Catalog;
        d.requires_coupon = true;
        assert_eq!(field_of(&d), "input.requiresCoupon");
        let mut d = draft(ActionDraft::FreeShipping { max_discount: None });
        d.scope = Scope::Catalog;
        assert_eq!(field_of(&d), "input.action");
        let mut d = draft(pct(10));
        d.scope = Scope::Catalog;
        d.conditions = vec![ConditionDraft::MinQuantity(2)];
        assert_eq!(field_of(&d), "input.conditions");
    }

    #[test]
    fn tiers_need_increasing_thresholds_and_exactly_one_discount() {
        let tier = |threshold, bp, amount| TierDraft {
            threshold,
            basis_points_off: bp,
            amount_off: amount,
        };
        let tiered = |tiers| {
            draft(ActionDraft::Tiered {
                basis: TierBasis::Quantity,
                tiers,
            })
        };
        assert_eq!(
            field_of(&tiered(vec![tier(5, Some(10), None), tier(5, Some(20), None)])),
            "input.action.tiered.tiers[1].threshold"
        );
        assert_eq!(
            field_of(&tiered(vec![tier(5, Some(10), Some(3))])),
            "input.action.tiered.tiers[0]"
        );
        assert_eq!(
            field_of(&tiered(vec![tier(5, None, None)])),
            "input.action.tiered.tiers[0]"
        );
        assert_eq!(field_of(&tiered(vec![])), "input.action.tiered.tiers");
        assert!(PromotionDefinition::new(&tiered(vec![tier(2, Some(5), None), tier(5, Some(10), None)])).is_ok());
    }

    #[test]
    fn a_condition_kind_may_appear_once() {
        let mut d = draft(pct(10));
        d.conditions = vec![ConditionDraft::MinQuantity(2), ConditionDraft::MinQuantity(3)];
        assert_eq!(field_of(&d), "input.conditions[1]");
        d.conditions = vec![ConditionDraft::DaysOfWeek(vec![])];
        assert_eq!(field_of(&d), "input.conditions[0].daysOfWeek");
    }

    #[test]
    fn limits_and_quantities_must_be_at_least_one() {
        let mut d = draft(pct(10));
        d.total_usage_limit = Some(0);
        assert_eq!(field_of(&d), "input.totalUsageLimit");
        let d = draft(ActionDraft::BuyXGetY {
            buy_quantity: 2,
            get_quantity: 0,
            basis_points_off: 10_000,
            max_applications: None,
            get_target: None,
        });
        assert_eq!(field_of(&d), "input.action.buyXGetY.getQuantity");
    }

    #[test]
    fn a_definition_survives_a_round_trip_through_its_draft() {
        let mut d = draft(ActionDraft::BuyXGetY {
            buy_quantity: 2,
            get_quantity: 1,
            basis_points_off: 5_000,
            max_applications: Some(3),
            get_target: Some(TargetDraft {
                brand_ids: vec!["b".into()],
                ..Default::default()
            }),
        });
        d.conditions = vec![
            ConditionDraft::MinQuantity(3),
            ConditionDraft::DaysOfWeek(vec![DayOfWeek::Sunday, DayOfWeek::Monday]),
        ];
        let def = PromotionDefinition::new(&d).unwrap();
        assert_eq!(PromotionDefinition::new(&def.to_draft()).unwrap(), def);
    }

    #[test]
    fn status_is_derived_in_order_inactive_scheduled_expired_exhausted_active() {
        let now = Utc::now();
        let hour = chrono::Duration::hours(1);
        let open = Window::default();
        let later = Window {
            starts_at: Some(now + hour),
            ends_at: None,
        };
        let over = Window {
            starts_at: None,
            ends_at: Some(now - hour),
        };
        assert_eq!(
            PromotionStatus::derive(false, &later, None, 0, now),
            PromotionStatus::Inactive
        );
        assert_eq!(
            PromotionStatus::derive(true, &later, None, 0, now),
            PromotionStatus::Scheduled
        );
        assert_eq!(
            PromotionStatus::derive(true, &over, Some(1), 1, now),
            PromotionStatus::Expired
        );
        assert_eq!(
            PromotionStatus::derive(true, &open, Some(1), 1, now),
            PromotionStatus::Exhausted
        );
        assert_eq!(
            PromotionStatus::derive(true, &open, Some(2), 1, now),
            PromotionStatus::Active
        );
    }
}
