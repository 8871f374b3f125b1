//! The client that placed an order: `redemptions.client_subject`, the token
//! subject of the apply. Another checkout subject finds no such order (it
//! cannot read or release it); admins see every order. Rows recorded
//! before this migration have none and stay visible to every client, as
//! they were.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "ALTER TABLE redemptions ADD COLUMN client_subject text;").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "ALTER TABLE redemptions DROP COLUMN client_subject;").await
    }
}
