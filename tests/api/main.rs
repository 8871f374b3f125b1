#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

//! Black-box tests of the running service: each test spawns the real app on
//! port 0 with a fresh database (copied from a migrated template) and its own
//! Redis key prefix, and talks GraphQL over HTTP. One binary, many modules:
//! one link step for the whole suite.

mod helpers;

mod architecture;
mod campaigns;
mod contract_check;
mod coupon_batches;
mod coupons;
mod expiry;
mod failover;
mod fast_preview;
mod fuzz;
mod health;
mod identity;
mod limits;
mod limits_model;
mod observability;
mod outbox;
mod pagination;
mod preview;
mod promotions;
mod redemption;
mod redis_outage;
mod relay;
mod schema;
mod security;
mod snapshot;
mod subscriptions;
mod unicode;
