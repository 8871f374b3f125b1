//! `promotion_tiers`: the tiers of a tiered action.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "promotion_tiers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub promotion_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub threshold: i64,
    pub basis_points_off: Option<i32>,
    pub amount_off: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
