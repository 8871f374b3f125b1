//! The Redis connection: one node or a Redis Cluster behind one type.
//!
//! `REDIS_URL` names one node (`redis://host:6379`) or several, separated
//! by commas. The service asks the first node that answers whether cluster
//! mode is on (`INFO cluster`): if so it uses the redis crate's cluster
//! client (slots, MOVED/ASK, failover handled by the crate), otherwise a
//! reconnecting multiplexed connection to that node. Both are a
//! [`RedisConn`], so every caller runs the same commands and scripts; every
//! script declares its keys, each call's keys share one hash slot.
//!
//! Redis is an accelerator, not a dependency of correctness: a service
//! that starts while Redis does not answer gets a [`Late`] target and
//! connection, which fail every call at once (as unavailable) until a
//! background task has found and connected Redis.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::{ClusterClient, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::io::tcp::TcpSettings;
use redis::{Cmd, IntoConnectionInfo, Pipeline, RedisError, RedisFuture, RedisResult, Value};

/// How long connecting to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a request on the shared connection may wait for its answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

/// Where Redis is: one node, or a cluster reached through its seed nodes.
#[derive(Clone)]
pub enum RedisTarget {
    Node(Box<redis::Client>),
    Cluster(Box<ClusterClient>),
    /// Not found yet: see [`connect_late`].
    Late(Arc<Late>),
}

/// A multiplexed connection to a node or to a cluster; cheap to clone,
/// reconnecting by itself.
#[derive(Clone)]
pub enum RedisConn {
    Node(ConnectionManager),
    Cluster(ClusterConnection),
    /// Not connected yet: see [`connect_late`].
    Late(Arc<Late>),
}

/// Redis as found by a background task after start-up; empty until then.
#[derive(Default)]
pub struct Late(OnceLock<(RedisTarget, RedisConn)>);

impl Late {
    fn get(&self) -> Option<&(RedisTarget, RedisConn)> {
        self.0.get()
    }
}

/// How often the background task tries to find Redis.
const LATE_RETRY: Duration = Duration::from_secs(1);

/// A target and connection that serve once `urls` answers: a task tries
/// to discover and connect every [`LATE_RETRY`]; until it has, every call
/// fails at once as unavailable (`NotConnected`).
pub fn connect_late(urls: &str) -> (RedisTarget, RedisConn) {
    let late = Arc::new(Late::default());
    let urls = urls.to_owned();
    let found = late.clone();
    tokio::spawn(async move {
        loop {
            let attempt = async {
                let target = RedisTarget::discover(&urls).await?;
                let connection = target.connect().await?;
                RedisResult::Ok((target, connection))
            };
            match attempt.await {
                Ok(connected) => {
                    let _ = found.0.set(connected);
                    tracing::info!("Redis answers: connected");
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "Redis does not answer yet"),
            }
            tokio::time::sleep(LATE_RETRY).await;
        }
    });
    (RedisTarget::Late(late.clone()), RedisConn::Late(late))
}

fn not_connected() -> RedisError {
    RedisError::from(std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "Redis has not answered since start-up",
    ))
}

impl RedisTarget {
    /// Reads `urls` (one or more, comma-separated) and asks the first node
    /// that answers whether it runs in cluster mode.
    pub async fn discover(urls: &str) -> RedisResult<Self> {
        let urls: Vec<&str> = urls.split(',').map(str::trim).filter(|u| !u.is_empty()).collect();
        let mut last_error = None;
        for url in &urls {
            let client = redis::Client::open(url.into_connection_info()?.set_tcp_settings(sockets()))?;
            match cluster_enabled(&client).await {
                Ok(false) if urls.len() == 1 => return Ok(RedisTarget::Node(Box::new(client))),
                Ok(false) => {
                    return Err(invalid(
                        "REDIS_URL lists several nodes, but they do not run in cluster mode",
                    ));
                }
                Ok(true) => {
                    let client = ClusterClient::builder(urls.iter().copied())
                        .tcp_settings(sockets())
                        .connection_timeout(CONNECT_TIMEOUT)
                        .response_timeout(RESPONSE_TIMEOUT)
                        .retries(2)
                        .build()?;
                    return Ok(RedisTarget::Cluster(Box::new(client)));
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| invalid("REDIS_URL names no node")))
    }

    /// Whether this is a Redis Cluster (false while not found).
    pub fn is_cluster(&self) -> bool {
        match self {
            RedisTarget::Node(_) => false,
            RedisTarget::Cluster(_) => true,
            RedisTarget::Late(late) => late.get().is_some_and(|(target, _)| target.is_cluster()),
        }
    }

    /// The shared connection: requests answered within [`RESPONSE_TIMEOUT`].
    pub async fn connect(&self) -> RedisResult<RedisConn> {
        self.connect_dedicated(RESPONSE_TIMEOUT).await
    }

    /// A connection of its own whose answers may take up to
    /// `response_timeout` (for blocking reads, `XREAD BLOCK`, which must
    /// not delay the shared one).
    pub async fn connect_dedicated(&self, response_timeout: Duration) -> RedisResult<RedisConn> {
        match self {
            RedisTarget::Node(client) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(1);
                Ok(RedisConn::Node(
                    ConnectionManager::new_with_config((**client).clone(), config).await?,
                ))
            }
            RedisTarget::Cluster(client) => {
                let config = ClusterConfig::new()
                    .set_connection_timeout(CONNECT_TIMEOUT)
                    .set_response_timeout(response_timeout);
                Ok(RedisConn::Cluster(
                    client.get_async_connection_with_config(config).await?,
                ))
            }
            RedisTarget::Late(late) => match late.get() {
                Some((target, _)) => Box::pin(target.connect_dedicated(response_timeout)).await,
                None => Err(not_connected()),
            },
        }
    }
}

