//! `outbox_events`.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// Creation order; assigned by the database (identity column).
    pub seq: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: Json,
    pub status: OutboxStatus,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub published_at: Option<DateTimeUtc>,
    pub next_attempt_at: Option<DateTimeUtc>,
}

/// Where a row is in its publication; decoded here, once (an unknown
/// stored value is a decoding error, never a default).
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "Text")]
pub enum OutboxStatus {
    /// Waiting for the relay (or for its retry).
    #[sea_orm(string_value = "PENDING")]
    Pending,
    /// On the stream.
    #[sea_orm(string_value = "PUBLISHED")]
    Published,
    /// Failed OUTBOX_MAX_ATTEMPTS times while the stream worked.
    #[sea_orm(string_value = "DEAD")]
    Dead,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
