//! The transactional outbox: [`enqueue`] writes an event row inside the
//! caller's transaction, so the event exists exactly when the change does.
//! [`relay`] publishes the rows to the event stream.

pub mod relay;

use chrono::{DateTime, Utc};
use sea_orm::{ActiveModelTrait, ActiveValue::NotSet, ActiveValue::Set, ConnectionTrait};
use serde::Serialize;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::store::entities::outbox_event;

/// An event to record with a change.
#[derive(Debug, Clone)]
pub struct Event {
    /// Dotted name, e.g. `promotion.created`.
    pub event_type: &'static str,
    /// `campaign`, `promotion`, `coupon`, `coupon_batch` or `redemption`.
    pub aggregate_type: &'static str,
    /// Id of what changed (an order id for redemptions).
    pub aggregate_id: String,
    /// The event's JSON payload.
    pub payload: serde_json::Value,
}

impl Event {
    /// An event whose payload is `payload` serialised.
    pub fn new(
        event_type: &'static str,
        aggregate_type: &'static str,
        aggregate_id: impl ToString,
        payload: &impl Serialize,
    ) -> AppResult<Self> {
        let payload =
            serde_json::to_value(payload).map_err(|e| AppError::Internal(format!("{event_type} payload: {e}")))?;
        Ok(Self {
            event_type,
            aggregate_type,
            aggregate_id: aggregate_id.to_string(),
            payload,
        })
    }
}

/// Writes `event` as a PENDING row in the caller's transaction; returns its id.
#[tracing::instrument(skip_all, fields(event.type = event.event_type, aggregate.id = %event.aggregate_id))]
pub async fn enqueue(db: &impl ConnectionTrait, event: Event, now: DateTime<Utc>) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    outbox_event::ActiveModel {
        id: Set(id),
        seq: NotSet,
        aggregate_type: Set(event.aggregate_type.to_owned()),
        aggregate_id: Set(event.aggregate_id),
        event_type: Set(event.event_type.to_owned()),
        payload: Set(event.payload),
        status: Set("PENDING".to_owned()),
        attempts: Set(0),
        last_error: Set(None),
        created_at: Set(now),
        published_at: Set(None),
        next_attempt_at: Set(Some(now)),
    }
    .insert(db)
    .await?;
    relay::notify(db).await?;
    Ok(id)
}
