//! Usage counts: the database's own guarantee that no limit is exceeded,
//! whatever Redis says and however admins change the limits.
//!
//! `usage_counts` holds one row per limited pool (a promotion's total, a
//! promotion per customer, a coupon's total, a coupon per customer) with its
//! counted (not released) uses; a missing row is 0. Rows exist only while
//! the pool has a limit, so an unlimited promotion's orders write no hot row.
//!
//! - `usage_take` (in the redemption's transaction) takes a shared advisory
//!   lock per owner, reads each pool's limit in force (a fresh snapshot,
//!   after the lock) and adds one use where a limit exists, refusing with
//!   `usage pool <i> is full` where the count has reached it.
//! - `usage_give_back` (in the release's transaction) takes one use back.
//! - A change of a limit column (any writer, admin API or SQL) takes the
//!   owner's lock exclusively in a trigger: it waits for the transactions
//!   that counted under the old limit, and every later one counts under the
//!   new. A limit that appears counts every use recorded so far (also those
//!   made while the pool had none); one that goes drops its rows. Lowering
//!   below the count is allowed: the pool refuses until releases bring the
//!   count under the limit.
//!
//! The counts replace `usage_slots` (numbered slots could not follow a limit
//! that moves); they are filled from the redemptions themselves.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE usage_counts (
    scope       text NOT NULL CHECK (scope IN ('PROMOTION', 'PROMOTION_CUSTOMER', 'COUPON', 'COUPON_CUSTOMER')),
    owner_id    uuid NOT NULL,
    customer_id text NOT NULL DEFAULT '',
    used        integer NOT NULL CHECK (used >= 0),
    PRIMARY KEY (scope, owner_id, customer_id),
    CONSTRAINT usage_counts_customer_check CHECK ((scope LIKE '%CUSTOMER') = (customer_id <> ''))
);

-- The advisory lock of an owner (a promotion or a coupon) of pools.
CREATE FUNCTION usage_lock_key(p_owner uuid) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended(p_owner::text, 11)
$$;

-- The limit in force of a pool kind of an owner; NULL: none.
CREATE FUNCTION usage_limit_of(p_scope text, p_owner uuid) RETURNS integer LANGUAGE sql STABLE AS $$
    SELECT CASE p_scope
        WHEN 'PROMOTION' THEN (SELECT total_usage_limit FROM promotions WHERE id = p_owner)
        WHEN 'PROMOTION_CUSTOMER' THEN (SELECT usage_limit_per_customer FROM promotions WHERE id = p_owner)
        WHEN 'COUPON' THEN (SELECT usage_limit FROM coupons WHERE id = p_owner)
        WHEN 'COUPON_CUSTOMER' THEN (SELECT usage_limit_per_customer FROM coupons WHERE id = p_owner)
    END
$$;

