//! Coupons and the batches that generate them.
//!
//! Codes are stored upper-case (checked), so the unique index on `code` makes
//! them unique case-insensitively across the whole service.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE coupon_batches (
    id                       uuid PRIMARY KEY,
    promotion_id             uuid NOT NULL REFERENCES promotions (id),
    pattern                  text NOT NULL CHECK (char_length(pattern) BETWEEN 1 AND 64),
    requested                integer NOT NULL CHECK (requested BETWEEN 1 AND 1000000),
    generated                integer NOT NULL DEFAULT 0 CHECK (generated BETWEEN 0 AND requested),
    status                   text NOT NULL CHECK (status IN ('PENDING', 'RUNNING', 'DONE', 'FAILED')),
    error                    text,
    usage_limit              integer CHECK (usage_limit > 0),
    usage_limit_per_customer integer CHECK (usage_limit_per_customer > 0),
    starts_at                timestamptz,
    expires_at               timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    finished_at              timestamptz,
    CONSTRAINT coupon_batches_window_check CHECK (expires_at > starts_at)
);
CREATE INDEX coupon_batches_promotion_idx ON coupon_batches (promotion_id);

CREATE TABLE coupons (
    id                       uuid PRIMARY KEY,
    code                     text NOT NULL CHECK (code ~ '^[A-Z0-9][A-Z0-9_-]{2,63}$'),
    promotion_id             uuid NOT NULL REFERENCES promotions (id),
    batch_id                 uuid REFERENCES coupon_batches (id),
    active                   boolean NOT NULL DEFAULT true,
    usage_limit              integer CHECK (usage_limit > 0),
    usage_limit_per_customer integer CHECK (usage_limit_per_customer > 0),
    times_used               integer NOT NULL DEFAULT 0 CHECK (times_used >= 0),
    starts_at                timestamptz,
    expires_at               timestamptz,
    created_at               timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT coupons_window_check CHECK (expires_at > starts_at)
);
CREATE UNIQUE INDEX coupons_code_key ON coupons (code);
CREATE INDEX coupons_promotion_idx ON coupons (promotion_id, id DESC);
CREATE INDEX coupons_batch_idx ON coupons (batch_id, id DESC) WHERE batch_id IS NOT NULL;
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE coupons; DROP TABLE coupon_batches;").await
    }
}
