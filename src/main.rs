//! The `promotions` binary: a thin CLI over the library.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use promotions::app::{self, App};
use promotions::auth::{self, Role};
use promotions::config::{Config, ServeConfig};
use promotions::state::{self, AppState};
use promotions::{demo, graphql, telemetry};

// GraphQL requests allocate many small values; glibc malloc was a quarter of
// the CPU profile of previewPromotions (perf), mimalloc far less. Built with
// `no_thp`: asked for transparent huge pages, it had the kernel zero 2 MB on
// the first touch of each 64 KiB page, a third of the start-up load's CPU
// (perf) and 15 MB more resident at rest.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps freed memory before it gives it back to the
/// system. Its default, 1000 ms, kept what a load of the snapshot freed:
/// at 100,000 promotions the start-up peaked at 1.15x the steady resident
/// memory and a reload at 1.24x, and the steady memory itself held 6 MB
/// more; at 10 ms (mimalloc 2's default), 1.03x and 1.11x. Set
/// `MIMALLOC_PURGE_DELAY` to choose another.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// `mi_option_purge_delay`, which libmimalloc-sys does not name: its place
/// in mimalloc 3's `mi_option_t` (a test checks it holds the default, 1000).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Sets [`PURGE_DELAY_MS`] unless the environment chose one. Called before
/// any other thread starts (mimalloc's options are not set thread-safely).
#[allow(unsafe_code)]
fn set_purge_delay() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets an integer option of the allocator; no other thread
        // runs yet, and mimalloc reads the option on each purge.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

#[derive(Parser)]
#[command(
    name = "promotions",
    version,
    about = "Campaigns, promotions and coupons for the checkout"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serves the GraphQL API (applies pending migrations first).
    Serve {
        #[command(flatten)]
        config: Config,
        #[command(flatten)]
        serve: Box<ServeConfig>,
        /// Do not apply pending migrations.
        #[arg(long)]
        no_migrate: bool,
        /// Seed the demo data (idempotent) before serving.
        #[arg(long)]
        seed_demo: bool,
    },
    /// Runs the background workers alone (outbox relay, usage reconciler,
    /// housekeeping, coupon generator), no HTTP.
    Worker {
        #[command(flatten)]
        config: Config,
    },
    /// Applies pending migrations and exits.
    Migrate {
        #[command(flatten)]
        config: Config,
    },
    /// Prints the GraphQL schema (SDL).
    PrintSchema,
    /// Prints a bearer token (HS256, signed with JWT_SECRET) alone on one line.
    Token {
        /// admin, checkout or viewer.
        #[arg(long, value_enum)]
        role: Role,
        /// How long it is valid, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
        /// The client it names (`sub`; the rate limit counts per subject).
        #[arg(long, default_value = "local")]
        subject: String,
        #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
        jwt_secret: String,
    },
    /// Seeds the demo data (idempotent) and exits.
    SeedDemo {
        #[command(flatten)]
        config: Config,
    },
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    set_purge_delay();
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime.block_on(cli()),
        Err(e) => fail(format!("cannot start the async runtime: {e}")),
    }
}

async fn cli() -> ExitCode {
    promotions::telemetry::install_tls_provider();
    let cli = Cli::parse();
    match &cli.command {
        Command::PrintSchema => {
            print!("{}", graphql::sdl());
            return ExitCode::SUCCESS;
        }
        Command::Token {
            role,
            ttl,
            subject,
            jwt_secret,
        } => {
            return match auth::issue(jwt_secret, *role, subject, *ttl) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("cannot sign the token: {e}")),
            };
        }
        _ => {}
    }
    let telemetry = telemetry::init();
    let code = run(cli.command).await;
    telemetry.shutdown();
    code
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve {
            config,
            serve,
            no_migrate,
            seed_demo,
        } => {
            let app = match App::build(config, *serve, !no_migrate).await {
                Ok(app) => app,
                Err(e) => return fail(e),
            };
            if seed_demo {
                match demo::seed(&app.state.db).await {
                    Ok(true) => tracing::info!("demo data seeded"),
                    Ok(false) => tracing::info!("demo data already present"),
                    Err(e) => return fail(format!("seeding the demo data failed: {e:?}")),
                }
            }
            tracing::info!(addr = %app.addr, ops_addr = ?app.ops_addr, "serving");
            println!("GraphiQL: http://{}/graphql", app.addr);
            match app.run(app::shutdown_signal()).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(format!("server failed: {e}")),
            }
        }
        Command::Worker { config } => {
            let state = match AppState::connect(config, true).await {
                Ok(state) => state,
                Err(e) => return fail(e),
            };
            state.workers.start_optional(&state.db, &state.redis, &state.config);
            tracing::info!("workers running");
            app::shutdown_signal().await;
            state.workers.shutdown().await;
            ExitCode::SUCCESS
        }
        Command::Migrate { config } => match state::connect_db(&config, true).await {
            Ok(_) => {
                println!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        Command::SeedDemo { config } => {
            let db = match state::connect_db(&config, true).await {
                Ok(db) => db,
                Err(e) => return fail(e),
            };
            match demo::seed(&db).await {
                Ok(true) => {
                    println!("demo data seeded");
                    ExitCode::SUCCESS
                }
                Ok(false) => {
                    println!("demo data already present");
                    ExitCode::SUCCESS
                }
                Err(e) => fail(format!("seeding the demo data failed: {e:?}")),
            }
        }
        Command::PrintSchema | Command::Token { .. } => unreachable!("handled before logging starts"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(unsafe_code)]
    fn the_purge_delay_option_is_where_mimalloc_keeps_it() {
        // SAFETY: reads an integer option; this test's thread sets none.
        let default = unsafe { libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000, "mimalloc 3's default purge delay");
    }
}
