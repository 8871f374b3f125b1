//! Coupons: a code that unlocks one CART promotion, with its own limits and
//! window. Codes are matched case-insensitively and stored upper-case.

use chrono::{DateTime, Utc};

use super::validation::{self as v, Invalid, Window};

/// Shortest accepted code.
pub const MIN_CODE_LEN: usize = 3;
/// Longest accepted code.
pub const MAX_CODE_LEN: usize = 64;

/// Normalises a code as typed by a shopper or an admin: trimmed and
/// upper-cased; 3..64 characters of A-Z, 0-9, '-' and '_', starting with a
/// letter or digit.
pub fn normalize_code(field: &str, code: &str) -> Result<String, Invalid> {
    let code = code.trim().to_ascii_uppercase();
    let well_formed = (MIN_CODE_LEN..=MAX_CODE_LEN).contains(&code.len())
        && code.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if well_formed {
        Ok(code)
    } else {
        Err(Invalid::new(
            field,
            format!(
                "must be {MIN_CODE_LEN} to {MAX_CODE_LEN} letters, digits, '-' or '_', starting with a letter or digit"
            ),
        ))
    }
}

/// A coupon as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CouponDraft {
    /// As typed; normalised by [`CouponDefinition::new`].
    pub code: String,
    /// Total uses; none: unlimited.
    pub usage_limit: Option<i32>,
    /// Uses per customer; none: unlimited.
    pub usage_limit_per_customer: Option<i32>,
    /// Valid from; none: at once.
    pub starts_at: Option<DateTime<Utc>>,
    /// Valid until (exclusive); none: for ever.
    pub expires_at: Option<DateTime<Utc>>,
}

/// A valid coupon definition.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponDefinition {
    /// Upper-case, well-formed.
    pub code: String,
    /// At least 1 when set.
    pub usage_limit: Option<i32>,
    /// At least 1 when set.
    pub usage_limit_per_customer: Option<i32>,
    /// When the code is valid.
    #[serde(flatten)]
    pub window: Window,
}

/// The limits and window every coupon input carries, checked: (usage
/// limit, per-customer limit, window); errors name fields relative to the input.
pub fn terms(
    usage_limit: Option<i32>,
    usage_limit_per_customer: Option<i32>,
    starts_at: Option<DateTime<Utc>>,
    expires_at: Option<DateTime<Utc>>,
) -> Result<(Option<i32>, Option<i32>, Window), Invalid> {
    Ok((
        usage_limit.map(|l| v::positive("usageLimit", l)).transpose()?,
        usage_limit_per_customer
            .map(|l| v::positive("usageLimitPerCustomer", l))
            .transpose()?,
        Window::new("expiresAt", starts_at, expires_at)?,
    ))
}

/// One field of an update: left as it is, cleared, or set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Update<T> {
    Keep,
    Clear,
    Set(T),
}

impl<T: Copy> Update<T> {
    /// The field's value after the update.
    pub fn applied_to(self, current: Option<T>) -> Option<T> {
        match self {
            Update::Keep => current,
            Update::Clear => None,
            Update::Set(value) => Some(value),
        }
    }
}

/// A change of a coupon's limits and window (updateCoupon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TermsUpdate {
    pub usage_limit: Update<i32>,
    pub usage_limit_per_customer: Update<i32>,
    pub starts_at: Update<DateTime<Utc>>,
    pub expires_at: Update<DateTime<Utc>>,
}

impl CouponDefinition {
    /// This definition with `update` applied, checked like a new one.
    pub fn updated(&self, update: &TermsUpdate) -> Result<Self, Invalid> {
        let (usage_limit, usage_limit_per_customer, window) = terms(
            update.usage_limit.applied_to(self.usage_limit),
            update
                .usage_limit_per_customer
                .applied_to(self.usage_limit_per_customer),
            update.starts_at.applied_to(self.window.starts_at),
            update.expires_at.applied_to(self.window.ends_at),
        )?;
        Ok(Self {
            code: self.code.clone(),
            usage_limit,
            usage_limit_per_customer,
            window,
        })
    }

    /// Checks the rules; errors name fields relative to the draft (the
    /// resolver puts them under its argument).
    pub fn new(draft: &CouponDraft) -> Result<Self, Invalid> {
        let code = normalize_code("code", &draft.code)?;
        let (usage_limit, usage_limit_per_customer, window) = terms(
            draft.usage_limit,
            draft.usage_limit_per_customer,
            draft.starts_at,
            draft.expires_at,
        )?;
        Ok(Self {
            code,
            usage_limit,
            usage_limit_per_customer,
            window,
        })
    }
}

/// A stored coupon.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Coupon {
    /// Time-ordered (UUIDv7).
    pub id: uuid::Uuid,
    /// The promotion it unlocks.
    pub promotion_id: uuid::Uuid,
    /// The batch that generated it, if any.
    pub batch_id: Option<uuid::Uuid>,
    /// Code, limits and window.
    #[serde(flatten)]
    pub definition: CouponDefinition,
    /// Switched on or off by an admin (expiry does not change it).
    pub active: bool,
    /// Redemptions not released (the stored count, folded from usage deltas).
    pub times_used: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_trimmed_and_upper_cased() {
        assert_eq!(normalize_code("c", " summer-2026 "), Ok("SUMMER-2026".to_owned()));
    }

    #[test]
    fn malformed_codes_are_rejected() {
        for bad in ["", "AB", "-ABC", "A B C", "ÄBC", &"A".repeat(65)] {
            assert!(normalize_code("c", bad).is_err(), "{bad:?} was accepted");
        }
    }
}
