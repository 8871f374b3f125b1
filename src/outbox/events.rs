//! The events, typed: their names ([`EventType`]), the aggregate each
//! belongs to, the envelope the stream carries ([`Envelope`]) and the
//! payloads of the events consumers compute with ([`RedemptionCreated`],
//! [`RedemptionReleased`], [`CouponBatchFinished`], [`Expiry`]); the
//! campaign, promotion and coupon events carry the aggregate as the admin
//! API returned it. Every writer, the relay, the live
//! feed and the subscriptions use these types; no event name is written
//! anywhere else. `docs/events.md` is the schema consumers code against.
//!
//! Versioning: the envelope carries `version` ([`VERSION`]). Fields are only
//! ever added within a version; a change that removes or retypes one is a
//! new version, and the relay keeps writing what the stored rows hold.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The envelope's version.
pub const VERSION: u32 = 1;

/// What a coupon code reads as to a caller who may not see it (no code
/// holds `<`).
pub const REDACTED_CODE: &str = "<redacted>";

/// `payload` with every coupon code in it replaced by [`REDACTED_CODE`]:
/// the `code` of a coupon event and of a coupon's expiry, the `couponCode`
/// of each promotion of a redemption (codes are bearer secrets, listed to
/// admins only). A code that is null stays null.
pub fn without_coupon_codes(mut payload: serde_json::Value) -> serde_json::Value {
    redact_codes(&mut payload);
    payload
}

fn redact_codes(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                match field {
                    Value::String(code) if key == "code" || key == "couponCode" => *code = REDACTED_CODE.to_owned(),
                    _ => redact_codes(field),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_codes),
        _ => {}
    }
}

/// What an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Campaign,
    Promotion,
    Coupon,
    CouponBatch,
    Redemption,
}

impl Aggregate {
    /// Its name in `aggregate_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Campaign => "campaign",
            Aggregate::Promotion => "promotion",
            Aggregate::Coupon => "coupon",
            Aggregate::CouponBatch => "coupon_batch",
            Aggregate::Redemption => "redemption",
        }
    }
}

/// Every event the service publishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    CampaignCreated,
    CampaignUpdated,
    CampaignStatusChanged,
    PromotionCreated,
    PromotionUpdated,
    PromotionActivated,
    PromotionDeactivated,
    PromotionExpired,
    CouponCreated,
    CouponUpdated,
    CouponActivated,
    CouponDeactivated,
    CouponExpired,
    CouponBatchCompleted,
    CouponBatchFailed,
    RedemptionCreated,
    RedemptionReleased,
}

impl EventType {
    /// Every event type.
    pub const ALL: [EventType; 17] = [
        EventType::CampaignCreated,
        EventType::CampaignUpdated,
        EventType::CampaignStatusChanged,
        EventType::PromotionCreated,
        EventType::PromotionUpdated,
        EventType::PromotionActivated,
        EventType::PromotionDeactivated,
        EventType::PromotionExpired,
        EventType::CouponCreated,
        EventType::CouponUpdated,
        EventType::CouponActivated,
        EventType::CouponDeactivated,
        EventType::CouponExpired,
        EventType::CouponBatchCompleted,
        EventType::CouponBatchFailed,
        EventType::RedemptionCreated,
        EventType::RedemptionReleased,
    ];

    /// Its dotted name, as the stream and the outbox rows hold it.
    pub fn name(self) -> &'static str {
        match self {
            EventType::CampaignCreated => "campaign.created",
            EventType::CampaignUpdated => "campaign.updated",
            EventType::CampaignStatusChanged => "campaign.status_changed",
            EventType::PromotionCreated => "promotion.created",
            EventType::PromotionUpdated => "promotion.updated",
            EventType::PromotionActivated => "promotion.activated",
            EventType::PromotionDeactivated => "promotion.deactivated",
            EventType::PromotionExpired => "promotion.expired",
            EventType::CouponCreated => "coupon.created",
            EventType::CouponUpdated => "coupon.updated",
            EventType::CouponActivated => "coupon.activated",
            EventType::CouponDeactivated => "coupon.deactivated",
            EventType::CouponExpired => "coupon.expired",
            EventType::CouponBatchCompleted => "coupon_batch.completed",
            EventType::CouponBatchFailed => "coupon_batch.failed",
            EventType::RedemptionCreated => "redemption.created",
            EventType::RedemptionReleased => "redemption.released",
        }
    }

    /// The event type of a dotted name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    /// The aggregate it is about.
    pub fn aggregate(self) -> Aggregate {
        use EventType::*;
        match self {
            CampaignCreated | CampaignUpdated | CampaignStatusChanged => Aggregate::Campaign,
            PromotionCreated | PromotionUpdated | PromotionActivated | PromotionDeactivated | PromotionExpired => {
                Aggregate::Promotion
            }
            CouponCreated | CouponUpdated | CouponActivated | CouponDeactivated | CouponExpired => Aggregate::Coupon,
            CouponBatchCompleted | CouponBatchFailed => Aggregate::CouponBatch,
            RedemptionCreated | RedemptionReleased => Aggregate::Redemption,
        }
    }
}

