//! Pricing changes announce themselves: every write to a promotion, its
//! targets or tiers, or a campaign sends `NOTIFY promotions_changed` with
//! `<version> promotion <id>` or `<version> campaign <id>`, from a trigger,
//! so that every path that writes (the admin API, expiry, an import, a
//! hand-run UPDATE) does it. A TRUNCATE sends `<version> all`.
//!
//! `pricing_version.version` counts the transactions that changed pricing:
//! the first such write of a transaction bumps it (its row lock then orders
//! those transactions, so versions follow commit order with no gap) and
//! every notification of that transaction carries it. A replica that holds
//! version N and reads N + 2 knows it missed a change; one that reads the
//! version equal to its own missed nothing. Folding usage counts into
//! `promotions` changes no price and announces nothing.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "CREATE TABLE pricing_version (
                 one     boolean PRIMARY KEY DEFAULT true CHECK (one),
                 version bigint NOT NULL,
                 xact    bigint
             );
             INSERT INTO pricing_version (version) VALUES (0);
             CREATE FUNCTION pricing_changed(kind text, id text) RETURNS void LANGUAGE plpgsql AS $$
             DECLARE
                 v bigint;
             BEGIN
                 UPDATE pricing_version SET version = version + 1, xact = txid_current()
                     WHERE xact IS DISTINCT FROM txid_current() RETURNING version INTO v;
                 IF NOT FOUND THEN
                     SELECT version INTO v FROM pricing_version;
                 END IF;
                 PERFORM pg_notify('promotions_changed', concat_ws(' ', v, kind, id));
             END $$;
             CREATE FUNCTION promotion_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF TG_OP <> 'UPDATE' OR to_jsonb(OLD) - '{redemption_count,discount_total}'::text[]
                         IS DISTINCT FROM to_jsonb(NEW) - '{redemption_count,discount_total}'::text[] THEN
                     PERFORM pricing_changed('promotion', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE FUNCTION promotion_part_changed() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF TG_OP <> 'INSERT' THEN
                     PERFORM pricing_changed('promotion', OLD.promotion_id::text);
                 END IF;
                 IF TG_OP <> 'DELETE' THEN
                     PERFORM pricing_changed('promotion', NEW.promotion_id::text);
                 END IF;
                 RETURN NULL;
             END $$;
             CREATE FUNCTION campaign_row_changed() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM pricing_changed('campaign', (CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END)::text);
                 RETURN NULL;
             END $$;
             CREATE FUNCTION pricing_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 PERFORM pricing_changed('all', NULL);
                 RETURN NULL;
             END $$;
             CREATE TRIGGER promotions_changed AFTER INSERT OR UPDATE OR DELETE ON promotions
                 FOR EACH ROW EXECUTE FUNCTION promotion_row_changed();
             CREATE TRIGGER promotion_targets_changed AFTER INSERT OR UPDATE OR DELETE ON promotion_targets
                 FOR EACH ROW EXECUTE FUNCTION promotion_part_changed();
             CREATE TRIGGER promotion_tiers_changed AFTER INSERT OR UPDATE OR DELETE ON promotion_tiers
                 FOR EACH ROW EXECUTE FUNCTION promotion_part_changed();
             CREATE TRIGGER campaigns_changed AFTER INSERT OR UPDATE OR DELETE ON campaigns
                 FOR EACH ROW EXECUTE FUNCTION campaign_row_changed();
             CREATE TRIGGER promotions_truncated AFTER TRUNCATE ON promotions
                 FOR EACH STATEMENT EXECUTE FUNCTION pricing_truncated();
             CREATE TRIGGER campaigns_truncated AFTER TRUNCATE ON campaigns
                 FOR EACH STATEMENT EXECUTE FUNCTION pricing_truncated();",
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TRIGGER promotions_changed ON promotions;
             DROP TRIGGER promotion_targets_changed ON promotion_targets;
             DROP TRIGGER promotion_tiers_changed ON promotion_tiers;
             DROP TRIGGER campaigns_changed ON campaigns;
             DROP TRIGGER promotions_truncated ON promotions;
             DROP TRIGGER campaigns_truncated ON campaigns;
             DROP FUNCTION pricing_truncated();
             DROP FUNCTION campaign_row_changed();
             DROP FUNCTION promotion_part_changed();
             DROP FUNCTION promotion_row_changed();
             DROP FUNCTION pricing_changed(text, text);
             DROP TABLE pricing_version;",
        )
        .await
    }
}
