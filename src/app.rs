//! The composition root: builds the state, the schema and the router,
//! binds the listener, starts the workers, and serves until a shutdown
//! signal. Nothing imports this module but the binary and the tests.

use std::net::SocketAddr;

use axum::serve::ListenerExt;
use tokio::net::{TcpListener, TcpStream};

use crate::auth::{TokenSettings, Verifier};
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
    /// The operations listener (OPS_LISTEN_ADDR), when set: its router and address.
    ops: Option<(TcpListener, axum::Router)>,
    /// Where the operations endpoints are served, when on a port of their own.
    pub ops_addr: Option<SocketAddr>,
    /// The shared state (tests use its pool).
    pub state: AppState,
    closing: tokio::sync::watch::Sender<bool>,
}

impl App {
    /// Connects the stores, applies migrations unless `migrate` is false,
    /// builds the schema and router, and binds the listener.
    pub async fn build(config: Config, serve: ServeConfig, migrate: bool) -> Result<Self, StartError> {
        crate::telemetry::install_tls_provider();
        let public_key_pem = serve
            .jwt_public_key_file
            .as_ref()
            .map(|path| {
                std::fs::read(path).map_err(|e| StartError::Auth(format!("cannot read {}: {e}", path.display())))
            })
            .transpose()?;
        let verifier = Verifier::new(TokenSettings {
            secret: serve.jwt_secret.clone(),
            public_key_pem,
            jwks_url: serve.jwt_jwks_url.clone(),
            issuer: serve.jwt_issuer.clone(),
            audience: serve.jwt_audience.clone(),
            role_claim: serve.jwt_role_claim.clone(),
        })
        .map_err(StartError::Auth)?;
        verifier.warm_up().await;
        let state = AppState::connect(config, migrate).await?;
        let stream = format!("{}{}", state.config.redis_key_prefix, state.config.events_stream);
        let schema = graphql::build(
            state.clone(),
            Feed::start(state.redis_target.clone(), stream),
            serve.introspection,
        );
        let (closing, closing_rx) = tokio::sync::watch::channel(false);
        let router = http::router(state.clone(), schema, &serve, verifier, closing_rx);
        let (listener, addr) = bind(serve.listen).await?;
        let (ops, ops_addr) = match serve.ops_listen {
            Some(ops_listen) => {
                let (listener, bound) = bind(ops_listen).await?;
                (Some((listener, http::health::operations(state.clone()))), Some(bound))
            }
            None => (None, None),
        };
        if state.config.run_workers {
            state.workers.start_optional(&state.db, &state.redis, &state.config);
        }
        Ok(Self {
            listener,
            router,
            addr,
            ops,
            ops_addr,
            state,
            closing,
        })
    }

    /// Serves until `shutdown` completes, drains in-flight requests, then
    /// stops the workers (each finishes its current batch).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
        let closing = self.closing;
        let mut closed = closing.subscribe();
        let shutdown = async move {
            shutdown.await;
            // Subscriptions end and close their sockets; HTTP requests drain.
            let _ = closing.send(true);
        };
        let ops = self.ops.map(|(listener, router)| {
            tokio::spawn(async move {
                let stop = async move {
                    let _ = closed.wait_for(|closed| *closed).await;
                };
                axum::serve(listener.tap_io(send_at_once), router)
                    .with_graceful_shutdown(stop)
                    .await
            })
        });
        let served = axum::serve(self.listener.tap_io(send_at_once), self.router)
            .with_graceful_shutdown(shutdown)
            .await;
        if let Some(ops) = ops {
            match ops.await {
                Ok(Err(e)) => tracing::warn!(error = %e, "the operations listener failed"),
                Err(e) => tracing::warn!(error = %e, "the operations listener panicked"),
                Ok(Ok(())) => {}
            }
        }
        self.state.workers.shutdown().await;
        served
    }
}

/// Accepted sockets send at once (`TCP_NODELAY`): a response or a
/// subscription message written while an earlier one is unacknowledged
/// must not wait for the client's delayed ACK.
fn send_at_once(socket: &mut TcpStream) {
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!(error = %e, "TCP_NODELAY could not be set on an accepted socket");
    }
}

/// Binds `addr`; its actual address (port 0 picks one).
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), StartError> {
    let listen_error = |source| StartError::Listen { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(listen_error)?;
    let bound = listener.local_addr().map_err(listen_error)?;
    Ok((listener, bound))
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
