//! Expiry and retention with controlled time: no sleeping through real minutes.

use chrono::{Duration, Utc};
use promotions::expiry::{self, Expired};
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde_json::json;

use crate::helpers::{promotion_input, spawn_app};

#[tokio::test]
async fn windows_that_close_are_announced_once_and_campaigns_end() {
    let app = spawn_app().await;
    let now = Utc::now();
    let at = |h: i64| (now + Duration::minutes(h * 60)).to_rfc3339();
    let campaign = app.create_campaign(json!({ "name": "Weekend", "endsAt": at(3) })).await;
    app.data(
        "mutation($id: ID!) { setCampaignStatus(id: $id, status: ACTIVE) { id } }",
        json!({ "id": campaign }),
    )
    .await;
    let promotion = app.create_promotion(promotion_input(json!({ "endsAt": at(1) }))).await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "LATE-EXPIRY", "expiresAt": at(2) }))
        .await;

    assert_eq!(expiry::expire(&app.db, now).await.unwrap(), Expired::default());
    let later = now + Duration::minutes(90);
    assert_eq!(
        expiry::expire(&app.db, later).await.unwrap(),
        Expired {
            promotions: 1,
            coupons: 0,
            campaigns: 0
        }
    );
    assert_eq!(
        expiry::expire(&app.db, later).await.unwrap(),
        Expired::default(),
        "announced once"
    );
    let much_later = now + Duration::hours(4);
    assert_eq!(
        expiry::expire(&app.db, much_later).await.unwrap(),
        Expired {
            promotions: 0,
            coupons: 1,
            campaigns: 1
        }
    );

    let events: Vec<(String, String)> = app.outbox().await.into_iter().map(|(t, _, id)| (t, id)).collect();
    assert!(events.contains(&("promotion.expired".into(), promotion.clone())));
    assert_eq!(events.iter().filter(|(t, _)| t == "promotion.expired").count(), 1);
    assert_eq!(events.iter().filter(|(t, _)| t == "coupon.expired").count(), 1);
    assert_eq!(
        events.last().unwrap(),
        &("campaign.status_changed".to_owned(), campaign.clone())
    );
    let status = app
        .data(
            "query($id: ID!) { campaign(id: $id) { status } }",
            json!({ "id": campaign }),
        )
        .await;
    assert_eq!(status["campaign"]["status"], "ENDED");
}

#[tokio::test]
async fn published_events_older_than_the_retention_are_deleted_and_nothing_else() {
    let app = spawn_app().await;
    for i in 0..3 {
        app.create_campaign(json!({ "name": format!("c{i}") })).await;
    }
    app.db
        .execute_unprepared(
            "UPDATE outbox_events SET status = 'PUBLISHED', published_at = now() - interval '10 days'
             WHERE seq = (SELECT min(seq) FROM outbox_events);
             UPDATE outbox_events SET status = 'PUBLISHED', published_at = now() - interval '1 day'
             WHERE seq = (SELECT max(seq) FROM outbox_events)",
        )
        .await
        .unwrap();
    let deleted = expiry::prune_outbox(&app.db, Utc::now() - Duration::days(7))
        .await
        .unwrap();
    assert_eq!(deleted, 1);
    let left = app
        .db
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT status FROM outbox_events ORDER BY seq",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "status").unwrap())
        .collect::<Vec<_>>();
    assert_eq!(left, vec!["PENDING", "PUBLISHED"], "pending and recent rows stay");
}

#[tokio::test]
async fn a_window_reopened_after_its_expiry_is_announced_again_when_it_closes() {
    let app = spawn_app().await;
    let now = Utc::now();
    let at = |minutes: i64| (now + Duration::minutes(minutes)).to_rfc3339();
    let input = |ends: String| promotion_input(json!({ "startsAt": at(-120), "endsAt": ends }));
    let promotion = app.create_promotion(input(at(-60))).await;
    app.create_coupon(json!({ "promotionId": promotion, "code": "REOPENED", "expiresAt": at(-30) }))
        .await;
    let both = Expired {
        promotions: 1,
        coupons: 1,
        campaigns: 0,
    };
    assert_eq!(expiry::expire(&app.db, now).await.unwrap(), both);

    // Both windows are extended past now: their expiry is due again at the new end.
    let extended = app
        .graphql(
            "mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }",
            json!({ "id": promotion, "i": input(at(60)) }),
        )
        .await;
    assert!(extended.get("errors").is_none(), "{extended}");
    let extended = app
        .graphql(
            "mutation($at: DateTime!) { updateCoupon(code: \"REOPENED\", input: { expiresAt: $at }) { code } }",
            json!({ "at": at(90) }),
        )
        .await;
    assert!(extended.get("errors").is_none(), "{extended}");
    assert_eq!(
        expiry::expire(&app.db, now + Duration::minutes(1)).await.unwrap(),
        Expired::default(),
        "open again"
    );
    assert_eq!(
        expiry::expire(&app.db, now + Duration::minutes(120)).await.unwrap(),
        both,
        "announced again when the new windows close"
    );
    let events = app.outbox().await;
    assert_eq!(events.iter().filter(|(t, ..)| t == "promotion.expired").count(), 2);
    assert_eq!(events.iter().filter(|(t, ..)| t == "coupon.expired").count(), 2);

    // A change that leaves the window closed (a past end moved) is not a reopening.
    app.graphql(
        "mutation($id: ID!, $i: PromotionInput!) { updatePromotion(id: $id, input: $i) { id } }",
        json!({ "id": promotion, "i": input(at(-10)) }),
    )
    .await;
    assert_eq!(
        expiry::expire(&app.db, now + Duration::minutes(180)).await.unwrap(),
        Expired::default()
    );
}
