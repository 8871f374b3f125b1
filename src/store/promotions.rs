//! Promotion rows with their target and tier rows.
//!
//! A definition is written as typed columns plus normalised target rows and
//! tier rows; reading goes back through [`PromotionDefinition::new`], so a
//! row that breaks a rule is reported (naming the row), never half-used.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter,
    QuerySelect, Value,
};
use uuid::Uuid;

use super::entities::{promotion, promotion_target, promotion_tier};
use super::page::{self, Page, PageRequest};
use crate::domain::promotion::{
    Action, ActionDraft, ConditionDraft, DaySet, Promotion, PromotionDefinition, PromotionDraft, PromotionStatus,
    Scope, TargetDraft, TierBasis, TierDiscount, TierDraft,
};
use crate::error::{AppError, AppResult};

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

const TARGET_KINDS: [(&str, &str); 4] = [
    ("PRODUCT", "GET_PRODUCT"),
    ("CATEGORY", "GET_CATEGORY"),
    ("BRAND", "GET_BRAND"),
    ("EXCLUDE_PRODUCT", "GET_EXCLUDE_PRODUCT"),
];

fn scope_code(scope: Scope) -> &'static str {
    match scope {
        Scope::Catalog => "CATALOG",
        Scope::Cart => "CART",
    }
}

fn basis_code(basis: TierBasis) -> &'static str {
    match basis {
        TierBasis::Subtotal => "SUBTOTAL",
        TierBasis::Quantity => "QUANTITY",
    }
}

/// The row (without usage and timestamps) of a definition.
fn to_row(id: Uuid, def: &PromotionDefinition, now: DateTime<Utc>) -> promotion::ActiveModel {
    let c = &def.conditions;
    let mut row = promotion::ActiveModel {
        id: Set(id),
        campaign_id: Set(def.campaign_id),
        name: Set(def.name.clone()),
        description: Set(def.description.clone()),
        scope: Set(scope_code(def.scope).to_owned()),
        priority: Set(def.priority),
        stackable: Set(def.stackable),
        stop_further_rules: Set(def.stop_further_rules),
        requires_coupon: Set(def.requires_coupon),
        active: Set(def.active),
        starts_at: Set(def.window.starts_at),
        ends_at: Set(def.window.ends_at),
        currency: Set(def.currency.clone()),
        total_usage_limit: Set(def.total_usage_limit),
        usage_limit_per_customer: Set(def.usage_limit_per_customer),
        customer_segments: Set(def.customer_segments.clone()),
        targeted: Set(def.target.is_targeted()),
        min_rating: Set(def.target.min_rating),
        min_subtotal: Set(c.min_subtotal),
        min_quantity: Set(c.min_quantity),
        min_customer_reviews: Set(c.min_customer_reviews),
        first_order_only: Set(c.first_order_only),
        days_of_week: Set(c.days_of_week.map(DaySet::mask)),
        action_kind: Set(String::new()),
        basis_points: Set(None),
        amount: Set(None),
        per_item: Set(None),
        max_discount: Set(None),
        buy_quantity: Set(None),
        get_quantity: Set(None),
        max_applications: Set(None),
        has_get_target: Set(false),
        get_min_rating: Set(None),
        tier_basis: Set(None),
        updated_at: Set(now),
        ..Default::default()
    };
    let kind = match &def.action {
        Action::PercentageOff {
            basis_points,
            max_discount,
        } => {
            row.basis_points = Set(Some(*basis_points));
            row.max_discount = Set(*max_discount);
            "PERCENTAGE_OFF"
        }
        Action::AmountOff { amount, per_item } => {
            row.amount = Set(Some(*amount));
            row.per_item = Set(Some(*per_item));
            "AMOUNT_OFF"
        }
        Action::FixedPrice { unit_price } => {
            row.amount = Set(Some(*unit_price));
            "FIXED_PRICE"
        }
        Action::BuyXGetY {
            buy_quantity,
            get_quantity,
            basis_points_off,
            max_applications,
            get_target,
        } => {
            row.buy_quantity = Set(Some(*buy_quantity));
            row.get_quantity = Set(Some(*get_quantity));
            row.basis_points = Set(Some(*basis_points_off));
            row.max_applications = Set(*max_applications);
            row.has_get_target = Set(get_target.is_some());
            row.get_min_rating = Set(get_target.as_ref().and_then(|t| t.min_rating));
            "BUY_X_GET_Y"
        }
        Action::Tiered { basis, .. } => {
            row.tier_basis = Set(Some(basis_code(*basis).to_owned()));
            "TIERED"
        }
        Action::FreeShipping { max_discount } => {
            row.max_discount = Set(*max_discount);
            "FREE_SHIPPING"
        }
    };
    row.action_kind = Set(kind.to_owned());
    row
}

