//! What a promotion gives: its [`Action`] (percentage, amount, fixed
//! price, buy-X-get-Y, tiered, free shipping), the raw [`ActionDraft`] a
//! client gives, and tiers.

use serde::Serialize;

use super::target::{Target, TargetDraft};
use crate::domain::validation::{self as v, Invalid, path};

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
        /// Boxed: rare, and it would double the size of every action.
        get_target: Option<Box<Target>>,
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
    pub(super) fn is_amount_based(&self) -> bool {
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
    pub(super) fn fits_catalog(&self) -> bool {
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
    pub(super) fn validate(&self, field: &str) -> Result<Action, Invalid> {
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
                        .map(|t| t.validate(&path(&at, "getTarget")).map(Box::new))
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
