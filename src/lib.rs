#![cfg_attr(test, allow(clippy::unwrap_used))]
//! The promotion service: campaigns, promotions and coupons; prices carts;
//! enforces usage limits; publishes its events through an outbox.
//!
//! Dependencies point one way, down the layers of `ARCHITECTURE.md` (a
//! test holds them): `http` -> `graphql` -> `state` -> `workers` -> the use
//! cases -> `limits` -> `store` -> `error` -> `domain`.
//!
//! - [`app`]: the composition root: builds, serves, shuts down.
//! - [`demo`]: demo data for local use, through the admin use cases.
//! - [`http`]: router, health, metrics endpoint, CSV export, rate limit.
//! - [`graphql`]: schema, thin resolvers, compiled previews, the live feed.
//! - [`auth`]: bearer tokens and roles.
//! - [`state`]: what handlers and workers share, and connecting it.
//! - [`workers`]: the background workers under one supervisor.
//! - [`admin`]: use cases of the admin API.
//! - [`redemption`]: applying and releasing, with limits that cannot be exceeded.
//! - [`expiry`]: what time ends (campaigns, promotions, coupons), outbox retention.
//! - [`pricing`]: the promotion snapshot and cart previews.
//! - [`outbox`]: events written in the change's transaction, and their relay.
//! - [`limits`]: usage pools, their live counts and their Redis reservations.
//! - [`store`]: every SQL statement: entities and repositories.
//! - [`redis_conn`]: the Redis connection, to one node or a Redis Cluster.
//! - [`error`]: the one error type and its GraphQL codes.
//! - [`config`]: settings from the environment.
//! - [`telemetry`]: logging and tracing set-up.
//! - [`metrics`]: the Prometheus registry and its metrics.
//! - [`domain`]: the pure rules (definitions, validation, evaluation).

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod demo;
pub mod domain;
pub mod error;
pub mod expiry;
pub mod graphql;
pub mod http;
pub mod limits;
pub mod metrics;
pub mod outbox;
pub mod pricing;
pub mod redemption;
pub mod redis_conn;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod workers;
