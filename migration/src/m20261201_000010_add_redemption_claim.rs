//! `redemption_lock(order)`: an order's transaction-scoped lock, one
//! definition for every caller; `redemption_claim(order)` takes it and
//! returns its counted redemption, if any, read after the lock (a fresh
//! snapshot: a concurrent duplicate that committed while this one waited
//! is seen). One round trip where an apply made two.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
-- The order's lock: serialises every apply and release of one order id.
CREATE FUNCTION redemption_lock(p_order text) RETURNS void LANGUAGE sql AS $$
    SELECT pg_advisory_xact_lock(hashtextextended(p_order, 7))
$$;

CREATE FUNCTION redemption_claim(p_order text) RETURNS SETOF redemptions LANGUAGE plpgsql AS $$
BEGIN
    PERFORM redemption_lock(p_order);
    RETURN QUERY SELECT * FROM redemptions WHERE order_id = p_order AND status = 'REDEEMED';
END
$$;
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP FUNCTION redemption_claim(text); DROP FUNCTION redemption_lock(text);",
        )
        .await
    }
}
