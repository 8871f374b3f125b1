//! The composition root: builds the state, the schema and the router,
//! binds the listener, starts the workers, and serves until a shutdown
//! signal. Nothing imports this module but the binary and the tests.

use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::auth::Verifier;
use crate::config::{Config, ServeConfig};
use crate::graphql::feed::Feed;
use crate::state::{AppState, StartError};
use crate::{graphql, http};

/// A started application: listening, not yet serving.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// The shared state (tests use its pool).
    pub state: AppState,
    closing: tokio::sync::watch::Sender<bool>,
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
        let stream = format!("{}{}", state.config.redis_key_prefix, state.config.events_stream);
        let schema = graphql::build(
            state.clone(),
            Feed::start(state.redis_target.clone(), stream),
            serve.introspection,
        );
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let router = http::router(state.clone(), schema, &serve, verifier, closing_rx);
        let listen_error = |source| StartError::Listen {
            addr: serve.listen,
            source,
        };
        let listener = TcpListener::bind(serve.listen).await.map_err(listen_error)?;
        let addr = listener.local_addr().map_err(listen_error)?;
        if state.config.run_workers {
            state.workers.start_optional(&state.db, &state.redis, &state.config);
        }
        Ok(Self {
            listener,
            router,
            addr,
            state,
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
        self.state.workers.shutdown().await;
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
