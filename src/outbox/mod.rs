//! The transactional outbox: [`enqueue`] writes an event row inside the
//! caller's transaction, so the event exists exactly when the change does.
//! [`relay`] publishes the rows to the event stream; [`Bell`] wakes it
//! after the checkout's commits.

mod bell;
pub mod events;
pub mod relay;

pub use bell::Bell;
pub use events::EventType;

use chrono::{DateTime, Utc};
use sea_orm::ConnectionTrait;
use serde::Serialize;
use uuid::Uuid;

use crate::error::{AppError, AppResult};
use crate::store::outbox::{self, NewEvent};

/// An event to record with a change.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened; its aggregate follows from it.
    pub event_type: EventType,
    /// Id of what changed (an order id for redemptions).
    pub aggregate_id: String,
    /// The event's JSON payload.
    pub payload: serde_json::Value,
}

impl Event {
    /// An event whose payload is `payload` serialised.
    pub fn new(event_type: EventType, aggregate_id: impl ToString, payload: &impl Serialize) -> AppResult<Self> {
        let payload = serde_json::to_value(payload)
            .map_err(|e| AppError::internal_from(format!("{} payload", event_type.name()), e))?;
        Ok(Self {
            event_type,
            aggregate_id: aggregate_id.to_string(),
            payload,
        })
    }

    /// The row that records this event as `id`, created `now`.
    pub fn row(&self, id: Uuid, now: DateTime<Utc>) -> NewEvent<'_> {
        NewEvent {
            id,
            aggregate_type: self.event_type.aggregate().as_str(),
            aggregate_id: &self.aggregate_id,
            event_type: self.event_type.name(),
            payload: &self.payload,
            created_at: now,
        }
    }
}

/// Writes `event` as a PENDING row in the caller's transaction and wakes
/// the relays at commit (NOTIFY); returns its id. One statement. A
/// notifying commit takes PostgreSQL's notification lock, so such commits
/// run one at a time: right for admin writes, not for the checkout, which
/// uses [`record`] and rings the [`Bell`] after its commit.
#[tracing::instrument(skip_all, fields(event.type = event.event_type.name(), aggregate.id = %event.aggregate_id))]
pub async fn enqueue(db: &impl ConnectionTrait, event: Event, now: DateTime<Utc>) -> AppResult<Uuid> {
    insert(db, event, now, true).await
}

/// Writes `event` as a PENDING row in the caller's transaction, waking no
/// relay: ring the [`Bell`] once the transaction has committed.
#[tracing::instrument(skip_all, fields(event.type = event.event_type.name(), aggregate.id = %event.aggregate_id))]
pub async fn record(db: &impl ConnectionTrait, event: Event, now: DateTime<Utc>) -> AppResult<Uuid> {
    insert(db, event, now, false).await
}

async fn insert(db: &impl ConnectionTrait, event: Event, now: DateTime<Utc>, notify: bool) -> AppResult<Uuid> {
    let id = Uuid::now_v7();
    outbox::insert(db, &event.row(id, now), notify).await?;
    Ok(id)
}
