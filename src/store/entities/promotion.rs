//! `promotions`: the definition in typed columns (see the migration).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "promotions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub campaign_id: Option<Uuid>,
    pub name: String,
    pub description: Option<String>,
    pub scope: String,
    pub priority: i32,
    pub stackable: bool,
    pub stop_further_rules: bool,
    pub requires_coupon: bool,
    pub active: bool,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    pub currency: Option<String>,
    pub total_usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub customer_segments: Vec<String>,
    pub targeted: bool,
    pub min_rating: Option<f64>,
    pub min_subtotal: Option<i64>,
    pub min_quantity: Option<i32>,
    pub min_customer_reviews: Option<i32>,
    pub first_order_only: bool,
    pub days_of_week: Option<i16>,
    pub action_kind: String,
    pub basis_points: Option<i32>,
    pub amount: Option<i64>,
    pub per_item: Option<bool>,
    pub max_discount: Option<i64>,
    pub buy_quantity: Option<i32>,
    pub get_quantity: Option<i32>,
    pub max_applications: Option<i32>,
    pub has_get_target: bool,
    pub get_min_rating: Option<f64>,
    pub tier_basis: Option<String>,
    pub redemption_count: i32,
    pub discount_total: i64,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
