#![cfg_attr(test, allow(clippy::unwrap_used))]
//! The promotion service: campaigns, promotions and coupons; prices carts;
//! enforces usage limits; publishes its events through an outbox.
//!
//! Data flows one way: `http` -> `graphql` -> (`admin`, `pricing`, `store`, `outbox`),
//! and everything uses `domain`, which imports none of them.
//!
//! - [`config`]: settings from the environment.
//! - [`telemetry`]: logging set-up.
//! - [`error`]: the one error type and its GraphQL codes.
//! - [`app`]: shared state, start-up, serving and shutdown.
//! - [`domain`]: the pure rules (definitions, validation).
//! - [`store`]: PostgreSQL entities and repositories.
//! - [`outbox`]: events written in the change's transaction, and their relay.
//! - [`expiry`]: time-driven housekeeping (expiry events, outbox retention).
//! - [`admin`]: use cases of the admin API.
//! - [`limits`]: usage pools, their live counts and their Redis reservations.
//! - [`pricing`]: the promotion snapshot and cart previews.
//! - [`redemption`]: applying and releasing, with limits that cannot be exceeded.
//! - [`graphql`]: schema and thin resolvers.
//! - [`http`]: router, GraphiQL, health.
//! - [`demo`]: demo data for local use.
//! - [`workers`]: the background workers' lifecycle record.

pub mod admin;
pub mod app;
pub mod auth;
pub mod config;
pub mod coupon_generator;
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
pub mod store;
pub mod telemetry;
pub mod workers;
