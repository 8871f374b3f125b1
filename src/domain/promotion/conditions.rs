//! When a promotion applies: its conditions ([`Conditions`], all must
//! hold), the raw ones a client gives ([`ConditionDraft`]), and the days of
//! the week ([`DayOfWeek`], [`DaySet`]).

use serde::{Serialize, Serializer};

use crate::domain::validation::{self as v, Invalid, path};

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
    pub(super) fn from_drafts(field: &str, drafts: &[ConditionDraft]) -> Result<Self, Invalid> {
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

    pub(super) fn is_cart_level(&self) -> bool {
        self.min_subtotal.is_some() || self.min_quantity.is_some()
    }
}
