//! A total's count spreads over up to 64 shard rows (was 8).
//!
//! Each shard is held by the transaction that counts in it until that
//! commits. With 8 shards and 32 concurrent checkouts of one promotion,
//! 24 found every shard with room taken and queued on the total's
//! rebalance lock (pg_stat_activity: `Lock:advisory` for 24 of 32
//! backends in `scripts/bench-apply`'s pgbench); with 64, a taker nearly
//! always finds a free shard and the count is no longer the bottleneck.
//! A rebalance touches at most 64 rows, whatever the limit, and a read of
//! a count sums at most 64 rows. Existing totals are divided anew here.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The wider check, both functions that know the shard count, and every
/// existing total divided anew (coupons only where they already count).
const UP: &str = r#"
ALTER TABLE usage_counts DROP CONSTRAINT usage_counts_shard_check;
ALTER TABLE usage_counts ADD CONSTRAINT usage_counts_shard_check CHECK (shard BETWEEN 0 AND 63);

CREATE OR REPLACE FUNCTION usage_rebalance(p_scope text, p_owner uuid, p_limit integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    n integer := least(64, greatest(p_limit, 1));
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

CREATE OR REPLACE FUNCTION usage_shift(p_scope text, p_owner uuid, p_delta integer, p_wait boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
DECLARE
    start integer := floor(random() * 64)::integer;
    target tid;
BEGIN
    IF p_wait THEN
        SELECT ctid INTO target FROM usage_counts
        WHERE scope = p_scope AND owner_id = p_owner AND customer_id = ''
          AND (CASE WHEN p_delta > 0 THEN used < quota ELSE used > 0 END)
        ORDER BY (shard + start) % 64 LIMIT 1 FOR UPDATE;
    ELSE
        SELECT ctid INTO target FROM usage_counts
        WHERE scope = p_scope AND owner_id = p_owner AND customer_id = ''
          AND (CASE WHEN p_delta > 0 THEN used < quota ELSE used > 0 END)
        ORDER BY (shard + start) % 64 LIMIT 1 FOR UPDATE SKIP LOCKED;
    END IF;
    IF target IS NULL THEN
        RETURN false;
    END IF;
    -- A give-back returns the shard's quota too: the next division hands it out.
    UPDATE usage_counts SET used = used + p_delta, quota = quota + least(p_delta, 0) WHERE ctid = target;
    RETURN true;
END
$$;

SELECT usage_rebalance('PROMOTION', id, total_usage_limit) FROM promotions WHERE total_usage_limit IS NOT NULL;
SELECT usage_rebalance('COUPON', c.id, c.usage_limit) FROM coupons c
    WHERE c.usage_limit IS NOT NULL AND EXISTS (SELECT 1 FROM usage_counts u WHERE u.scope = 'COUPON' AND u.owner_id = c.id);
"#;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(manager, UP).await
    }

    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Err(DbErr::Migration(
            "shards 8 to 63 hold counts; narrowing would lose them".into(),
        ))
    }
}