/// One stream entry's `event` field.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Envelope {
    /// The outbox row's id: consumers deduplicate by it.
    pub id: String,
    /// [`VERSION`] when written; absent in entries written before versions.
    #[serde(default)]
    pub version: Option<u32>,
    /// [`EventType::name`].
    #[serde(rename = "type")]
    pub event_type: String,
    /// [`Aggregate::as_str`].
    pub aggregate_type: String,
    /// The campaign, promotion, coupon, batch or order id.
    pub aggregate_id: String,
    /// RFC 3339, microseconds, UTC: when the change committed its row.
    pub occurred_at: String,
    pub payload: serde_json::Value,
}

/// `redemption.created`: an order got its promotions.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedemptionCreated {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub currency: String,
    pub discount_total: i64,
    pub promotions: Vec<RedeemedPromotion>,
}

/// One promotion of a `redemption.created`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeemedPromotion {
    pub promotion_id: Uuid,
    /// Null when the promotion belongs to no campaign; absent from
    /// `redemption.released`, which a reader of both sees as null.
    #[serde(default)]
    pub campaign_id: Option<Uuid>,
    pub coupon_code: Option<String>,
    pub amount: i64,
}

/// One promotion of a `redemption.released`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReleasedPromotion {
    pub promotion_id: Uuid,
    pub coupon_code: Option<String>,
    pub amount: i64,
}

/// `redemption.released`: an order's uses were given back.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedemptionReleased {
    pub order_id: String,
    pub customer_id: Option<String>,
    pub discount_total: i64,
    pub promotions: Vec<ReleasedPromotion>,
}

/// The promotions a redemption event changed: what the live usage
/// subscriptions read, from either redemption event.
#[derive(Debug, Clone, Deserialize)]
pub struct RedemptionPromotions {
    pub promotions: Vec<RedeemedPromotion>,
}

/// `coupon_batch.completed` and `coupon_batch.failed`: a batch finished.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CouponBatchFinished {
    pub id: Uuid,
    pub promotion_id: Uuid,
    pub pattern: String,
    pub requested: i32,
    pub generated: i32,
    /// DONE or FAILED.
    pub status: String,
    pub error: Option<String>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// `promotion.expired`, `coupon.expired` and `campaign.status_changed` by
/// the clock: what ended, and when. Only the fields of its aggregate are set.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Expiry {
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_parses_back_from_its_name_and_names_are_distinct() {
        let names: std::collections::HashSet<&str> = EventType::ALL.iter().map(|t| t.name()).collect();
        assert_eq!(names.len(), EventType::ALL.len());
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.name()), Some(t));
            assert!(t.name().starts_with(t.aggregate().as_str()), "{}", t.name());
        }
        assert_eq!(EventType::parse("redemption.unknown"), None);
    }

    #[test]
    fn coupon_codes_are_redacted_and_nothing_else_changes() {
        let redemption = serde_json::to_value(RedemptionCreated {
            order_id: "order-1".into(),
            customer_id: Some("code".into()),
            currency: "EUR".into(),
            discount_total: 300,
            promotions: vec![
                RedeemedPromotion {
                    promotion_id: Uuid::nil(),
                    campaign_id: None,
                    coupon_code: Some("SAVE-10".into()),
                    amount: 100,
                },
                RedeemedPromotion {
                    promotion_id: Uuid::max(),
                    campaign_id: None,
                    coupon_code: None,
                    amount: 200,
                },
            ],
        })
        .unwrap();
        let mut expected = redemption.clone();
        expected["promotions"][0]["couponCode"] = REDACTED_CODE.into();
        assert_eq!(without_coupon_codes(redemption), expected);

        let expiry = serde_json::to_value(Expiry {
            id: Uuid::nil(),
            name: None,
            code: Some("SUMMER".into()),
            promotion_id: Some(Uuid::max()),
            status: None,
            ends_at: None,
            expires_at: None,
        })
        .unwrap();
        assert_eq!(without_coupon_codes(expiry.clone())["code"], REDACTED_CODE);
        assert_eq!(
            without_coupon_codes(expiry.clone())["promotionId"],
            expiry["promotionId"]
        );
    }
}
