//! Usage counts: the database's own guarantee that no limit is exceeded,
//! whatever Redis says and however admins change the limits.
//!
//! `usage_counts` holds the counted (not released) uses of each limited
//! pool (a promotion's total, a promotion per customer, a coupon's total, a
//! coupon per customer); a missing row is 0. Rows exist only while the pool
//! has a limit, so an unlimited promotion's orders write no row. A
//! per-customer count is one row. A total is up to 8 shard rows, each with
//! a quota of the limit (the quotas add up to at most the limit, or to the
//! count where a lowered limit left it above): concurrent orders count in
//! different rows, so one popular limited promotion is not one hot row.
//!
//! - `usage_take` (in the redemption's statement) takes a shared advisory
//!   lock per owner, reads each pool's limit in force (a fresh snapshot,
//!   after the lock) and counts one use where a limit exists: in a shard
//!   with room (`usage_move_total`; when no quota has room, the room the
//!   limit leaves is divided anew, under the total's own lock), or it
//!   raises `usage pool <i> is full`.
//! - `usage_give_back` (in the release's statement) takes one use back; a
//!   total's shard gives back its quota with it, for the next division.
//! - A change of a limit column (any writer, admin API or SQL) takes the
//!   owner's lock exclusively in a trigger: it waits for the transactions
//!   that counted under the old limit, and every later one counts under the
//!   new. A limit that appears counts every use recorded so far (also those
//!   made while the pool had none); one that moves divides the room anew;
//!   one that goes drops its rows. Lowering below the count is allowed: the
//!   pool refuses until releases bring the count under the limit.
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
    shard       smallint NOT NULL DEFAULT 0 CHECK (shard BETWEEN 0 AND 7),
    used        integer NOT NULL CHECK (used >= 0),
    quota       integer CHECK (quota >= used),
    PRIMARY KEY (scope, owner_id, customer_id, shard),
    CONSTRAINT usage_counts_customer_check CHECK ((scope LIKE '%CUSTOMER') = (customer_id <> '')),
    -- A total's shards share its limit through their quotas; a per-customer count is one row.
    CONSTRAINT usage_counts_kind_check CHECK ((scope LIKE '%CUSTOMER') = (quota IS NULL AND shard = 0))
);

-- The advisory lock of an owner (a promotion or a coupon) of pools.
CREATE FUNCTION usage_lock_key(p_owner uuid) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended(p_owner::text, 11)
$$;

-- The lock under which a total's quotas are divided anew.
CREATE FUNCTION usage_rebalance_key(p_scope text, p_owner uuid) RETURNS bigint LANGUAGE sql IMMUTABLE AS $$
    SELECT hashtextextended(p_scope || ':' || p_owner::text, 13)
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

