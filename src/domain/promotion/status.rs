//! A promotion's status, derived on read (DESIGN.md 3.7); the status
//! filter in `store::promotions` says the same in SQL (a test holds them equal).

use chrono::{DateTime, Utc};

use crate::domain::validation::Window;

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
