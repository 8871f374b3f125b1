//! `coupon_batches`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "coupon_batches")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub promotion_id: Uuid,
    pub pattern: String,
    pub requested: i32,
    pub generated: i32,
    pub status: BatchStatus,
    pub error: Option<String>,
    pub usage_limit: Option<i32>,
    pub usage_limit_per_customer: Option<i32>,
    pub starts_at: Option<DateTimeUtc>,
    pub expires_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
    pub lease_owner: Option<Uuid>,
    pub lease_until: Option<DateTimeUtc>,
}

/// Where a batch is; decoded here, once (an unknown stored value is a
/// decoding error, never a default).
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum BatchStatus {
    /// Waiting for the batch worker.
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// Being generated.
    #[sea_orm(string_value = "RUNNING")]
    Running,
    /// Every code generated.
    #[sea_orm(string_value = "DONE")]
    Done,
    /// Stopped: the pattern's space is exhausted.
    #[sea_orm(string_value = "FAILED")]
    Failed,
}

impl BatchStatus {
    /// Whether the batch will not change any more.
    pub fn is_finished(self) -> bool {
        matches!(self, BatchStatus::Done | BatchStatus::Failed)
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