fn target_rows(id: Uuid, def: &PromotionDefinition) -> Vec<promotion_target::ActiveModel> {
    let mut rows = Vec::new();
    let mut push = |kind: &str, values: &[String]| {
        rows.extend(values.iter().map(|value| promotion_target::ActiveModel {
            promotion_id: Set(id),
            kind: Set(kind.to_owned()),
            value: Set(value.clone()),
        }))
    };
    let t = &def.target;
    let lists = [&t.product_ids, &t.category_ids, &t.brand_ids, &t.exclude_product_ids];
    for ((kind, _), values) in TARGET_KINDS.iter().zip(lists) {
        push(kind, values);
    }
    if let Action::BuyXGetY {
        get_target: Some(g), ..
    } = &def.action
    {
        let lists = [&g.product_ids, &g.category_ids, &g.brand_ids, &g.exclude_product_ids];
        for ((_, kind), values) in TARGET_KINDS.iter().zip(lists) {
            push(kind, values);
        }
    }
    rows
}

fn tier_rows(id: Uuid, def: &PromotionDefinition) -> Vec<promotion_tier::ActiveModel> {
    let Action::Tiered { tiers, .. } = &def.action else {
        return Vec::new();
    };
    tiers
        .iter()
        .map(|t| promotion_tier::ActiveModel {
            promotion_id: Set(id),
            threshold: Set(t.threshold),
            basis_points_off: Set(match t.discount {
                TierDiscount::BasisPoints(bp) => Some(bp),
                TierDiscount::Amount(_) => None,
            }),
            amount_off: Set(match t.discount {
                TierDiscount::Amount(a) => Some(a),
                TierDiscount::BasisPoints(_) => None,
            }),
        })
        .collect()
}

async fn insert_children(db: &impl ConnectionTrait, id: Uuid, def: &PromotionDefinition) -> AppResult<()> {
    let targets = target_rows(id, def);
    if !targets.is_empty() {
        promotion_target::Entity::insert_many(targets).exec(db).await?;
    }
    let tiers = tier_rows(id, def);
    if !tiers.is_empty() {
        promotion_tier::Entity::insert_many(tiers).exec(db).await?;
    }
    Ok(())
}

