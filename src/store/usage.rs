//! Usage counts as PostgreSQL keeps them (`usage_counts`; the migration
//! `count_usage` says how they stay exact): reads for seeding and previews,
//! and the pool arrays the redemption statements pass to `usage_take` and
//! `usage_give_back`.

use sea_orm::{ConnectionTrait, DbBackend, Statement, Value};

use crate::domain::usage::Pool;
use crate::error::AppResult;

/// Counted uses of a pool (0 when it has no row): one indexed read of at
/// most 8 rows (a total's shards), whatever its limit or its uses.
pub async fn used(db: &impl ConnectionTrait, pool: &Pool) -> AppResult<i64> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT COALESCE(sum(used), 0)::bigint AS used FROM usage_counts \
             WHERE scope = $1 AND owner_id = $2 AND customer_id = $3",
            [pool.scope.as_str().into(), pool.owner.into(), pool.customer_id().into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get::<i64>("", "used")).transpose()?.unwrap_or(0))
}

/// The pool's limit in force now (None: none), whatever a snapshot says.
pub async fn limit_in_force(db: &impl ConnectionTrait, pool: &Pool) -> AppResult<Option<i32>> {
    let row = db
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT usage_limit_of($1, $2) AS lim",
            [pool.scope.as_str().into(), pool.owner.into()],
        ))
        .await?;
    Ok(row.map(|r| r.try_get::<Option<i32>>("", "lim")).transpose()?.flatten())
}

/// `pools` as the three arrays (scopes, owners, customers) the SQL functions take.
pub fn arrays(pools: &[Pool]) -> [Value; 3] {
    [
        pools
            .iter()
            .map(|p| p.scope.as_str().to_owned())
            .collect::<Vec<_>>()
            .into(),
        pools.iter().map(|p| p.owner).collect::<Vec<_>>().into(),
        pools
            .iter()
            .map(|p| p.customer_id().to_owned())
            .collect::<Vec<_>>()
            .into(),
    ]
}
