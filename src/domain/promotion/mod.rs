//! Promotion definitions: what a promotion targets, when it applies and what
//! it gives. A [`PromotionDraft`] holds raw values as a client (or a stored
//! row) gave them; [`PromotionDefinition::new`] checks every rule of
//! DESIGN.md 3.7 and is the only way to obtain a definition. The parts live
//! in their own files: `target`, `conditions`, `action`, `status`.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::validation::{self as v, Invalid, Window, path};

mod action;
mod conditions;
mod status;
mod target;

pub use action::*;
pub use conditions::*;
pub use status::*;
pub use target::*;

/// CATALOG rules change item prices before the cart; CART rules follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Scope {
    /// Item-price rules (no coupons, no cart-level actions or conditions).
    Catalog,
    /// Cart rules, optionally behind a coupon.
    Cart,
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

impl PromotionDraft {
    /// A draft of `name` with the API's defaults for everything else:
    /// priority 0, stackable, active, no coupon, window, limit, target or
    /// condition.
    pub fn new(name: impl Into<String>, scope: Scope, action: ActionDraft) -> Self {
        PromotionDraft {
            campaign_id: None,
            name: name.into(),
            description: None,
            scope,
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
            customer_segments: Vec::new(),
            target: TargetDraft::default(),
            conditions: Vec::new(),
            action,
        }
    }
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
    pub customer_segments: Box<[String]>,
    pub target: Target,
    pub conditions: Conditions,
    pub action: Action,
}

impl PromotionDefinition {
    /// Checks every rule; errors name fields relative to the draft (the
    /// resolver puts them under its argument).
    pub fn new(draft: &PromotionDraft) -> Result<Self, Invalid> {
        let field = |name: &str| path("", name);
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
            customer_segments: v::identifiers(&field("customerSegments"), &draft.customer_segments)?.into(),
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
                    "requiresCoupon",
                    "a CATALOG promotion cannot require a coupon: coupons apply to carts",
                ));
            }
            if !self.action.fits_catalog() {
                return Err(Invalid::new(
                    "action",
                    "a CATALOG promotion changes unit prices: use percentageOff, fixedPrice or \
                     amountOff with perItem; the other actions are CART actions",
                ));
            }
            if self.conditions.is_cart_level() {
                return Err(Invalid::new(
                    "conditions",
                    "minSubtotal and minQuantity are cart conditions: use a CART promotion",
                ));
            }
        }
        if self.currency.is_none() && (self.action.is_amount_based() || self.conditions.min_subtotal.is_some()) {
            return Err(Invalid::new(
                "currency",
                "is required for a promotion with a money amount (action, cap or minSubtotal)",
            ));
        }
        Ok(())
    }

    /// This definition as a draft again (for storage round trips).
    pub fn to_draft(&self) -> PromotionDraft {
        let target_draft = |t: &Target| TargetDraft {
            product_ids: t.product_ids.to_vec(),
            category_ids: t.category_ids.to_vec(),
            brand_ids: t.brand_ids.to_vec(),
            exclude_product_ids: t.exclude_product_ids.to_vec(),
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
            customer_segments: self.customer_segments.to_vec(),
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
                    get_target: get_target.as_deref().map(target_draft),
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
    /// Redemptions not released (the stored count, folded from usage deltas).
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

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(action: ActionDraft) -> PromotionDraft {
        PromotionDraft::new("Ten off", Scope::Cart, action)
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
    fn a_promotion_fits_the_snapshots_memory_budget() {
        // A snapshot holds each in an Arc (16 bytes of counts): 384 bytes
        // is an allocator size class (mimalloc's), the next is 448.
        let size = std::mem::size_of::<Promotion>();
        assert!(size + 16 <= 384, "a promotion is {size} bytes");
    }

    #[test]
    fn basis_points_out_of_range_name_their_field() {
        assert_eq!(field_of(&draft(pct(0))), "action.percentageOff.basisPoints");
        assert_eq!(field_of(&draft(pct(10_001))), "action.percentageOff.basisPoints");
        assert!(PromotionDefinition::new(&draft(pct(10_000))).is_ok());
    }

    #[test]
    fn amount_based_actions_need_a_currency() {
        let d = draft(ActionDraft::AmountOff {
            amount: 500,
            per_item: false,
        });
        assert_eq!(field_of(&d), "currency");
        let capped = draft(ActionDraft::PercentageOff {
            basis_points: 10,
            max_discount: Some(5),
        });
        assert_eq!(field_of(&capped), "currency");
        let mut min_subtotal = draft(pct(10));
        min_subtotal.conditions = vec![ConditionDraft::MinSubtotal(1000)];
        assert_eq!(field_of(&min_subtotal), "currency");
        let by_subtotal = draft(ActionDraft::Tiered {
            basis: TierBasis::Subtotal,
            tiers: vec![TierDraft {
                threshold: 1,
                basis_points_off: Some(5),
                amount_off: None,
            }],
        });
        assert_eq!(field_of(&by_subtotal), "currency");
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
        assert_eq!(field_of(&d), "requiresCoupon");
        let mut d = draft(ActionDraft::FreeShipping { max_discount: None });
        d.scope = Scope::Catalog;
        assert_eq!(field_of(&d), "action");
        let mut d = draft(pct(10));
        d.scope = Scope::Catalog;
        d.conditions = vec![ConditionDraft::MinQuantity(2)];
        assert_eq!(field_of(&d), "conditions");
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
            "action.tiered.tiers[1].threshold"
        );
        assert_eq!(
            field_of(&tiered(vec![tier(5, Some(10), Some(3))])),
            "action.tiered.tiers[0]"
        );
        assert_eq!(field_of(&tiered(vec![tier(5, None, None)])), "action.tiered.tiers[0]");
        assert_eq!(field_of(&tiered(vec![])), "action.tiered.tiers");
        assert!(PromotionDefinition::new(&tiered(vec![tier(2, Some(5), None), tier(5, Some(10), None)])).is_ok());
    }

    #[test]
    fn a_condition_kind_may_appear_once() {
        let mut d = draft(pct(10));
        d.conditions = vec![ConditionDraft::MinQuantity(2), ConditionDraft::MinQuantity(3)];
        assert_eq!(field_of(&d), "conditions[1]");
        d.conditions = vec![ConditionDraft::DaysOfWeek(vec![])];
        assert_eq!(field_of(&d), "conditions[0].daysOfWeek");
    }

    #[test]
    fn limits_and_quantities_must_be_at_least_one() {
        let mut d = draft(pct(10));
        d.total_usage_limit = Some(0);
        assert_eq!(field_of(&d), "totalUsageLimit");
        let d = draft(ActionDraft::BuyXGetY {
            buy_quantity: 2,
            get_quantity: 0,
            basis_points_off: 10_000,
            max_applications: None,
            get_target: None,
        });
        assert_eq!(field_of(&d), "action.buyXGetY.getQuantity");
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
