//! The transactional outbox: one row per state change, written in the
//! change's own transaction and published later by the relay.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE outbox_events (
    id              uuid PRIMARY KEY,
    seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
    aggregate_type  text NOT NULL CHECK (char_length(aggregate_type) BETWEEN 1 AND 50),
    aggregate_id    text NOT NULL CHECK (char_length(aggregate_id) BETWEEN 1 AND 200),
    event_type      text NOT NULL CHECK (char_length(event_type) BETWEEN 1 AND 100),
    payload         jsonb NOT NULL,
    status          text NOT NULL DEFAULT 'PENDING' CHECK (status IN ('PENDING', 'PUBLISHED', 'DEAD')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    published_at    timestamptz,
    next_attempt_at timestamptz DEFAULT now()
);
CREATE INDEX outbox_events_pending_idx ON outbox_events (seq) WHERE status = 'PENDING';
CREATE INDEX outbox_events_status_idx ON outbox_events (status, seq DESC);
CREATE INDEX outbox_events_aggregate_idx ON outbox_events (aggregate_type, aggregate_id, seq);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE outbox_events;").await
    }
}
