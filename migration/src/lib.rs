//! Database migrations of the promotion service, one concern each.
//!
//! The schema enforces its own rules: foreign keys, range checks (basis points
//! 1..10000, limits > 0, windows that end after they start), unique coupon
//! codes, and the shape of each action kind. The service validates input
//! first and names the offending field; these constraints are the backstop
//! that keeps stored data sound whatever the code does. See README.md.

pub use sea_orm_migration::prelude::*;

mod m20261126_000001_create_campaigns;
mod m20261126_000002_create_promotions;
mod m20261126_000003_create_coupons;
mod m20261126_000004_create_redemptions;
mod m20261126_000005_create_outbox_events;
mod m20261126_000006_create_usage_slots;
mod m20261127_000007_add_expiry_announcements;
mod m20261127_000008_add_coupon_batch_leases;
mod m20261201_000009_count_usage;
mod m20261201_000010_add_redemption_claim;
mod m20261206_000011_widen_usage_shards;
mod m20261206_000012_lean_usage_take;
mod m20261206_000013_hold_back_outbox_aggregates;
mod m20261206_000014_usage_deltas;
mod m20261206_000015_reopen_expiries;
mod m20261206_000016_redemption_owner;
mod m20261207_000017_pricing_changes;

/// Applies the migrations in order; `serve` and `migrate` run it.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_campaigns::Migration),
            Box::new(m20261126_000002_create_promotions::Migration),
            Box::new(m20261126_000003_create_coupons::Migration),
            Box::new(m20261126_000004_create_redemptions::Migration),
            Box::new(m20261126_000005_create_outbox_events::Migration),
            Box::new(m20261126_000006_create_usage_slots::Migration),
            Box::new(m20261127_000007_add_expiry_announcements::Migration),
            Box::new(m20261127_000008_add_coupon_batch_leases::Migration),
            Box::new(m20261201_000009_count_usage::Migration),
            Box::new(m20261201_000010_add_redemption_claim::Migration),
            Box::new(m20261206_000011_widen_usage_shards::Migration),
            Box::new(m20261206_000012_lean_usage_take::Migration),
            Box::new(m20261206_000013_hold_back_outbox_aggregates::Migration),
            Box::new(m20261206_000014_usage_deltas::Migration),
            Box::new(m20261206_000015_reopen_expiries::Migration),
            Box::new(m20261206_000016_redemption_owner::Migration),
            Box::new(m20261207_000017_pricing_changes::Migration),
        ]
    }
}

/// Runs each statement of `sql` (separated by `;` at line ends) in order.
pub(crate) async fn run_sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager.get_connection().execute_unprepared(sql).await.map(|_| ())
}
