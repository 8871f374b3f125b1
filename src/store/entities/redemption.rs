//! `redemptions`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "redemptions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub order_id: String,
    pub customer_id: Option<String>,
    pub status: String,
    pub currency: String,
    pub discount_total: i64,
    pub cart_hash: String,
    pub result: Json,
    pub created_at: DateTimeUtc,
    pub released_at: Option<DateTimeUtc>,
    /// The token subject that applied it (None: recorded before owners were).
    pub client_subject: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