-- Divides the room left under p_limit among a total's shards (at most 8,
-- at most the limit), as quotas; rows beyond them keep no room. Takes
-- every shard row, so it waits for the transactions counting in them.
CREATE FUNCTION usage_rebalance(p_scope text, p_owner uuid, p_limit integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer := least(8, greatest(p_limit, 1));
    room integer;
BEGIN
    PERFORM 1 FROM usage_counts WHERE scope = p_scope AND owner_id = p_owner AND customer_id = ''
        ORDER BY shard FOR UPDATE;
    INSERT INTO usage_counts (scope, owner_id, customer_id, shard, used, quota)
    SELECT p_scope, p_owner, '', s, 0, 0 FROM generate_series(0, n - 1) AS s
    ON CONFLICT DO NOTHING;
    SELECT greatest(p_limit - coalesce(sum(used), 0), 0) INTO room
    FROM usage_counts WHERE scope = p_scope AND owner_id = p_owner AND customer_id = '';
    UPDATE usage_counts
    SET quota = used + CASE WHEN shard < n THEN room / n + (CASE WHEN shard < room % n THEN 1 ELSE 0 END) ELSE 0 END
    WHERE scope = p_scope AND owner_id = p_owner AND customer_id = '';
END
$$;

-- Moves one use of a total into (p_delta 1) or out of (-1) a shard: one
-- with room to take, or with a use to give back. Never waits for a row
-- another transaction holds (SKIP LOCKED) unless p_wait: only the holder
-- of the total's rebalance lock waits for rows, so no two transactions
-- ever wait for each other's shard rows.
CREATE FUNCTION usage_shift(p_scope text, p_owner uuid, p_delta integer, p_wait boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    start integer := floor(random() * 8)::integer;
    target tid;
BEGIN
    IF p_wait THEN
        SELECT ctid INTO target FROM usage_counts
        WHERE scope = p_scope AND owner_id = p_owner AND customer_id = ''
          AND (CASE WHEN p_delta > 0 THEN used < quota ELSE used > 0 END)
        ORDER BY (shard + start) % 8 LIMIT 1 FOR UPDATE;
    ELSE
        SELECT ctid INTO target FROM usage_counts
        WHERE scope = p_scope AND owner_id = p_owner AND customer_id = ''
          AND (CASE WHEN p_delta > 0 THEN used < quota ELSE used > 0 END)
        ORDER BY (shard + start) % 8 LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF target IS NULL THEN
        RETURN false;
    END IF;
    -- A give-back returns the shard's quota too: the next division hands it out.
    UPDATE usage_counts SET used = used + p_delta, quota = quota + least(p_delta, 0) WHERE ctid = target;
    RETURN true;
END
$$;

-- Counts one use of a total (p_limit in force) or gives one back; false:
-- the total is full (or, giving back, holds no use).
CREATE FUNCTION usage_move_total(p_scope text, p_owner uuid, p_limit integer, p_delta integer) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    attempt integer;
BEGIN
    IF usage_shift(p_scope, p_owner, p_delta, false) THEN
        RETURN true;
    END IF;
    -- The slow path, one transaction per total at a time.
    PERFORM pg_advisory_xact_lock(usage_rebalance_key(p_scope, p_owner));
    FOR attempt IN 1 .. 8 LOOP
        IF usage_shift(p_scope, p_owner, p_delta, attempt > 1) THEN
            RETURN true;
        END IF;
        EXIT WHEN NOT EXISTS (SELECT 1 FROM usage_counts
            WHERE scope = p_scope AND owner_id = p_owner AND customer_id = ''
              AND (CASE WHEN p_delta > 0 THEN used < quota ELSE used > 0 END));
    END LOOP;
    IF p_delta < 0 THEN
        RETURN false;
    END IF;
    -- No quota has room: divide what the limit leaves anew (released uses come back here).
    PERFORM usage_rebalance(p_scope, p_owner, p_limit);
    RETURN usage_shift(p_scope, p_owner, p_delta, true);
END
$$;

-- Shared locks on the pools' distinct owners, in one order (no deadlock
-- with a limit change's exclusive one).
CREATE FUNCTION usage_lock_owners(p_owners uuid[]) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    o uuid;
BEGIN
    FOR o IN SELECT DISTINCT x FROM unnest(p_owners) AS x ORDER BY x LOOP
        PERFORM pg_advisory_xact_lock_shared(usage_lock_key(o));
    END LOOP;
END
$$;

-- The pools' indexes in the one order every transaction counts them in.
CREATE FUNCTION usage_order(p_scopes text[], p_owners uuid[], p_customers text[]) RETURNS SETOF integer
LANGUAGE sql IMMUTABLE AS $$
    SELECT g FROM generate_subscripts(p_scopes, 1) AS g ORDER BY p_owners[g], p_scopes[g], p_customers[g]
$$;

-- Counts one use in each pool that has a limit, or raises 'usage pool <i> is full'.
CREATE FUNCTION usage_take(p_scopes text[], p_owners uuid[], p_customers text[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    i integer;
    lim integer;
BEGIN
    PERFORM usage_lock_owners(p_owners);
    FOR i IN SELECT usage_order(p_scopes, p_owners, p_customers) LOOP
        lim := usage_limit_of(p_scopes[i], p_owners[i]);
        CONTINUE WHEN lim IS NULL;
        IF p_scopes[i] LIKE '%CUSTOMER' THEN
            INSERT INTO usage_counts AS u (scope, owner_id, customer_id, used)
            VALUES (p_scopes[i], p_owners[i], p_customers[i], 1)
            ON CONFLICT (scope, owner_id, customer_id, shard) DO UPDATE SET used = u.used + 1 WHERE u.used < lim;
        ELSE
            PERFORM 1 WHERE usage_move_total(p_scopes[i], p_owners[i], lim, 1);
        END IF;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'usage pool % is full', i USING ERRCODE = 'check_violation', CONSTRAINT = 'usage_counts_limit';
        END IF;
    END LOOP;
    RETURN coalesce(array_length(p_scopes, 1), 0);
END
$$;

-- Takes one use back from each pool that has a limit (a total's shard gives
-- its quota back with it: a rebalance hands the room out again).
CREATE FUNCTION usage_give_back(p_scopes text[], p_owners uuid[], p_customers text[]) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    i integer;
BEGIN
    PERFORM usage_lock_owners(p_owners);
    FOR i IN SELECT usage_order(p_scopes, p_owners, p_customers) LOOP
        CONTINUE WHEN usage_limit_of(p_scopes[i], p_owners[i]) IS NULL;
        IF p_scopes[i] LIKE '%CUSTOMER' THEN
            UPDATE usage_counts SET used = used - 1
            WHERE scope = p_scopes[i] AND owner_id = p_owners[i] AND customer_id = p_customers[i] AND used > 0;
            CONTINUE;
        END IF;
        PERFORM usage_move_total(p_scopes[i], p_owners[i], NULL, -1);
    END LOOP;
    RETURN coalesce(array_length(p_scopes, 1), 0);
END
$$;

-- Rebuilds the rows of one pool kind of an owner from its counted redemptions.
CREATE FUNCTION usage_recount(p_scope text, p_owner uuid, p_limit integer) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM usage_counts WHERE scope = p_scope AND owner_id = p_owner;
    INSERT INTO usage_counts (scope, owner_id, customer_id, used, quota)
    SELECT p_scope, p_owner, CASE WHEN p_scope LIKE '%CUSTOMER' THEN r.customer_id ELSE '' END, count(*),
           CASE WHEN p_scope LIKE '%CUSTOMER' THEN NULL ELSE count(*) END
    FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
    WHERE r.status = 'REDEEMED'
      AND (CASE WHEN p_scope LIKE 'PROMOTION%' THEN rp.promotion_id ELSE rp.coupon_id END) = p_owner
      AND (p_scope NOT LIKE '%CUSTOMER' OR r.customer_id IS NOT NULL)
    GROUP BY 3;
    IF p_scope NOT LIKE '%CUSTOMER' THEN
        PERFORM usage_rebalance(p_scope, p_owner, p_limit);
    END IF;
END
$$;

-- A limit that changes: wait for the uses counted under the old one (the
-- owner's lock, exclusively), then count everything when a limit appears,
-- divide a total's room anew when it moves, drop the rows when it goes.
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
        PERFORM usage_recount(total_scope, NEW.id, new_total);
    ELSIF old_total IS NOT NULL AND new_total IS NULL THEN
        DELETE FROM usage_counts WHERE scope = total_scope AND owner_id = NEW.id;
    ELSIF old_total IS DISTINCT FROM new_total THEN
        PERFORM usage_rebalance(total_scope, NEW.id, new_total);
    END IF;
    IF OLD.usage_limit_per_customer IS NULL AND NEW.usage_limit_per_customer IS NOT NULL THEN
        PERFORM usage_recount(total_scope || '_CUSTOMER', NEW.id, NEW.usage_limit_per_customer);
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
SELECT usage_recount('PROMOTION', id, total_usage_limit) FROM promotions WHERE total_usage_limit IS NOT NULL;
SELECT usage_recount('PROMOTION_CUSTOMER', id, usage_limit_per_customer) FROM promotions WHERE usage_limit_per_customer IS NOT NULL;
SELECT usage_recount('COUPON', id, usage_limit) FROM coupons
    WHERE usage_limit IS NOT NULL AND id IN (SELECT coupon_id FROM redemption_promotions);
SELECT usage_recount('COUPON_CUSTOMER', id, usage_limit_per_customer) FROM coupons
    WHERE usage_limit_per_customer IS NOT NULL AND id IN (SELECT coupon_id FROM redemption_promotions);

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
