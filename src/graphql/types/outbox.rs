//! `OutboxEvent`, for operators watching the relay.

use async_graphql::{Enum, ID, Object, Result};
use chrono::{DateTime, Utc};

use crate::error::AppError;
use crate::store::entities::outbox_event;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    Pending,
    Published,
    Dead,
}

impl OutboxStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxStatus::Pending => "PENDING",
            OutboxStatus::Published => "PUBLISHED",
            OutboxStatus::Dead => "DEAD",
        }
    }
}

/// An event row of the transactional outbox.
pub struct OutboxEventObject(pub outbox_event::Model);

#[Object(name = "OutboxEvent")]
impl OutboxEventObject {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    async fn aggregate_type(&self) -> &str {
        &self.0.aggregate_type
    }
    async fn aggregate_id(&self) -> &str {
        &self.0.aggregate_id
    }
    async fn event_type(&self) -> &str {
        &self.0.event_type
    }
    /// The event's JSON payload as text.
    async fn payload(&self) -> String {
        self.0.payload.to_string()
    }
    async fn status(&self) -> Result<OutboxStatus> {
        Ok(match self.0.status.as_str() {
            "PENDING" => OutboxStatus::Pending,
            "PUBLISHED" => OutboxStatus::Published,
            "DEAD" => OutboxStatus::Dead,
            other => return Err(AppError::corrupt_row("outbox_events", self.0.id, format!("status {other:?}")).into()),
        })
    }
    async fn attempts(&self) -> i32 {
        self.0.attempts
    }
    async fn last_error(&self) -> Option<&str> {
        self.0.last_error.as_deref()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn published_at(&self) -> Option<DateTime<Utc>> {
        self.0.published_at
    }
    async fn next_attempt_at(&self) -> Option<DateTime<Utc>> {
        self.0.next_attempt_at
    }
}
