//! The filters of the `promotions` query, all applied in SQL: the derived
//! status (the same rule as [`PromotionStatus::derive`], a test holds them
//! equal), the active window, and the item a catalog asks about.

use chrono::{DateTime, Utc};
use sea_orm::Value;
use sea_orm::sea_query::{Expr, SimpleExpr};
use uuid::Uuid;

use crate::domain::promotion::{PromotionStatus, Scope};

/// Filters of the `promotions` query, all applied in SQL.
#[derive(Debug, Clone, Default)]
pub struct PromotionFilter {
    pub campaign_id: Option<Uuid>,
    pub scope: Option<Scope>,
    /// Derived status at `now`.
    pub status: Option<PromotionStatus>,
    /// With category and brand: promotions that can discount such an item
    /// (targeted at any of them, or untargeted; not excluding the product).
    pub product_id: Option<String>,
    pub category_id: Option<String>,
    pub brand_id: Option<String>,
    /// Active flag set and own window containing the instant.
    pub active_at: Option<DateTime<Utc>>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
}

/// Switched on and inside the own window at the instant bound as `$1`.
pub(super) const IN_WINDOW: &str =
    "promotions.active AND COALESCE(promotions.starts_at <= $1, true) AND COALESCE(promotions.ends_at > $1, true)";

/// SQL for the derived status at a bound instant (see [`PromotionStatus::derive`]).
pub(super) fn status_condition(status: PromotionStatus, now: DateTime<Utc>) -> SimpleExpr {
    match status {
        PromotionStatus::Inactive => Expr::cust("NOT promotions.active"),
        PromotionStatus::Scheduled => Expr::cust_with_values("promotions.active AND promotions.starts_at > $1", [now]),
        PromotionStatus::Expired => Expr::cust_with_values(
            "promotions.active AND COALESCE(promotions.starts_at <= $1, true) AND promotions.ends_at <= $1",
            [now],
        ),
        PromotionStatus::Exhausted => Expr::cust_with_values(
            format!("{IN_WINDOW} AND promotions.redemption_count >= promotions.total_usage_limit"),
            [now],
        ),
        PromotionStatus::Active => Expr::cust_with_values(
            format!(
                "{IN_WINDOW} AND (promotions.total_usage_limit IS NULL OR promotions.redemption_count < promotions.total_usage_limit)"
            ),
            [now],
        ),
    }
}

/// The item a filter describes: (kind, value) pairs to match, and the
/// product that must not be excluded.
pub(super) struct Item {
    pairs: Vec<(&'static str, String)>,
    product: Option<String>,
}

impl Item {
    pub(super) fn of(filter: &PromotionFilter) -> Option<Self> {
        let pairs: Vec<(&'static str, String)> = [
            ("PRODUCT", &filter.product_id),
            ("CATEGORY", &filter.category_id),
            ("BRAND", &filter.brand_id),
        ]
        .into_iter()
        .filter_map(|(kind, value)| value.clone().map(|v| (kind, v)))
        .collect();
        (!pairs.is_empty()).then(|| Item {
            pairs,
            product: filter.product_id.clone(),
        })
    }

    /// SQL (with `$1..`) for the ids of promotions that can discount the item:
    /// untargeted, or targeted at any pair, and not excluding the product.
    /// Answered from two indexes alone: (kind, value, promotion_id) and the
    /// partial index of untargeted promotions.
    pub(super) fn candidate_ids(&self) -> (String, Vec<Value>) {
        let matches = (0..self.pairs.len())
            .map(|i| format!("(kind = ${} AND value = ${})", 2 * i + 1, 2 * i + 2))
            .collect::<Vec<_>>()
            .join(" OR ");
        let mut values: Vec<Value> = self
            .pairs
            .iter()
            .flat_map(|(k, v)| [Value::from(*k), Value::from(v.clone())])
            .collect();
        let mut sql = format!(
            "SELECT c.id FROM (SELECT promotion_id AS id FROM promotion_targets WHERE {matches} \
             UNION SELECT id FROM promotions WHERE NOT targeted) c"
        );
        if let Some(product) = &self.product {
            values.push(product.clone().into());
            sql.push_str(&format!(
                " WHERE NOT EXISTS (SELECT 1 FROM promotion_targets x WHERE x.promotion_id = c.id \
                 AND x.kind = 'EXCLUDE_PRODUCT' AND x.value = ${})",
                values.len()
            ));
        }
        (sql, values)
    }
}
