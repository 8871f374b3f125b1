//! An index of the outbox rows not yet published, by aggregate: the relay
//! holds back an aggregate's rows behind an earlier one that waits for a
//! retry or is DEAD, and finds those earlier rows here (published rows are
//! not in it, so the check costs what is unpublished, not an aggregate's
//! history). It replaces `outbox_events_aggregate_idx`, which no query
//! used, so a checkout's event row maintains as many indexes as before.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE INDEX outbox_events_unpublished_idx ON outbox_events (aggregate_type, aggregate_id, seq)
                 WHERE status <> 'PUBLISHED';
             DROP INDEX outbox_events_aggregate_idx;",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE INDEX outbox_events_aggregate_idx ON outbox_events (aggregate_type, aggregate_id, seq);
             DROP INDEX outbox_events_unpublished_idx;",
        )
        .await
    }
}
