//! Configuration from the environment, with defaults that work locally.

use std::net::SocketAddr;

use clap::Args;

/// Settings shared by every subcommand that talks to the stores.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// PostgreSQL; the database is created when missing.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/promotions"
    )]
    pub database_url: String,
    /// Redis: one node, or any node(s) of a Redis Cluster (comma-separated);
    /// cluster mode is detected.
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    /// Prefix of every Redis key this service writes (several services or
    /// tests can share one Redis). No braces: they would choose the keys'
    /// Redis Cluster slot.
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "", value_parser = without_braces)]
    pub redis_key_prefix: String,
    /// How long Redis keeps a usage pool's count before seeding it anew from
    /// PostgreSQL: the longest a reservation never recorded (a crash) stays counted.
    #[arg(long, env = "USAGE_COUNTER_TTL", default_value = "60s", value_parser = humantime::parse_duration)]
    pub usage_counter_ttl: std::time::Duration,
    /// Time zone of daysOfWeek conditions (IANA name).
    #[arg(long, env = "PROMOTIONS_TIME_ZONE", default_value = "UTC", value_parser = parse_time_zone)]
    pub time_zone: chrono_tz::Tz,
    /// Run the background workers (outbox relay, reconciliation) in this process.
    #[arg(long, env = "RUN_WORKERS", default_value_t = true, action = clap::ArgAction::Set)]
    pub run_workers: bool,
    /// Event stream name, after REDIS_KEY_PREFIX (no braces).
    #[arg(long, env = "EVENTS_STREAM", default_value = "promotions:events", value_parser = without_braces)]
    pub events_stream: String,
    /// Approximate most entries the event stream keeps (XADD MAXLEN ~).
    #[arg(long, env = "EVENTS_STREAM_MAXLEN", default_value_t = 1_000_000)]
    pub events_stream_maxlen: usize,
    /// Replicas that must acknowledge (WAIT) an event's stream entry before
    /// its outbox row is PUBLISHED. Unset: 0 on a single node, 1 on a Redis
    /// Cluster (set 0 for a cluster without replicas).
    #[arg(long, env = "EVENTS_WAIT_REPLICAS")]
    pub events_wait_replicas: Option<u32>,
    /// How long the relay waits for those acknowledgements, in milliseconds.
    #[arg(long, env = "EVENTS_WAIT_TIMEOUT_MS", default_value_t = 1000)]
    pub events_wait_timeout_ms: u64,
    /// Publishing attempts before an outbox event is DEAD.
    #[arg(long, env = "OUTBOX_MAX_ATTEMPTS", default_value_t = 10)]
    pub outbox_max_attempts: i32,
    /// First retry delay of a failed publish, in milliseconds (doubles each attempt, capped at 5 minutes).
    #[arg(long, env = "OUTBOX_RETRY_BASE_MS", default_value_t = 1000)]
    pub outbox_retry_base_ms: u64,
    /// Published outbox rows are deleted after this many hours.
    #[arg(long, env = "OUTBOX_RETENTION_HOURS", default_value_t = 168)]
    pub outbox_retention_hours: u64,
    /// Record HTTP and GraphQL request metrics (false only to measure their cost).
    #[arg(long, env = "METRICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub metrics: bool,
    /// How long a coupon batch job stays with a worker that stopped answering.
    #[arg(long, env = "COUPON_BATCH_LEASE_SECS", default_value_t = 30)]
    pub coupon_batch_lease_secs: u64,
    /// Largest PostgreSQL connection pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 20)]
    pub database_max_connections: u32,
}

/// Settings of the HTTP server.
impl Config {
    /// Every setting at its documented default, ignoring the environment,
    /// then on this database and Redis (with this key prefix): what the
    /// tests start from, so that a default changes in one place.
    pub fn for_tests(database_url: &str, redis_url: &str, redis_key_prefix: &str) -> Self {
        use clap::FromArgMatches;
        let command = Config::augment_args(clap::Command::new("for-tests")).mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from(["for-tests"])
            .expect("every setting of Config has a default");
        let mut config = Config::from_arg_matches(&matches).expect("the defaults parse");
        config.database_url = database_url.to_owned();
        config.redis_url = redis_url.to_owned();
        config.redis_key_prefix = redis_key_prefix.to_owned();
        config
    }
}

