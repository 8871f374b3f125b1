//! A promotion's or coupon's expiry is announced again when its window
//! reopens: an update that moves `ends_at` (a coupon's `expires_at`) past
//! now, or removes it, clears `expiry_announced_at`, so the
//! `promotion.expired` / `coupon.expired` event is sent again when the new
//! window closes. A trigger, so that every path that writes the end (the
//! admin API, an import, a hand-run UPDATE) does it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE FUNCTION promotion_expiry_reopen() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.ends_at IS NULL OR NEW.ends_at > now() THEN
                     NEW.expiry_announced_at := NULL;
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER promotions_expiry_reopen BEFORE UPDATE OF ends_at ON promotions
                 FOR EACH ROW WHEN (NEW.ends_at IS DISTINCT FROM OLD.ends_at AND OLD.expiry_announced_at IS NOT NULL)
                 EXECUTE FUNCTION promotion_expiry_reopen();
             CREATE FUNCTION coupon_expiry_reopen() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.expires_at IS NULL OR NEW.expires_at > now() THEN
                     NEW.expiry_announced_at := NULL;
                 END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER coupons_expiry_reopen BEFORE UPDATE OF expires_at ON coupons
                 FOR EACH ROW WHEN (NEW.expires_at IS DISTINCT FROM OLD.expires_at AND OLD.expiry_announced_at IS NOT NULL)
                 EXECUTE FUNCTION coupon_expiry_reopen();",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TRIGGER promotions_expiry_reopen ON promotions;
             DROP FUNCTION promotion_expiry_reopen();
             DROP TRIGGER coupons_expiry_reopen ON coupons;
             DROP FUNCTION coupon_expiry_reopen();",
        )
        .await
    }
}
