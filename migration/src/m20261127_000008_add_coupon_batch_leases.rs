//! Leases on coupon batch jobs: the worker that runs a batch holds it until
//! `lease_until`; a batch whose lease ran out (its worker died) is taken over
//! by another and resumes from `generated`.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
ALTER TABLE coupon_batches ADD COLUMN lease_owner uuid, ADD COLUMN lease_until timestamptz;
CREATE INDEX coupon_batches_unfinished_idx ON coupon_batches (created_at) WHERE status IN ('PENDING', 'RUNNING');
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP INDEX coupon_batches_unfinished_idx;
             ALTER TABLE coupon_batches DROP COLUMN lease_until, DROP COLUMN lease_owner;",
        )
        .await
    }
}
