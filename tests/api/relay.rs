//! The outbox relay: events reach the Redis Stream as envelopes, once each,
//! in creation order; an unreachable stream backs off until DEAD, and
//! retryOutboxEvent publishes the row once the stream is back.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use promotions::outbox::relay::RelayConfig;
use promotions::workers::Supervisor;
use promotions::workers::relay::Relay;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};

use crate::helpers::{Binary, OwnRedis, graphql_at, redis_connection, rows, spawn_app, spawn_app_with, until};

async fn stream(redis_url: &str, key: &str) -> Vec<Value> {
    let mut conn = redis_connection(redis_url).await;
    let entries: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(key)
        .arg("-")
        .arg("+")
        .query_async(&mut conn)
        .await
        .unwrap();
    entries
        .iter()
        .map(|(_, fields)| {
            assert_eq!(fields.len(), 2, "one field per entry");
            assert_eq!(fields[0], "event");
            serde_json::from_str(&fields[1]).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn a_committed_change_reaches_the_stream_as_one_envelope() {
    let app = spawn_app_with(None, |c| c.run_workers = true).await;
    let key = format!("{}promotions:events", app.redis_key_prefix);
    let campaign = app.create_campaign(json!({ "name": "Streamed" })).await;
    until("published", Duration::from_secs(3), async || {
        stream(&app.redis_url, &key).await.len() == 1
    })
    .await;
    let events = stream(&app.redis_url, &key).await;
    let event = &events[0];
    // The row turns PUBLISHED when the relay commits, just after its XADD.
    until("marked published", Duration::from_secs(3), async || {
        rows(&app, "SELECT 1 FROM outbox_events WHERE status = 'PUBLISHED'")
            .await
            .len()
            == 1
    })
    .await;
    let row = &rows(&app, "SELECT id::text AS id, status FROM outbox_events").await[0];
    assert_eq!(event["id"], row.try_get::<String>("", "id").unwrap());
    assert_eq!(event["type"], "campaign.created");
    assert_eq!(event["aggregate_type"], "campaign");
    assert_eq!(event["aggregate_id"], campaign);
    assert_eq!(event["payload"]["name"], "Streamed");
    assert!(chrono::DateTime::parse_from_rfc3339(event["occurred_at"].as_str().unwrap()).is_ok());
    assert_eq!(row.try_get::<String>("", "status").unwrap(), "PUBLISHED");
    let listed = app
        .data(
            "{ outboxEvents(status: PUBLISHED) { totalCount edges { node { eventType attempts publishedAt } } } }",
            json!({}),
        )
        .await;
    assert_eq!(listed["outboxEvents"]["totalCount"], 1);
    assert_eq!(listed["outboxEvents"]["edges"][0]["node"]["attempts"], 1);
}

#[tokio::test]
async fn an_unreachable_stream_backs_off_turns_dead_and_retry_publishes_once() {
    let mut redis = OwnRedis::start().await;
    let app = spawn_app_with(Some(&redis.url()), |c| {
        c.run_workers = true;
        c.outbox_max_attempts = 4;
        c.outbox_retry_base_ms = 100;
    })
    .await;
    let key = format!("{}promotions:events", app.redis_key_prefix);
    redis.stop();
    app.create_campaign(json!({ "name": "Stuck" })).await;
    let mut seen: Vec<(i32, chrono::DateTime<chrono::Utc>)> = Vec::new();
    until("DEAD", Duration::from_secs(10), async || {
        let r = &rows(
            &app,
            "SELECT attempts, status, next_attempt_at, last_error FROM outbox_events",
        )
        .await[0];
        let attempts: i32 = r.try_get("", "attempts").unwrap();
        if let Ok(Some(next)) = r.try_get::<Option<chrono::DateTime<chrono::Utc>>>("", "next_attempt_at")
            && seen.last().is_none_or(|(a, _)| *a != attempts)
        {
            seen.push((attempts, next));
        }
        r.try_get::<String>("", "status").unwrap() == "DEAD"
    })
    .await;
    let r = &rows(&app, "SELECT id::text AS id, attempts, last_error FROM outbox_events").await[0];
    assert_eq!(r.try_get::<i32>("", "attempts").unwrap(), 4);
    assert!(r.try_get::<Option<String>>("", "last_error").unwrap().is_some());
    // The waits grow: each scheduled attempt is further away than the last.
    assert!(seen.len() >= 2, "{seen:?}");

    redis.restart().await;
    let id = r.try_get::<String>("", "id").unwrap();
    let dead = app
        .data("{ outboxEvents(status: DEAD) { totalCount } }", json!({}))
        .await;
    assert_eq!(dead["outboxEvents"]["totalCount"], 1);
    let retried = app
        .data(
            "mutation($id: ID!) { retryOutboxEvent(id: $id) { status attempts } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(
        retried["retryOutboxEvent"],
        json!({ "status": "PENDING", "attempts": 0 })
    );
    until("published after the retry", Duration::from_secs(5), async || {
        stream(&redis.url(), &key).await.len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(stream(&redis.url(), &key).await.len(), 1, "published once");
    let (code, _) = app
        .error(
            "mutation($id: ID!) { retryOutboxEvent(id: $id) { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "CONFLICT", "only DEAD events are retried");
}

#[tokio::test]
async fn two_relays_drain_ten_thousand_events_once_each_in_order_per_aggregate() {
    let app = spawn_app().await;
    app.db
        .execute_unprepared(
            "INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, payload)
             SELECT gen_random_uuid(), 'test', 'agg-' || (i % 100), 'test.event', jsonb_build_object('n', i)
             FROM generate_series(1, 10000) AS i",
        )
        .await
        .unwrap();
    let key = format!("{}promotions:events", app.redis_key_prefix);
    let config = RelayConfig {
        stream: key.clone(),
        maxlen: 1_000_000,
        max_attempts: 10,
        retry_base: Duration::from_millis(100),
    };
    let relays = Supervisor::new(Default::default());
    for _ in 0..2 {
        let conn = redis_connection(&app.redis_url).await;
        relays.spawn(Relay::new(app.db.clone(), conn, config.clone()));
    }
    until("drained", Duration::from_secs(60), async || {
        let r = &rows(
            &app,
            "SELECT count(*) AS n FROM outbox_events WHERE status <> 'PUBLISHED'",
        )
        .await[0];
        r.try_get::<i64>("", "n").unwrap() == 0
    })
    .await;
    relays.shutdown().await;
    let events = stream(&app.redis_url, &key).await;
    assert_eq!(events.len(), 10_000);
    let ids: HashSet<&str> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 10_000, "no event twice");
    let mut last: HashMap<&str, i64> = HashMap::new();
    for e in &events {
        let n = e["payload"]["n"].as_i64().unwrap();
        let previous = last.insert(e["aggregate_id"].as_str().unwrap(), n);
        assert!(previous.is_none_or(|p| p < n), "out of order for {}", e["aggregate_id"]);
    }
}

#[tokio::test]
async fn an_event_committed_before_a_sigkill_is_published_exactly_once_after_the_restart() {
    let database_url = crate::helpers::fresh_database_url().await;
    let (port, prefix) = (crate::helpers::free_port(), crate::helpers::fresh_prefix());
    let key = format!("{prefix}promotions:events");
    let first = Binary::start(&database_url, &prefix, port, false, &[]).await;
    let created = graphql_at(
        port,
        "mutation { createCampaign(input: {name: \"Survives\"}) { id } }",
        json!({}),
        None,
    )
    .await;
    let id = created["data"]["createCampaign"]["id"].as_str().unwrap().to_owned();
    first.kill();
    assert!(
        stream(&crate::helpers::shared_redis_url(), &key).await.is_empty(),
        "nothing was published before the kill"
    );

    let _second = Binary::start(&database_url, &prefix, port, true, &[]).await;
    until("published after the restart", Duration::from_secs(10), async || {
        !stream(&crate::helpers::shared_redis_url(), &key).await.is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let events = stream(&crate::helpers::shared_redis_url(), &key).await;
    assert_eq!(events.len(), 1, "exactly once");
    assert_eq!(events[0]["aggregate_id"], id);
}