-- Shared locks on the distinct owners, in one order (no deadlock with a trigger's exclusive one).
CREATE FUNCTION usage_lock_shared(p_owners uuid[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o uuid;
BEGIN
    FOR o IN SELECT DISTINCT x FROM unnest(p_owners) AS x ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock_shared(usage_lock_key(o));
    END LOOP;
END
$$;

-- Counts one use in each pool that has a limit, or raises 'usage pool <i> is full'.
CREATE FUNCTION usage_take(p_scopes text[], p_owners uuid[], p_customers text[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    lim integer;
BEGIN
    PERFORM usage_lock_shared(p_owners);
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        lim := usage_limit_of(p_scopes[i], p_owners[i]);
        CONTINUE WHEN lim IS NULL;
        INSERT INTO usage_counts AS u (scope, owner_id, customer_id, used)
        VALUES (p_scopes[i], p_owners[i], p_customers[i], 1)
        ON CONFLICT (scope, owner_id, customer_id) DO UPDATE SET used = u.used + 1 WHERE u.used < lim;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'usage pool % is full', i USING ERRCODE = 'check_violation', CONSTRAINT = 'usage_counts_limit';
        END IF;
    END LOOP;
    RETURN coalesce(array_length(p_scopes, 1), 0);
END
$$;

-- Takes one use back from each pool that has a limit.
CREATE FUNCTION usage_give_back(p_scopes text[], p_owners uuid[], p_customers text[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    PERFORM usage_lock_shared(p_owners);
    FOR i IN 1 .. coalesce(array_length(p_scopes, 1), 0) LOOP
        CONTINUE WHEN usage_limit_of(p_scopes[i], p_owners[i]) IS NULL;
        UPDATE usage_counts SET used = used - 1
        WHERE scope = p_scopes[i] AND owner_id = p_owners[i] AND customer_id = p_customers[i] AND used > 0;
    END LOOP;
    RETURN coalesce(array_length(p_scopes, 1), 0);
END
$$;

-- Rebuilds the rows of one pool kind of an owner from its counted redemptions.
CREATE FUNCTION usage_recount(p_scope text, p_owner uuid) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_counts WHERE scope = p_scope AND owner_id = p_owner;
    INSERT INTO usage_counts (scope, owner_id, customer_id, used)
    SELECT p_scope, p_owner, CASE WHEN p_scope LIKE '%CUSTOMER' THEN r.customer_id ELSE '' END, count(*)
    FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
    WHERE r.status = 'REDEEMED'
      AND (CASE WHEN p_scope LIKE 'PROMOTION%' THEN rp.promotion_id ELSE rp.coupon_id END) = p_owner
      AND (p_scope NOT LIKE '%CUSTOMER' OR r.customer_id IS NOT NULL)
    GROUP BY 3;
END
$$;

-- A limit that changes: wait for the uses counted under the old one, then
-- count everything when a limit appears, or drop the rows when it goes.
CREATE FUNCTION usage_limit_changed() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    total_scope text := CASE TG_TABLE_NAME WHEN 'promotions' THEN 'PROMOTION' ELSE 'COUPON' END;
    old_total integer;
    new_total integer;
BEGIN
    IF TG_TABLE_NAME = 'promotions' THEN
        old_total := OLD.total_usage_limit;
        new_total := NEW.total_usage_limit;
    ELSE
        old_total := OLD.usage_limit;
        new_total := NEW.usage_limit;
    END IF;
    PERFORM pg_advisory_xact_lock(usage_lock_key(NEW.id));
    IF old_total IS NULL AND new_total IS NOT NULL THEN
        PERFORM usage_recount(total_scope, NEW.id);
    ELSIF old_total IS NOT NULL AND new_total IS NULL THEN
        DELETE FROM usage_counts WHERE scope = total_scope AND owner_id = NEW.id;
    END IF;
    IF OLD.usage_limit_per_customer IS NULL AND NEW.usage_limit_per_customer IS NOT NULL THEN
        PERFORM usage_recount(total_scope || '_CUSTOMER', NEW.id);
    ELSIF OLD.usage_limit_per_customer IS NOT NULL AND NEW.usage_limit_per_customer IS NULL THEN
        DELETE FROM usage_counts WHERE scope = total_scope || '_CUSTOMER' AND owner_id = NEW.id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER promotions_usage_limit_changed AFTER UPDATE OF total_usage_limit, usage_limit_per_customer ON promotions
    FOR EACH ROW
    WHEN (OLD.total_usage_limit IS DISTINCT FROM NEW.total_usage_limit
          OR OLD.usage_limit_per_customer IS DISTINCT FROM NEW.usage_limit_per_customer)
    EXECUTE FUNCTION usage_limit_changed();
CREATE TRIGGER coupons_usage_limit_changed AFTER UPDATE OF usage_limit, usage_limit_per_customer ON coupons
    FOR EACH ROW
    WHEN (OLD.usage_limit IS DISTINCT FROM NEW.usage_limit
          OR OLD.usage_limit_per_customer IS DISTINCT FROM NEW.usage_limit_per_customer)
    EXECUTE FUNCTION usage_limit_changed();

-- The counts of today's limited pools, from their counted redemptions.
SELECT usage_recount('PROMOTION', id) FROM promotions WHERE total_usage_limit IS NOT NULL;
SELECT usage_recount('PROMOTION_CUSTOMER', id) FROM promotions WHERE usage_limit_per_customer IS NOT NULL;
SELECT usage_recount('COUPON', id) FROM coupons WHERE usage_limit IS NOT NULL AND id IN (SELECT coupon_id FROM redemption_promotions);
SELECT usage_recount('COUPON_CUSTOMER', id) FROM coupons WHERE usage_limit_per_customer IS NOT NULL AND id IN (SELECT coupon_id FROM redemption_promotions);

DROP TABLE usage_slots;
DROP FUNCTION usage_slot_within_limit();
"#,
        )
        .await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "usage_counts replaced usage_slots; slots cannot be rebuilt from counts".into(),
        ))
    }
}