#[derive(Debug, Clone, Args)]
pub struct ServeConfig {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "LISTEN_ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the operations endpoints (`/metrics`, `/health/detailed`),
    /// kept off the public port; unset: they are on LISTEN_ADDR.
    #[arg(long, env = "OPS_LISTEN_ADDR")]
    pub ops_listen: Option<SocketAddr>,
    /// Serve the GraphiQL page on GET /graphql.
    #[arg(long, env = "GRAPHIQL", default_value_t = true, action = clap::ArgAction::Set)]
    pub graphiql: bool,
    /// Largest request body, in bytes.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,
    /// HS256 key of the bearer tokens (at least 16 characters); unset:
    /// HS256 tokens are refused (an identity provider is the one trust root).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM file of an RSA public key: RS256 tokens are accepted too.
    #[arg(long, env = "JWT_PUBLIC_KEY_FILE")]
    pub jwt_public_key_file: Option<std::path::PathBuf>,
    /// An identity provider's JWKS URL: its RS/PS/ES keys, chosen by `kid`.
    #[arg(long, env = "JWT_JWKS_URL")]
    pub jwt_jwks_url: Option<String>,
    /// Required `iss` of every token.
    #[arg(long, env = "JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of every token (one of its audiences).
    #[arg(long, env = "JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// The claim holding the role (a dotted path reaches into objects).
    #[arg(long, env = "JWT_ROLE_CLAIM", default_value = "role")]
    pub jwt_role_claim: String,
    /// How long a subscription socket may wait before its connection_init.
    #[arg(long, env = "WS_INIT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub ws_init_timeout: std::time::Duration,
    /// Answer introspection queries.
    #[arg(long, env = "INTROSPECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub introspection: bool,
    /// GraphQL requests per second per client (token subject); 0: no limit.
    #[arg(long, env = "RATE_LIMIT_PER_SECOND", default_value_t = 500)]
    pub rate_limit_per_second: u32,
    /// Roles refused (UNAVAILABLE) while Redis cannot count the rate limit;
    /// the others are let through. Comma-separated: admin, checkout, viewer.
    #[arg(
        long,
        env = "RATE_LIMIT_FAIL_CLOSED",
        value_delimiter = ',',
        default_value = "admin,viewer",
        value_parser = role_name
    )]
    pub rate_limit_fail_closed: Vec<String>,
    /// Open subscription sockets at most.
    #[arg(long, env = "MAX_WS_CONNECTIONS", default_value_t = 1_000)]
    pub max_ws_connections: usize,
    /// Subscriptions one socket may hold at once.
    #[arg(long, env = "MAX_SUBSCRIPTIONS_PER_SOCKET", default_value_t = 20)]
    pub max_subscriptions_per_socket: usize,
}

/// A Redis key part: braces would make a hash tag and move keys between
/// Redis Cluster slots.
fn without_braces(value: &str) -> Result<String, String> {
    if value.contains(['{', '}']) {
        return Err("must not contain { or }".into());
    }
    Ok(value.to_owned())
}

/// A role's name, as tokens carry it.
fn role_name(value: &str) -> Result<String, String> {
    match value.trim() {
        name @ ("admin" | "checkout" | "viewer") => Ok(name.to_owned()),
        other => Err(format!("{other:?} is not a role (admin, checkout or viewer)")),
    }
}

fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    name.parse()
        .map_err(|_| format!("unknown time zone {name:?} (use an IANA name such as Europe/Paris)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_settings_are_the_documented_defaults_on_the_given_stores() {
        let config = Config::for_tests("postgres://db", "redis://r", "p:");
        assert_eq!(
            (config.database_url.as_str(), config.redis_url.as_str()),
            ("postgres://db", "redis://r")
        );
        assert_eq!(config.redis_key_prefix, "p:");
        assert_eq!(config.database_max_connections, 20);
        assert!(config.run_workers && config.metrics);
        assert_eq!(config.usage_counter_ttl, std::time::Duration::from_secs(60));
        assert_eq!(config.events_stream, "promotions:events");
    }
}
