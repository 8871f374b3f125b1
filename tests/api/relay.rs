//! The outbox relay: events reach the Redis Stream as envelopes, once each,
//! in commit order per aggregate whatever fails; an outage of the stream
//! spends no attempts; a refused row holds back its aggregate only, turns
//! DEAD, and retryOutboxEvents publishes it, then the rows behind it.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use promotions::outbox::events::Envelope;
use promotions::outbox::relay::{EventSink, Outage, RelayConfig, StreamSink, Written};
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
async fn a_stream_outage_spends_no_attempts_and_every_event_arrives_in_order_after_it() {
    let mut redis = OwnRedis::start().await;
    let app = spawn_app_with(Some(&redis.url()), |c| {
        c.run_workers = true;
        // Before, a row spent its attempts on the outage: DEAD within a second.
        c.outbox_max_attempts = 2;
        c.outbox_retry_base_ms = 50;
    })
    .await;
    let key = format!("{}promotions:events", app.redis_key_prefix);
    redis.stop();
    let campaign = app.create_campaign(json!({ "name": "Stuck" })).await;
    for name in ["Stuck 2", "Stuck 3"] {
        app.data(
            "mutation($id: ID!, $n: String!) { updateCampaign(id: $id, input: { name: $n }) { id } }",
            json!({ "id": campaign, "n": name }),
        )
        .await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let waiting = rows(&app, "SELECT status, attempts FROM outbox_events").await;
    assert_eq!(waiting.len(), 3);
    for r in &waiting {
        assert_eq!(
            (
                r.try_get::<String>("", "status").unwrap(),
                r.try_get::<i32>("", "attempts").unwrap()
            ),
            ("PENDING".to_owned(), 0),
            "an outage spends no attempt"
        );
    }
    let (_, health) = app.get_json("/health/detailed").await;
    let relay = health["workers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "outbox-relay")
        .cloned();
    assert!(
        relay.is_some_and(|w| w.to_string().contains("stream")),
        "the relay reports the outage: {health}"
    );

    redis.restart().await;
    until("published after the outage", Duration::from_secs(40), async || {
        stream(&redis.url(), &key).await.len() == 3
    })
    .await;
    let names: Vec<Value> = stream(&redis.url(), &key)
        .await
        .iter()
        .map(|e| e["payload"]["name"].clone())
        .collect();
    assert_eq!(
        names,
        [json!("Stuck"), json!("Stuck 2"), json!("Stuck 3")],
        "in commit order"
    );
}

/// The event stream, except that entries whose payload has `"poison": true`
/// are refused while `poisoned` is set, and every write is an outage while
/// `down` is set: failures injected around the real client.
struct Injecting {
    inner: StreamSink,
    poisoned: AtomicBool,
    down: AtomicBool,
}

impl EventSink for Injecting {
    async fn write(&self, envelopes: &[Envelope]) -> Result<Written, Outage> {
        if self.down.load(Ordering::SeqCst) {
            return Err(Outage("injected outage".into()));
        }
        let refused = |e: &Envelope| self.poisoned.load(Ordering::SeqCst) && e.payload["poison"] == true;
        let passing: Vec<Envelope> = envelopes.iter().filter(|e| !refused(e)).cloned().collect();
        let mut written = self.inner.write(&passing).await?.into_iter();
        Ok(envelopes
            .iter()
            .map(|e| {
                if refused(e) {
                    Err("injected refusal".to_owned())
                } else {
                    written.next().expect("one answer per entry")
                }
            })
            .collect())
    }
}

#[tokio::test]
async fn a_refused_row_holds_back_its_aggregate_only_and_retry_publishes_in_order() {
    let app = spawn_app().await;
    // a2 is refused; a3 must wait behind it; b goes on.
    app.db
        .execute_unprepared(
            "INSERT INTO outbox_events (id, aggregate_type, aggregate_id, event_type, payload)
             SELECT gen_random_uuid(), 'test', agg, 'test.event', jsonb_build_object('n', n, 'poison', agg = 'a' AND n = 2)
             FROM (VALUES ('a', 1), ('b', 1), ('a', 2), ('b', 2), ('a', 3), ('b', 3)) AS v(agg, n)",
        )
        .await
        .unwrap();
    let key = format!("{}promotions:events", app.redis_key_prefix);
    let redis = redis_connection(&app.redis_url).await;
    let config = RelayConfig {
        stream: key.clone(),
        maxlen: 1_000_000,
        max_attempts: 3,
        retry_base: Duration::from_millis(50),
        wait_replicas: None,
        wait_timeout: Duration::from_secs(1),
    };
    let sink = Arc::new(Injecting {
        inner: StreamSink::new(redis, config.clone()),
        poisoned: AtomicBool::new(true),
        down: AtomicBool::new(true),
    });
    let relays = Supervisor::new(Default::default());
    relays.spawn(Relay::with_sink(app.db.clone(), sink.clone(), config));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        rows(
            &app,
            "SELECT 1 FROM outbox_events WHERE attempts > 0 OR status <> 'PENDING'"
        )
        .await
        .is_empty(),
        "an outage changes no row"
    );
    sink.down.store(false, Ordering::SeqCst);

    let status = async |agg: &str, n: i64| -> (String, i32) {
        let r = &rows(
            &app,
            &format!(
                "SELECT status, attempts FROM outbox_events WHERE aggregate_id = '{agg}' AND (payload->>'n')::int = {n}"
            ),
        )
        .await[0];
        (r.try_get("", "status").unwrap(), r.try_get("", "attempts").unwrap())
    };
    until("a2 DEAD", Duration::from_secs(10), async || {
        status("a", 2).await.0 == "DEAD"
    })
    .await;
    assert_eq!(
        status("a", 2).await,
        ("DEAD".to_owned(), 3),
        "a refused row spends its attempts"
    );
    assert_eq!(status("a", 3).await, ("PENDING".to_owned(), 0), "held back, not tried");
    let order = async || -> Vec<String> {
        stream(&app.redis_url, &key)
            .await
            .iter()
            .map(|e| format!("{}{}", e["aggregate_id"].as_str().unwrap(), e["payload"]["n"]))
            .collect()
    };
    until("b through", Duration::from_secs(5), async || order().await.len() == 4).await;
    let seen = order().await;
    assert_eq!(seen.iter().filter(|e| e.starts_with('a')).collect::<Vec<_>>(), ["a1"]);
    assert_eq!(
        seen.iter().filter(|e| e.starts_with('b')).collect::<Vec<_>>(),
        ["b1", "b2", "b3"]
    );

    sink.poisoned.store(false, Ordering::SeqCst);
    let retried = app.data("mutation { retryOutboxEvents }", json!({})).await;
    assert_eq!(retried["retryOutboxEvents"], 1);
    until("a2 and a3 through", Duration::from_secs(5), async || {
        order().await.len() == 6
    })
    .await;
    relays.shutdown().await;
    let seen = order().await;
    assert_eq!(
        seen.iter().filter(|e| e.starts_with('a')).collect::<Vec<_>>(),
        ["a1", "a2", "a3"],
        "the stream's order per aggregate is commit order"
    );
    assert_eq!(
        app.data("mutation { retryOutboxEvents }", json!({})).await["retryOutboxEvents"],
        0
    );
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
        wait_replicas: None,
        wait_timeout: Duration::from_secs(1),
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
