//! The state every request handler and worker shares, and how it is
//! connected: PostgreSQL (migrated unless told not to), Redis, the pricing
//! snapshot, the redemption use cases, and the workers every pricing
//! process needs. Nothing here serves or starts the optional
//! workers; the composition root ([`crate::app`]) does, and no module
//! imports it.

use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbErr};

use crate::config::Config;
use crate::limits::Counters;
use crate::metrics::Metrics;
use crate::pricing::Pricing;
use crate::redemption::Redemptions;
use crate::redis_conn::{RedisConn, RedisTarget};
use crate::store;
use crate::workers::reconciler::ReconcileUsage;
use crate::workers::snapshot::SnapshotRefresh;
use crate::workers::{Record, Supervisor};

/// What every request handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The PostgreSQL pool.
    pub db: DatabaseConnection,
    /// One multiplexed Redis connection (a node or a cluster), reconnecting by itself.
    pub redis: RedisConn,
    /// Where Redis is, for connections of their own (the live feed).
    pub redis_target: RedisTarget,
    /// The promotion snapshot and cart pricing.
    pub pricing: Arc<Pricing>,
    /// Applying and releasing.
    pub redemptions: Redemptions,
    /// The background workers: their supervisor and record.
    pub workers: Supervisor,
    /// This process's Prometheus metrics, served on `/metrics`.
    pub metrics: Arc<Metrics>,
    /// Settings.
    pub config: Arc<Config>,
}

/// Why the service could not start; each is one line naming the dependency.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// PostgreSQL unreachable or refusing.
    #[error(
        "cannot connect to PostgreSQL at {url}: {source} (set DATABASE_URL, or run `docker compose up -d postgres`)"
    )]
    Postgres { url: String, source: DbErr },
    /// Migrations failed.
    #[error("cannot apply the database migrations: {0}")]
    Migrate(DbErr),
    /// Redis unreachable or refusing.
    #[error("cannot connect to Redis at {url}: {source} (set REDIS_URL, or run `docker compose up -d redis`)")]
    Redis { url: String, source: redis::RedisError },
    /// The first promotion snapshot could not be loaded.
    #[error("cannot load the promotions: {0}")]
    Snapshot(String),
    /// The token settings are unusable.
    #[error("cannot check tokens: {0}")]
    Auth(String),
    /// The listen address is taken or invalid.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Hides the password of a connection URL in messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Connects to PostgreSQL (creating the database if needed), optionally migrates.
pub async fn connect_db(config: &Config, migrate: bool) -> Result<DatabaseConnection, StartError> {
    let db = store::connect(&config.database_url, config.database_max_connections)
        .await
        .map_err(|source| StartError::Postgres {
            url: redact(&config.database_url),
            source,
        })?;
    if migrate {
        store::migrate(&db).await.map_err(StartError::Migrate)?;
    }
    Ok(db)
}

/// Connects to Redis (one node or a cluster, see [`crate::redis_conn`]) and
/// checks it answers. A Redis that does not answer does not stop the
/// service: it starts degraded (PostgreSQL counts every limit) and connects
/// in the background. Only a REDIS_URL that cannot work is refused.
pub async fn connect_redis(config: &Config) -> Result<(RedisTarget, RedisConn), StartError> {
    let connect = async {
        let target = RedisTarget::discover(&config.redis_url).await?;
        let mut connection = target.connect().await?;
        redis::cmd("PING").query_async::<String>(&mut connection).await?;
        Ok((target, connection))
    };
    let failure = match tokio::time::timeout(std::time::Duration::from_secs(10), connect).await {
        Ok(Ok(connected)) => return Ok(connected),
        Ok(Err(e)) if !crate::error::redis_unavailable(&e) => {
            return Err(StartError::Redis {
                url: redact(&config.redis_url),
                source: e,
            });
        }
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 10 s".to_owned(),
    };
    tracing::warn!(
        url = %redact(&config.redis_url),
        error = %failure,
        "Redis does not answer: serving degraded (PostgreSQL counts every limit), connecting in the background"
    );
    Ok(crate::redis_conn::connect_late(&config.redis_url))
}

impl AppState {
    /// Connects PostgreSQL (migrating unless told not to) and Redis, loads the
    /// pricing snapshot and starts the workers every pricing process needs
    /// (usage reconciler, snapshot refresh).
    pub async fn connect(config: Config, migrate: bool) -> Result<Self, StartError> {
        let db = connect_db(&config, migrate).await?;
        let (redis_target, redis) = connect_redis(&config).await?;
        let metrics = Arc::new(Metrics::new());
        let counters = Counters::new(
            redis.clone(),
            &config.redis_key_prefix,
            config.usage_counter_ttl,
            metrics.clone(),
        );
        let pricing = Pricing::start(db.clone(), counters.clone(), config.time_zone)
            .await
            .map_err(|e| StartError::Snapshot(e.into_cause()))?;
        let workers = Supervisor::new(Arc::new(Record::new(&metrics.registry)));
        workers.spawn(ReconcileUsage(db.clone()));
        workers.spawn(SnapshotRefresh::new(pricing.clone()));
        let redemptions = Redemptions {
            db: db.clone(),
            counters,
            pricing: pricing.clone(),
            metrics: metrics.clone(),
            bell: crate::outbox::Bell::start(db.clone()),
        };
        Ok(AppState {
            db,
            redis,
            redis_target,
            pricing,
            redemptions,
            workers,
            metrics,
            config: Arc::new(config),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