/// Inserts a new promotion with zero usage.
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn insert(
    db: &impl ConnectionTrait,
    id: Uuid,
    def: &PromotionDefinition,
    now: DateTime<Utc>,
) -> AppResult<Promotion> {
    let mut row = to_row(id, def, now);
    row.created_at = Set(now);
    row.redemption_count = Set(0);
    row.discount_total = Set(0);
    let row = row.insert(db).await?;
    insert_children(db, id, def).await?;
    Ok(Promotion {
        id,
        definition: def.clone(),
        redemption_count: row.redemption_count,
        discount_total: row.discount_total,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}

/// Replaces the whole definition; usage and creation time are kept.
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn replace(
    db: &impl ConnectionTrait,
    id: Uuid,
    def: &PromotionDefinition,
    now: DateTime<Utc>,
) -> AppResult<Option<Promotion>> {
    let Some(existing) = promotion::Entity::find_by_id(id).lock_exclusive().one(db).await? else {
        return Ok(None);
    };
    let mut row = to_row(id, def, now);
    row.created_at = Set(existing.created_at);
    row.redemption_count = Set(existing.redemption_count);
    row.discount_total = Set(existing.discount_total);
    let row = row.reset_all().update(db).await?;
    promotion_target::Entity::delete_many()
        .filter(promotion_target::Column::PromotionId.eq(id))
        .exec(db)
        .await?;
    promotion_tier::Entity::delete_many()
        .filter(promotion_tier::Column::PromotionId.eq(id))
        .exec(db)
        .await?;
    insert_children(db, id, def).await?;
    Ok(Some(Promotion {
        id,
        definition: def.clone(),
        redemption_count: row.redemption_count,
        discount_total: row.discount_total,
        created_at: row.created_at,
        updated_at: row.updated_at,
    }))
}

/// Switches a promotion on or off.
#[tracing::instrument(skip_all, fields(promotion.id = %id))]
pub async fn set_active(
    db: &impl ConnectionTrait,
    id: Uuid,
    active: bool,
    now: DateTime<Utc>,
) -> AppResult<Option<Promotion>> {
    let Some(row) = promotion::Entity::find_by_id(id).lock_exclusive().one(db).await? else {
        return Ok(None);
    };
    let mut row = row.into_active_model();
    row.active = Set(active);
    row.updated_at = Set(now);
    row.update(db).await?;
    find(db, id).await
}

/// One promotion by id.
pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Promotion>> {
    Ok(find_many(db, &[id]).await?.pop())
}

/// The promotions of these ids that exist, in no particular order.
pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<Promotion>> {
    let rows = promotion::Entity::find()
        .filter(promotion::Column::Id.is_in(ids.iter().copied()))
        .all(db)
        .await?;
    decode_rows(db, rows).await
}

/// The scope of a promotion, if it exists (cheap check for coupons).
pub async fn scope_of(db: &impl ConnectionTrait, id: Uuid) -> AppResult<Option<Scope>> {
    let code: Option<String> = promotion::Entity::find_by_id(id)
        .select_only()
        .column(promotion::Column::Scope)
        .into_tuple()
        .one(db)
        .await?;
    code.map(|c| decode_scope(id, &c)).transpose()
}

fn decode_scope(id: Uuid, code: &str) -> AppResult<Scope> {
    match code {
        "CATALOG" => Ok(Scope::Catalog),
        "CART" => Ok(Scope::Cart),
        other => Err(AppError::corrupt_row("promotions", id, format!("scope {other:?}"))),
    }
}

/// Switched on and inside the own window at the instant bound as `$1`.
const IN_WINDOW: &str =
    "promotions.active AND COALESCE(promotions.starts_at <= $1, true) AND COALESCE(promotions.ends_at > $1, true)";

/// SQL for the derived status at a bound instant (see [`PromotionStatus::derive`]).
fn status_condition(status: PromotionStatus, now: DateTime<Utc>) -> SimpleExpr {
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
struct Item {
    pairs: Vec<(&'static str, String)>,
    product: Option<String>,
}

impl Item {
    fn of(filter: &PromotionFilter) -> Option<Self> {
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
    fn candidate_ids(&self) -> (String, Vec<Value>) {
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

/// A filtered page, newest first; status is derived at `now`.
#[tracing::instrument(skip_all)]
pub async fn list(
    db: &impl ConnectionTrait,
    filter: &PromotionFilter,
    now: DateTime<Utc>,
    page: PageRequest,
) -> AppResult<Page<Promotion>> {
    use promotion::Column;
    let item = Item::of(filter);
    let only_item = filter.campaign_id.is_none()
        && filter.scope.is_none()
        && filter.status.is_none()
        && filter.active_at.is_none()
        && filter.name_contains.is_none();
    let page = match item {
        // The catalog's hot question ("what can discount this item?") never
        // touches the promotions table until the page's own rows.
        Some(item) if only_item => {
            page::fetch_by_ids::<promotion::Entity, _>(db, item.candidate_ids(), Column::Id, page).await?
        }
        item => {
            let mut select = promotion::Entity::find();
            if let Some(campaign) = filter.campaign_id {
                select = select.filter(Column::CampaignId.eq(campaign));
            }
            if let Some(scope) = filter.scope {
                select = select.filter(Column::Scope.eq(scope_code(scope)));
            }
            if let Some(status) = filter.status {
                select = select.filter(status_condition(status, now));
            }
            if let Some(at) = filter.active_at {
                select = select.filter(Expr::cust_with_values(IN_WINDOW, [at]));
            }
            if let Some(text) = &filter.name_contains {
                select = select.filter(Expr::cust_with_values(
                    "promotions.name ILIKE $1",
                    [super::like_pattern(text)],
                ));
            }
            if let Some(item) = item {
                let (sql, values) = item.candidate_ids();
                select = select.filter(Expr::cust_with_values(format!("promotions.id IN ({sql})"), values));
            }
            page::fetch(db, select, Column::Id, page).await?
        }
    };
    let items = decode_rows(db, page.items).await?;
    Ok(Page {
        items,
        has_next_page: page.has_next_page,
        total_count: page.total_count,
    })
}

/// Decodes rows, loading their targets and tiers in two queries.
async fn decode_rows(db: &impl ConnectionTrait, rows: Vec<promotion::Model>) -> AppResult<Vec<Promotion>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let (targets, tiers) = tokio::try_join!(
        promotion_target::Entity::find()
            .filter(promotion_target::Column::PromotionId.is_in(ids.clone()))
            .all(db),
        promotion_tier::Entity::find()
            .filter(promotion_tier::Column::PromotionId.is_in(ids))
            .all(db),
    )?;
    decode_with(rows, targets, tiers)
}

fn decode_with(
    rows: Vec<promotion::Model>,
    targets: Vec<promotion_target::Model>,
    tiers: Vec<promotion_tier::Model>,
) -> AppResult<Vec<Promotion>> {
    let mut targets_of: HashMap<Uuid, Vec<promotion_target::Model>> = HashMap::new();
    for t in targets {
        targets_of.entry(t.promotion_id).or_default().push(t);
    }
    let mut tiers_of: HashMap<Uuid, Vec<promotion_tier::Model>> = HashMap::new();
    for t in tiers {
        tiers_of.entry(t.promotion_id).or_default().push(t);
    }
    rows.into_iter()
        .map(|row| {
            let targets = targets_of.remove(&row.id).unwrap_or_default();
            let mut tiers = tiers_of.remove(&row.id).unwrap_or_default();
            tiers.sort_by_key(|t| t.threshold);
            decode(row, &targets, &tiers)
        })
        .collect()
}

/// Every promotion that is switched on and not over at `now` (scheduled ones
/// included) and whose campaign, if any, has not ENDED (ENDED is final), for
/// the pricing snapshot. Three statements whatever the count.
#[tracing::instrument(skip_all)]
pub async fn load_live(db: &impl ConnectionTrait, now: DateTime<Utc>) -> AppResult<Vec<Promotion>> {
    const LIVE: &str = "active AND (ends_at IS NULL OR ends_at > $1) AND NOT EXISTS \
         (SELECT 1 FROM campaigns WHERE campaigns.id = promotions.campaign_id AND campaigns.status = 'ENDED')";
    let rows = promotion::Entity::find()
        .filter(Expr::cust_with_values(LIVE, [now]))
        .all(db)
        .await?;
    let of_live = |table: &str| {
        Expr::cust_with_values(
            format!("{table}.promotion_id IN (SELECT id FROM promotions WHERE {LIVE})"),
            [now],
        )
    };
    let targets = promotion_target::Entity::find()
        .filter(of_live("promotion_targets"))
        .all(db)
        .await?;
    let tiers = promotion_tier::Entity::find()
        .filter(of_live("promotion_tiers"))
        .all(db)
        .await?;
    decode_with(rows, targets, tiers)
}

fn decode(
    row: promotion::Model,
    targets: &[promotion_target::Model],
    tiers: &[promotion_tier::Model],
) -> AppResult<Promotion> {
    let id = row.id;
    let corrupt = |why: String| AppError::corrupt_row("promotions", id, why);
    let values = |kind: &str| -> Vec<String> {
        targets
            .iter()
            .filter(|t| t.kind == kind)
            .map(|t| t.value.clone())
            .collect()
    };
    if let Some(unknown) = targets
        .iter()
        .find(|t| !TARGET_KINDS.iter().any(|(a, b)| t.kind == *a || t.kind == *b))
    {
        return Err(corrupt(format!("target kind {:?}", unknown.kind)));
    }
    let need = |name: &str, value: Option<i64>| {
        value.ok_or_else(|| corrupt(format!("{} action without {name}", row.action_kind)))
    };
    let need32 = |name: &str, value: Option<i32>| {
        value.ok_or_else(|| corrupt(format!("{} action without {name}", row.action_kind)))
    };
    let action = match row.action_kind.as_str() {
        "PERCENTAGE_OFF" => ActionDraft::PercentageOff {
            basis_points: need32("basis_points", row.basis_points)?,
            max_discount: row.max_discount,
        },
        "AMOUNT_OFF" => ActionDraft::AmountOff {
            amount: need("amount", row.amount)?,
            per_item: row
                .per_item
                .ok_or_else(|| corrupt("AMOUNT_OFF action without per_item".into()))?,
        },
        "FIXED_PRICE" => ActionDraft::FixedPrice {
            unit_price: need("amount", row.amount)?,
        },
        "BUY_X_GET_Y" => ActionDraft::BuyXGetY {
            buy_quantity: need32("buy_quantity", row.buy_quantity)?,
            get_quantity: need32("get_quantity", row.get_quantity)?,
            basis_points_off: need32("basis_points", row.basis_points)?,
            max_applications: row.max_applications,
            get_target: row.has_get_target.then(|| TargetDraft {
                product_ids: values("GET_PRODUCT"),
                category_ids: values("GET_CATEGORY"),
                brand_ids: values("GET_BRAND"),
                exclude_product_ids: values("GET_EXCLUDE_PRODUCT"),
                min_rating: row.get_min_rating,
            }),
        },
        "TIERED" => ActionDraft::Tiered {
            basis: match row.tier_basis.as_deref() {
                Some("SUBTOTAL") => TierBasis::Subtotal,
                Some("QUANTITY") => TierBasis::Quantity,
                other => return Err(corrupt(format!("tier basis {other:?}"))),
            },
            tiers: tiers
                .iter()
                .map(|t| TierDraft {
                    threshold: t.threshold,
                    basis_points_off: t.basis_points_off,
                    amount_off: t.amount_off,
                })
                .collect(),
        },
        "FREE_SHIPPING" => ActionDraft::FreeShipping {
            max_discount: row.max_discount,
        },
        other => return Err(corrupt(format!("action kind {other:?}"))),
    };
    let mut conditions = Vec::new();
    if let Some(a) = row.min_subtotal {
        conditions.push(ConditionDraft::MinSubtotal(a));
    }
    if let Some(q) = row.min_quantity {
        conditions.push(ConditionDraft::MinQuantity(q));
    }
    if let Some(r) = row.min_customer_reviews {
        conditions.push(ConditionDraft::MinCustomerReviews(r));
    }
    if row.first_order_only {
        conditions.push(ConditionDraft::FirstOrderOnly(true));
    }
    if let Some(mask) = row.days_of_week {
        let days = DaySet::from_mask("days_of_week", mask).map_err(|e| corrupt(e.message))?;
        conditions.push(ConditionDraft::DaysOfWeek(days.days()));
    }
    let draft = PromotionDraft {
        campaign_id: row.campaign_id,
        name: row.name,
        description: row.description,
        scope: decode_scope(id, &row.scope)?,
        priority: row.priority,
        stackable: row.stackable,
        stop_further_rules: row.stop_further_rules,
        requires_coupon: row.requires_coupon,
        active: row.active,
        starts_at: row.starts_at,
        ends_at: row.ends_at,
        currency: row.currency,
        total_usage_limit: row.total_usage_limit,
        usage_limit_per_customer: row.usage_limit_per_customer,
        customer_segments: row.customer_segments,
        target: TargetDraft {
            product_ids: values("PRODUCT"),
            category_ids: values("CATEGORY"),
            brand_ids: values("BRAND"),
            exclude_product_ids: values("EXCLUDE_PRODUCT"),
            min_rating: row.min_rating,
        },
        conditions,
        action,
    };
    let definition = PromotionDefinition::new(&draft).map_err(|e| corrupt(format!("{}: {}", e.field, e.message)))?;
    Ok(Promotion {
        id,
        definition,
        redemption_count: row.redemption_count,
        discount_total: row.discount_total,
        created_at: row.created_at,
        updated_at: row.updated_at,
    })
}
