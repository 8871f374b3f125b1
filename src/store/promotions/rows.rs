//! How a promotion is written and read back: its row's typed columns,
//! its normalised target and tier rows, and the decoding that goes back
//! through [`PromotionDefinition::new`] (a row that breaks a rule is
//! reported, naming it).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::SimpleExpr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryResult, QueryTrait,
    Select,
};
use uuid::Uuid;

use crate::domain::promotion::{
    Action, ActionDraft, ConditionDraft, DaySet, Promotion, PromotionDefinition, PromotionDraft, Scope, TargetDraft,
    TierBasis, TierDiscount, TierDraft,
};
use crate::error::{AppError, AppResult};
use crate::store::entities::{promotion, promotion_target, promotion_tier};

pub(super) const TARGET_KINDS: [(&str, &str); 4] = [
    ("PRODUCT", "GET_PRODUCT"),
    ("CATEGORY", "GET_CATEGORY"),
    ("BRAND", "GET_BRAND"),
    ("EXCLUDE_PRODUCT", "GET_EXCLUDE_PRODUCT"),
];

pub(super) fn scope_code(scope: Scope) -> &'static str {
    match scope {
        Scope::Catalog => "CATALOG",
        Scope::Cart => "CART",
    }
}

pub(super) fn basis_code(basis: TierBasis) -> &'static str {
    match basis {
        TierBasis::Subtotal => "SUBTOTAL",
        TierBasis::Quantity => "QUANTITY",
    }
}

/// The row (without usage and timestamps) of a definition.
pub(super) fn to_row(id: Uuid, def: &PromotionDefinition, now: DateTime<Utc>) -> promotion::ActiveModel {
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
        customer_segments: Set(def.customer_segments.to_vec()),
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

pub(super) fn target_rows(id: Uuid, def: &PromotionDefinition) -> Vec<promotion_target::ActiveModel> {
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

pub(super) fn tier_rows(id: Uuid, def: &PromotionDefinition) -> Vec<promotion_tier::ActiveModel> {
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

pub(super) fn decode_scope(id: Uuid, code: &str) -> AppResult<Scope> {
    match code {
        "CATALOG" => Ok(Scope::Catalog),
        "CART" => Ok(Scope::Cart),
        other => Err(AppError::corrupt_row("promotions", id, format!("scope {other:?}"))),
    }
}

/// Target and tier rows as PostgreSQL answered.
struct Children {
    targets: Vec<QueryResult>,
    tiers: Vec<QueryResult>,
}

/// A `promotions` row from PostgreSQL's answer as it came, by column name:
/// for the snapshot's reads (a full load reads every row), where SeaORM's
/// conversion (which formats an error for each NULL column, then drops it)
/// costs more than the query.
pub(super) fn model_of(row: &QueryResult) -> AppResult<promotion::Model> {
    use sea_orm::sqlx::Row;
    let row = row
        .try_as_pg_row()
        .ok_or_else(|| AppError::internal("a promotions row that is not PostgreSQL's"))?;
    let model = (|| -> Result<promotion::Model, sea_orm::sqlx::Error> {
        Ok(promotion::Model {
            id: row.try_get("id")?,
            campaign_id: row.try_get("campaign_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            scope: row.try_get("scope")?,
            priority: row.try_get("priority")?,
            stackable: row.try_get("stackable")?,
            stop_further_rules: row.try_get("stop_further_rules")?,
            requires_coupon: row.try_get("requires_coupon")?,
            active: row.try_get("active")?,
            starts_at: row.try_get("starts_at")?,
            ends_at: row.try_get("ends_at")?,
            currency: row.try_get("currency")?,
            total_usage_limit: row.try_get("total_usage_limit")?,
            usage_limit_per_customer: row.try_get("usage_limit_per_customer")?,
            customer_segments: row.try_get("customer_segments")?,
            targeted: row.try_get("targeted")?,
            min_rating: row.try_get("min_rating")?,
            min_subtotal: row.try_get("min_subtotal")?,
            min_quantity: row.try_get("min_quantity")?,
            min_customer_reviews: row.try_get("min_customer_reviews")?,
            first_order_only: row.try_get("first_order_only")?,
            days_of_week: row.try_get("days_of_week")?,
            action_kind: row.try_get("action_kind")?,
            basis_points: row.try_get("basis_points")?,
            amount: row.try_get("amount")?,
            per_item: row.try_get("per_item")?,
            max_discount: row.try_get("max_discount")?,
            buy_quantity: row.try_get("buy_quantity")?,
            get_quantity: row.try_get("get_quantity")?,
            max_applications: row.try_get("max_applications")?,
            has_get_target: row.try_get("has_get_target")?,
            get_min_rating: row.try_get("get_min_rating")?,
            tier_basis: row.try_get("tier_basis")?,
            redemption_count: row.try_get("redemption_count")?,
            discount_total: row.try_get("discount_total")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
        })
    })();
    model.map_err(|e| AppError::internal_from("a promotions row does not read", e))
}

/// Decodes rows, loading their targets and tiers in two queries.
pub(super) async fn decode_rows(db: &impl ConnectionTrait, rows: Vec<promotion::Model>) -> AppResult<Vec<Promotion>> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let targets = promotion_target::Column::PromotionId.is_in(ids.clone());
    let children = read_children(db, targets, promotion_tier::Column::PromotionId.is_in(ids)).await?;
    decode_with(rows, children)
}

/// Decodes a page of rows in id order after `after`, reading their targets
/// and tiers in two range scans (cheaper than a list of thousands of ids;
/// those of promotions not in the page are dropped when decoding).
pub(super) async fn decode_page(
    db: &impl ConnectionTrait,
    rows: Vec<promotion::Model>,
    after: Option<Uuid>,
) -> AppResult<Vec<Promotion>> {
    let Some(last) = rows.last().map(|row| row.id) else {
        return Ok(Vec::new());
    };
    let first = after.unwrap_or(Uuid::nil());
    let targets = promotion_target::Column::PromotionId.between(first, last);
    let children = read_children(db, targets, promotion_tier::Column::PromotionId.between(first, last)).await?;
    decode_with(rows, children)
}

async fn read_children(db: &impl ConnectionTrait, targets: SimpleExpr, tiers: SimpleExpr) -> AppResult<Children> {
    let (targets, tiers) = tokio::try_join!(
        raw_rows(db, promotion_target::Entity::find().filter(targets)),
        raw_rows(db, promotion_tier::Entity::find().filter(tiers)),
    )?;
    Ok(Children { targets, tiers })
}

/// The rows `select` finds, as PostgreSQL answered (for [`model_of`] and
/// the children's conversion).
pub(super) async fn raw_rows<E: EntityTrait>(
    db: &impl ConnectionTrait,
    select: Select<E>,
) -> AppResult<Vec<QueryResult>> {
    Ok(db.query_all_raw(select.build(db.get_database_backend())).await?)
}

fn decode_with(rows: Vec<promotion::Model>, children: Children) -> AppResult<Vec<Promotion>> {
    let mut targets_of: HashMap<Uuid, Vec<promotion_target::Model>> = HashMap::new();
    for t in &children.targets {
        let t = promotion_target::Model::from_query_result(t, "")?;
        targets_of.entry(t.promotion_id).or_default().push(t);
    }
    let mut tiers_of: HashMap<Uuid, Vec<promotion_tier::Model>> = HashMap::new();
    for t in &children.tiers {
        let t = promotion_tier::Model::from_query_result(t, "")?;
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

pub(super) fn decode(
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
