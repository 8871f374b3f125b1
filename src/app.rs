//! The application: shared state, start-up (stores, migrations, schema,
//! router, bound listener) and serving until a shutdown signal.

use std::net::SocketAddr;
use std::sync::Arc;

use sea_orm::{DatabaseConnection, DbErr};
use tokio::net::TcpListener;

use crate::auth::Verifier;
use crate::config::{Config, ServeConfig};
use crate::error::AppError;
use crate::graphql::feed::Feed;
use crate::limits::Counters;
use crate::metrics::Metrics;
use crate::outbox::relay::{self, RelayConfig};
use crate::pricing::Pricing;
use crate::redemption::Redemptions;
use crate::redemption::reconcile::Reconciler;
use crate::workers::Workers;
use crate::{coupon_generator, expiry, graphql, http, store};

/// What every request handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The PostgreSQL pool.
    pub db: DatabaseConnection,
    /// One multiplexed Redis connection, reconnecting by itself.
    pub redis: redis::aio::ConnectionManager,
    /// The promotion snapshot and cart pricing.
    pub pricing: Arc<Pricing>,
    /// Applying and releasing.
    pub redemptions: Redemptions,
    /// The background workers' record (for health).
    pub workers: Arc<Workers>,
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
    Listen { addr: SocketAddr, source: std::io::Error },
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

/// Connects to Redis and checks it answers.
pub async fn connect_redis(config: &Config) -> Result<redis::aio::ConnectionManager, StartError> {
    let err = |source| StartError::Redis {
        url: redact(&config.redis_url),
        source,
    };
    let client = redis::Client::open(config.redis_url.as_str()).map_err(err)?;
    let manager_config = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(std::time::Duration::from_secs(3)))
        .set_response_timeout(Some(std::time::Duration::from_secs(3)))
        .set_number_of_retries(1);
    let fut = redis::aio::ConnectionManager::new_with_config(client, manager_config);
    let mut manager = tokio::time::timeout(std::time::Duration::from_secs(5), fut)
        .await
        .map_err(|_| {
            err(redis::RedisError::from(std::io::Error::from(
                std::io::ErrorKind::TimedOut,
            )))
        })?
        .map_err(err)?;
    redis::cmd("PING")
        .query_async::<String>(&mut manager)
        .await
        .map_err(err)?;
    Ok(manager)
}

/// A started application: listening, not yet serving.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The shared state (tests use its pool).
    pub state: AppState,
    background: Background,
    closing: tokio::sync::watch::Sender<bool>,
}

/// The background workers this process runs, and how to stop them.
pub struct Background {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Background {
    /// No workers.
    pub fn none() -> Self {
        Self {
            stop: tokio::sync::watch::channel(false).0,
            tasks: Vec::new(),
        }
    }

    /// Starts the outbox relay, housekeeping and the coupon generator (the usage reconciler runs with the state).
    pub fn start(state: &AppState) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let config = &state.config;
        let relay = RelayConfig {
            stream: format!("{}{}", config.redis_key_prefix, config.events_stream),
            maxlen: config.events_stream_maxlen,
            max_attempts: config.outbox_max_attempts,
            retry_base: std::time::Duration::from_millis(config.outbox_retry_base_ms),
        };
        let relay = tokio::spawn(relay::run(
            state.db.clone(),
            state.redis.clone(),
            relay,
            state.workers.clone(),
            stopped.clone(),
        ));
        let retention =
            chrono::Duration::hours(i64::try_from(config.outbox_retention_hours).unwrap_or(i64::MAX / 3600));
        let housekeeping = tokio::spawn(housekeeping(
            state.db.clone(),
            retention,
            state.workers.clone(),
            stopped.clone(),
        ));
        let generator = tokio::spawn(coupon_generator::run(
            state.db.clone(),
            std::time::Duration::from_secs(config.coupon_batch_lease_secs),
            state.workers.clone(),
            stopped,
        ));
        Self {
            stop,
            tasks: vec![relay, housekeeping, generator],
        }
    }

    /// Asks every worker to stop and waits for them (each ends its current batch).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// The housekeeping worker: expiry and outbox retention every few seconds.
async fn housekeeping(
    db: sea_orm::DatabaseConnection,
    retention: chrono::Duration,
    workers: Arc<Workers>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    const NAME: &str = "housekeeping";
    workers.started(NAME);
    loop {
        let now = chrono::Utc::now();
        let outcome = async {
            expiry::expire(&db, now).await?;
            expiry::prune_outbox(&db, now - retention).await?;
            Ok::<(), AppError>(())
        }
        .await
        .map_err(|e| e.code().to_string());
        workers.ran(NAME, outcome);
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
            _ = stop.changed() => {
                workers.stopped(NAME);
                return;
            }
        }
    }
}

impl AppState {
    /// Connects PostgreSQL (migrating unless told not to) and Redis, loads the
    /// pricing snapshot and starts the usage reconciler.
    pub async fn connect(config: Config, migrate: bool) -> Result<Self, StartError> {
        let db = connect_db(&config, migrate).await?;
        let redis = connect_redis(&config).await?;
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
        let workers = Arc::new(Workers::new(&metrics.registry));
        let reconciler = Reconciler::start(db.clone(), workers.clone());
        let redemptions = Redemptions {
            db: db.clone(),
            counters,
            pricing: pricing.clone(),
            reconciler,
            metrics: metrics.clone(),
            bell: crate::outbox::Bell::start(db.clone()),
        };
        Ok(AppState {
            db,
            redis,
            pricing,
            redemptions,
            workers,
            metrics,
            config: Arc::new(config),
        })
    }
}

impl App {
    /// Connects the stores, applies migrations unless `migrate` is false,
    /// builds the schema and router, and binds the listener.
    pub async fn build(config: Config, serve: ServeConfig, migrate: bool) -> Result<Self, StartError> {
        let public_key = serve
            .jwt_public_key_file
            .as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|e| StartError::Auth(format!("cannot read {}: {e}", path.display())))
            })
            .transpose()?;
        let verifier = Verifier::new(&serve.jwt_secret, public_key.as_deref()).map_err(StartError::Auth)?;
        let state = AppState::connect(config, migrate).await?;
        let redis_client =
            redis::Client::open(state.config.redis_url.as_str()).map_err(|source| StartError::Redis {
                url: redact(&state.config.redis_url),
                source,
            })?;
        let stream = format!("{}{}", state.config.redis_key_prefix, state.config.events_stream);
        let schema = graphql::build(state.clone(), Feed::start(redis_client, stream), serve.introspection);
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let router = http::router(state.clone(), schema, &serve, verifier, closing_rx);
        let listen_error = |source| StartError::Listen {
            addr: serve.listen,
            source,
        };
        let listener = TcpListener::bind(serve.listen).await.map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        let background = if state.config.run_workers {
            Background::start(&state)
        } else {
            Background::none()
        };
        Ok(Self {
            listener,
            router,
            addr,
            state,
            background,
            closing,
        })
    }

    /// Serves until `shutdown` completes, drains in-flight requests, then
    /// stops the workers (each finishes its current batch).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let closing = self.closing;
        let shutdown = async move {
            shutdown.await;
            // Subscriptions end and close their sockets; HTTP requests drain.
            let _ = closing.send(true);
        };
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        self.background.stop().await;
        served
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received, draining");
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(super::redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(super::redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
    }
}
