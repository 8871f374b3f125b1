//! The live event feed of one process: one task reads the event stream
//! (`XREAD BLOCK` on a connection of its own, to a node or a cluster) and broadcasts each envelope
//! to this process's subscriptions. Every replica reads the same stream, so
//! a dashboard on any replica sees every redemption.

use std::time::Duration;

use tokio::sync::broadcast;

use crate::outbox::events::Envelope;
use crate::redis_conn::RedisTarget;

/// Events buffered per subscriber; a slower one skips what it missed.
const CAPACITY: usize = 1024;

/// The feed: subscribe to receive envelopes from now on.
#[derive(Clone)]
pub struct Feed {
    sender: broadcast::Sender<Envelope>,
}

impl Feed {
    /// Starts reading `stream` at its end (new events only; when Redis does
    /// not answer at first, at this process's start time, so what was
    /// published before the feed connected is not skipped). After an
    /// outage it resumes after the last entry it read.
    pub fn start(target: RedisTarget, stream: String) -> Self {
        let (sender, _) = broadcast::channel(CAPACITY);
        let feed = Feed { sender: sender.clone() };
        tokio::spawn(read(target, stream, sender));
        feed
    }

    /// A receiver of the events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Envelope> {
        self.sender.subscribe()
    }
}

type Entries = Vec<(String, Vec<(String, Vec<String>)>)>;

async fn read(target: RedisTarget, stream: String, sender: broadcast::Sender<Envelope>) {
    let mut last = "$".to_owned();
    let mut connection = None;
    // Where to start when Redis was away at start-up: the entries added
    // since this process started (stream ids are milliseconds).
    let started = chrono::Utc::now().timestamp_millis();
    // An outage is logged once as a warning, then at debug until it ends.
    let mut away = false;
    loop {
        if connection.is_none() {
            // Its own connection, allowed to wait longer than one blocking read.
            match target.connect_dedicated(Duration::from_secs(5)).await {
                Ok(mut c) => {
                    if last == "$" {
                        // Start after the newest entry, so no gap opens between reads.
                        let newest: redis::RedisResult<Vec<(String, Vec<String>)>> = redis::cmd("XREVRANGE")
                            .arg(&stream)
                            .arg("+")
                            .arg("-")
                            .arg("COUNT")
                            .arg(1)
                            .query_async(&mut c)
                            .await;
                        last = match newest {
                            Ok(entries) => entries.first().map_or_else(|| "0-0".to_owned(), |(id, _)| id.clone()),
                            Err(_) => "$".to_owned(),
                        };
                    }
                    connection = Some(c);
                    if std::mem::take(&mut away) {
                        tracing::info!("event feed reaches Redis again");
                    }
                }
                Err(e) => {
                    if last == "$" {
                        last = format!("{started}-0");
                    }
                    if std::mem::replace(&mut away, true) {
                        tracing::debug!(error = %e, "event feed cannot reach Redis; retrying");
                    } else {
                        tracing::warn!(error = %e, "event feed cannot reach Redis; retrying");
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            }
        }
        let Some(conn) = connection.as_mut() else { continue };
        let reply: redis::RedisResult<Option<Entries>> = redis::cmd("XREAD")
            .arg("BLOCK")
            .arg(1000)
            .arg("COUNT")
            .arg(500)
            .arg("STREAMS")
            .arg(&stream)
            .arg(&last)
            .query_async(conn)
            .await;
        match reply {
            Ok(Some(streams)) => {
                for (_, entries) in streams {
                    for (id, fields) in entries {
                        last = id;
                        if let Some(json) = fields.chunks(2).find(|f| f[0] == "event").and_then(|f| f.get(1))
                            && let Ok(envelope) = serde_json::from_str::<Envelope>(json)
                        {
                            let _ = sender.send(envelope);
                        }
                    }
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "event feed read failed; reconnecting");
                connection = None;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}
