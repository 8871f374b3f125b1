//! `OutboxEvent`, for operators watching the relay.

use async_graphql::{Context, Enum, ID, Object};
use chrono::{DateTime, Utc};

use crate::auth::Caller;
use crate::outbox::events;
use crate::store::outbox::OutboxEvent;

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "crate::store::outbox::OutboxStatus")]
pub enum OutboxStatus {
    Pending,
    Published,
    Dead,
}

/// An event row of the transactional outbox.
pub struct OutboxEventObject(pub OutboxEvent);

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
    /// The event's JSON payload as text. Coupon codes in it (a coupon
    /// event's `code`, a redemption's `couponCode`s) are shown to admins
    /// only; other roles read `<redacted>`.
    async fn payload(&self, ctx: &Context<'_>) -> String {
        if ctx.data_opt::<Caller>().is_some_and(Caller::sees_coupon_codes) {
            self.0.payload.to_string()
        } else {
            events::without_coupon_codes(self.0.payload.clone()).to_string()
        }
    }
    async fn status(&self) -> OutboxStatus {
        self.0.status.into()
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
