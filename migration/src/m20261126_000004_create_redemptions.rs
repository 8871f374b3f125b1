//! Redemptions: what an order received, and the promotions it used.
//!
//! One REDEEMED redemption per order at a time (partial unique index); a
//! released one stays as history and frees the order id.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE redemptions (
    id             uuid PRIMARY KEY,
    order_id       text NOT NULL CHECK (char_length(order_id) BETWEEN 1 AND 200),
    customer_id    text CHECK (char_length(customer_id) BETWEEN 1 AND 200),
    status         text NOT NULL CHECK (status IN ('REDEEMED', 'RELEASED')),
    currency       text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    discount_total bigint NOT NULL CHECK (discount_total >= 0),
    cart_hash      text NOT NULL,
    result         jsonb NOT NULL CHECK (jsonb_typeof(result) = 'object'),
    created_at     timestamptz NOT NULL DEFAULT now(),
    released_at    timestamptz,
    CONSTRAINT redemptions_release_check CHECK ((status = 'RELEASED') = (released_at IS NOT NULL))
);
CREATE UNIQUE INDEX redemptions_order_key ON redemptions (order_id) WHERE status = 'REDEEMED';
CREATE INDEX redemptions_order_idx ON redemptions (order_id, created_at DESC);

CREATE TABLE redemption_promotions (
    redemption_id uuid NOT NULL REFERENCES redemptions (id),
    promotion_id  uuid NOT NULL REFERENCES promotions (id),
    coupon_id     uuid REFERENCES coupons (id),
    amount        bigint NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (redemption_id, promotion_id)
);
CREATE INDEX redemption_promotions_promotion_idx ON redemption_promotions (promotion_id);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, "DROP TABLE redemption_promotions; DROP TABLE redemptions;").await
    }
}
