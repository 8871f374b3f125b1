//! `spawn_app()` and typed helpers to talk to it, one concern a file:
//! databases, the app, clients, processes, sockets, fixtures.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use migration::{Migrator, MigratorTrait};
use promotions::app::App;
use promotions::auth::Role;
use promotions::config::{Config, ServeConfig};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

mod app;
mod client;
mod database;
mod fixtures;
mod process;
mod socket;

pub use app::*;
pub use client::*;
pub use database::*;
pub use fixtures::*;
pub use process::*;
pub use socket::*;