impl RedisConn {
    /// Whether this connection is to a Redis Cluster (false while not connected).
    pub fn is_cluster(&self) -> bool {
        match self {
            RedisConn::Node(_) => false,
            RedisConn::Cluster(_) => true,
            RedisConn::Late(late) => late.get().is_some_and(|(_, connection)| connection.is_cluster()),
        }
    }
}

/// One node of a cluster, as the cluster describes it (`CLUSTER NODES`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeState {
    pub id: String,
    pub address: String,
    /// "master" or "replica".
    pub role: &'static str,
    /// Not flagged failing and its link connected.
    pub ok: bool,
}

/// Checks that Redis serves: a node answers PING; a cluster reports
/// `cluster_state:ok` and every master answers PING. Returns the cluster's
/// nodes (none for a single node).
pub async fn check(connection: &RedisConn) -> Result<Vec<NodeState>, String> {
    let mut connection = connection.clone();
    redis::cmd("PING")
        .query_async::<String>(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    if !connection.is_cluster() {
        return Ok(Vec::new());
    }
    let info: String = redis::cmd("CLUSTER")
        .arg("INFO")
        .query_async(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    if !info.lines().any(|line| line.trim() == "cluster_state:ok") {
        return Err("the cluster's state is not ok".into());
    }
    let nodes: String = redis::cmd("CLUSTER")
        .arg("NODES")
        .query_async(&mut connection)
        .await
        .map_err(|e| e.to_string())?;
    Ok(parse_nodes(&nodes))
}

/// Reads `CLUSTER NODES`: `<id> <ip:port@cport> <flags> <master> <ping> <pong> <epoch> <link> <slots>...`.
fn parse_nodes(text: &str) -> Vec<NodeState> {
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (id, address, flags, link) = (fields.first()?, fields.get(1)?, fields.get(2)?, fields.get(7)?);
            let flags: Vec<&str> = flags.split(',').collect();
            Some(NodeState {
                id: (*id).to_owned(),
                address: address.split('@').next().unwrap_or(address).to_owned(),
                role: if flags.contains(&"master") { "master" } else { "replica" },
                ok: !flags.iter().any(|f| f.starts_with("fail")) && *link == "connected",
            })
        })
        .collect()
}

/// Sockets that send at once (`TCP_NODELAY`, as sqlx sets for PostgreSQL):
/// with Nagle's algorithm, a command written while an earlier one is
/// unacknowledged waits for that ACK, up to the server's 40 ms delayed ACK.
fn sockets() -> TcpSettings {
    TcpSettings::default().set_nodelay(true)
}

/// Asks one node whether cluster mode is on.
async fn cluster_enabled(client: &redis::Client) -> RedisResult<bool> {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT));
    let mut connection = client.get_multiplexed_async_connection_with_config(&config).await?;
    let info: String = redis::cmd("INFO").arg("cluster").query_async(&mut connection).await?;
    Ok(info.lines().any(|line| line.trim() == "cluster_enabled:1"))
}

fn invalid(message: &'static str) -> RedisError {
    RedisError::from((redis::ErrorKind::InvalidClientConfig, message))
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisConn::Node(c) => c.req_packed_command(cmd),
            RedisConn::Cluster(c) => c.req_packed_command(cmd),
            RedisConn::Late(late) => {
                let connection = late.get().map(|(_, c)| c.clone());
                Box::pin(async move {
                    match connection {
                        Some(mut c) => c.req_packed_command(cmd).await,
                        None => Err(not_connected()),
                    }
                })
            }
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisConn::Node(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            RedisConn::Late(late) => {
                let connection = late.get().map(|(_, c)| c.clone());
                Box::pin(async move {
                    match connection {
                        Some(mut c) => c.req_packed_commands(pipeline, offset, count).await,
                        None => Err(not_connected()),
                    }
                })
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisConn::Node(c) => c.get_db(),
            RedisConn::Cluster(c) => c.get_db(),
            RedisConn::Late(late) => late.get().map_or(0, |(_, c)| c.get_db()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_nodes_are_read_with_their_role_and_health() {
        let text = "a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460\n\
                    b2 127.0.0.1:7003@17003 slave a1 0 1700000000000 1 connected\n\
                    c3 127.0.0.1:7001@17001 master,fail - 1700000000000 1700000000000 2 disconnected\n";
        let nodes = parse_nodes(text);
        assert_eq!(
            nodes
                .iter()
                .map(|n| (n.id.as_str(), n.address.as_str(), n.role, n.ok))
                .collect::<Vec<_>>(),
            vec![
                ("a1", "127.0.0.1:7000", "master", true),
                ("b2", "127.0.0.1:7003", "replica", true),
                ("c3", "127.0.0.1:7001", "master", false),
            ]
        );
    }
}
