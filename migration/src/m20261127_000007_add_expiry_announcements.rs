//! Remembers which expiries were announced, so the expiry worker writes each
//! `promotion.expired` / `coupon.expired` event once.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
ALTER TABLE promotions ADD COLUMN expiry_announced_at timestamptz;
ALTER TABLE coupons ADD COLUMN expiry_announced_at timestamptz;
CREATE INDEX promotions_expiry_due_idx ON promotions (ends_at) WHERE expiry_announced_at IS NULL AND ends_at IS NOT NULL;
CREATE INDEX coupons_expiry_due_idx ON coupons (expires_at) WHERE expiry_announced_at IS NULL AND expires_at IS NOT NULL;
CREATE INDEX outbox_events_published_idx ON outbox_events (published_at) WHERE status = 'PUBLISHED';
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP INDEX outbox_events_published_idx; DROP INDEX coupons_expiry_due_idx; DROP INDEX promotions_expiry_due_idx;
             ALTER TABLE coupons DROP COLUMN expiry_announced_at; ALTER TABLE promotions DROP COLUMN expiry_announced_at;",
        )
        .await
    }
}
