//! Logging: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` gives one
//! JSON object a line for machines, anything else a readable format.

use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber; call once, first thing in `main`.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let registry = tracing_subscriber::registry().with(filter);
    if json {
        registry.with(fmt::layer().json().with_current_span(true)).init();
    } else {
        registry.with(fmt::layer()).init();
    }
}
