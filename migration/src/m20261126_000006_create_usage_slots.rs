//! Usage slots: the database's own guarantee that no limit is exceeded.
//!
//! Each counted use of a limited promotion or coupon (in total, or per
//! customer) holds one numbered slot. The primary key makes a slot number
//! unique within its pool and the trigger refuses a number above the pool's
//! current limit, so however Redis behaves (restarts, FLUSHALL, races), the
//! rows of one pool can never outnumber its limit. Releasing a redemption
//! deletes its slots, which makes their numbers free again.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE usage_slots (
    scope         text NOT NULL CHECK (scope IN ('PROMOTION', 'PROMOTION_CUSTOMER', 'COUPON', 'COUPON_CUSTOMER')),
    owner_id      uuid NOT NULL,
    customer_id   text NOT NULL DEFAULT '',
    slot          integer NOT NULL CHECK (slot >= 1),
    redemption_id uuid NOT NULL REFERENCES redemptions (id),
    PRIMARY KEY (scope, owner_id, customer_id, slot),
    CONSTRAINT usage_slots_customer_check CHECK ((scope LIKE '%CUSTOMER') = (customer_id <> ''))
);
CREATE INDEX usage_slots_redemption_idx ON usage_slots (redemption_id);

CREATE FUNCTION usage_slot_within_limit() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    lim integer;
BEGIN
    lim := CASE NEW.scope
        WHEN 'PROMOTION' THEN (SELECT total_usage_limit FROM promotions WHERE id = NEW.owner_id)
        WHEN 'PROMOTION_CUSTOMER' THEN (SELECT usage_limit_per_customer FROM promotions WHERE id = NEW.owner_id)
        WHEN 'COUPON' THEN (SELECT usage_limit FROM coupons WHERE id = NEW.owner_id)
        WHEN 'COUPON_CUSTOMER' THEN (SELECT usage_limit_per_customer FROM coupons WHERE id = NEW.owner_id)
    END;
    IF lim IS NULL OR NEW.slot > lim THEN
        RAISE EXCEPTION 'usage slot % of % % exceeds its limit %', NEW.slot, NEW.scope, NEW.owner_id, lim
            USING ERRCODE = 'check_violation', CONSTRAINT = 'usage_slots_limit_check';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER usage_slots_limit BEFORE INSERT OR UPDATE ON usage_slots
    FOR EACH ROW EXECUTE FUNCTION usage_slot_within_limit();

CREATE INDEX redemptions_customer_idx ON redemptions (customer_id) WHERE customer_id IS NOT NULL;
CREATE INDEX redemption_promotions_coupon_idx ON redemption_promotions (coupon_id) WHERE coupon_id IS NOT NULL;
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TABLE usage_slots; DROP FUNCTION usage_slot_within_limit();
             DROP INDEX redemptions_customer_idx; DROP INDEX redemption_promotions_coupon_idx;",
        )
        .await
    }
}
