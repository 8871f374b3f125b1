//! The test databases (each a copy of a migrated template) and Redis
//! prefixes, and raw SQL on them.

use super::*;

/// The PostgreSQL server the tests use (its `postgres` database administers).
pub(super) fn server_url() -> String {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    // Keep the server part; the database name is the tests' business.
    let base = url.split('?').next().unwrap_or(&url);
    match base.rfind('/') {
        Some(i) if i > "postgres://".len() => base[..i].to_owned(),
        _ => base.to_owned(),
    }
}

pub(super) fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub(super) const LOCK_KEY: i64 = 0x7072_6f6d_6f73; // "promos"
pub(super) const TEST_DB_PREFIX: &str = "promotions_test_";
/// Test databases older than this are dropped by the next run (a crashed
/// run leaves its databases behind; nothing else cleans them).
pub(super) const STALE_AFTER_SECS: u64 = 1800;

pub(super) fn template_name() -> String {
    // The template changes whenever the migration list or any migration's
    // source does (an edited migration must not meet a stale template).
    let mut text: String = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect::<Vec<_>>()
        .join(",");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migration/src");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("the migration sources")
        .map(|e| e.expect("a migration source").path())
        .collect();
    files.sort();
    for file in files {
        text.push_str(&std::fs::read_to_string(&file).expect("a readable migration source"));
    }
    let digest = text
        .bytes()
        .fold(0xcbf29ce484222325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100000001b3));
    format!("promotions_tpl_{digest:016x}")
}

pub(super) async fn exec(db: &DatabaseConnection, sql: &str) {
    db.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

pub(super) async fn database_names(db: &DatabaseConnection, like: &str) -> Vec<String> {
    db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        "SELECT datname FROM pg_database WHERE datname LIKE $1",
        [like.into()],
    ))
    .await
    .expect("list databases")
    .iter()
    .map(|row| row.try_get::<String>("", "datname").expect("datname"))
    .collect()
}

/// Creates a fresh database copied from the migrated template (building the
/// template once per migration list, under an advisory lock shared by all
/// test processes) and returns its URL.
pub(super) async fn fresh_database() -> String {
    let server = server_url();
    let mut options = ConnectOptions::new(format!("{server}/postgres"));
    options.max_connections(1).sqlx_logging(false);
    let admin = Database::connect(options)
        .await
        .expect("cannot reach PostgreSQL for the tests: set DATABASE_URL (see README) or run scripts/test");
    exec(&admin, &format!("SELECT pg_advisory_lock({LOCK_KEY})")).await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs();
    for name in database_names(&admin, &format!("{TEST_DB_PREFIX}%")).await {
        let born: u64 = name[TEST_DB_PREFIX.len()..]
            .split('_')
            .next()
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        if now.saturating_sub(born) > STALE_AFTER_SECS {
            exec(&admin, &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
        }
    }
    let template = template_name();
    if database_names(&admin, &template).await.is_empty() {
        let building = format!("{template}_building");
        exec(&admin, &format!("DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)")).await;
        exec(&admin, &format!("CREATE DATABASE \"{building}\"")).await;
        let db = Database::connect(format!("{server}/{building}"))
            .await
            .expect("connect to the template");
        Migrator::up(&db, None).await.expect("migrate the template");
        db.close().await.expect("close the template");
        exec(
            &admin,
            &format!("ALTER DATABASE \"{building}\" RENAME TO \"{template}\""),
        )
        .await;
    }
    let name = format!("{TEST_DB_PREFIX}{now}_{}", Uuid::now_v7().simple());
    exec(&admin, &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"")).await;
    exec(&admin, &format!("SELECT pg_advisory_unlock({LOCK_KEY})")).await;
    admin.close().await.expect("close the admin connection");
    format!("{server}/{name}")
}

/// A fresh database's URL, for tests that run the binary themselves.
pub async fn fresh_database_url() -> String {
    fresh_database().await
}

/// The shared Redis's URL (a node, or a cluster when REDIS_URL names one).
pub fn shared_redis_url() -> String {
    redis_url()
}

/// A connection to the Redis at `url`, made as the service makes its own
/// (a node or a cluster, discovered).
pub async fn redis_connection(url: &str) -> promotions::redis_conn::RedisConn {
    promotions::redis_conn::RedisTarget::discover(url)
        .await
        .expect("Redis answers")
        .connect()
        .await
        .expect("connect to Redis")
}

/// The one number a query on `db` answers (a count, a sum).
pub async fn db_scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    let row = db
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .expect("the query runs")
        .expect("one row");
    row.try_get_by_index::<i64>(0).expect("a number")
}

/// A Redis key prefix of a test's own.
pub fn fresh_prefix() -> String {
    format!("test:{}:", Uuid::now_v7().simple())
}

/// How many `usage_counts` rows differ from the counted redemptions of
/// their pool (0: PostgreSQL's counts are its truth).
pub const USAGE_DRIFT_SQL: &str = "SELECT count(*) FROM (
    SELECT scope, owner_id, customer_id, sum(used) AS used FROM usage_counts GROUP BY 1, 2, 3) u
  WHERE u.used <> (
    SELECT count(*) FROM redemption_promotions rp JOIN redemptions r ON r.id = rp.redemption_id
    WHERE r.status = 'REDEEMED'
      AND (CASE WHEN u.scope LIKE 'PROMOTION%' THEN rp.promotion_id ELSE rp.coupon_id END) = u.owner_id
      AND (u.scope NOT LIKE '%CUSTOMER' OR r.customer_id = u.customer_id))";

/// Rows of a raw SQL query on the app's database.
pub async fn rows(app: &TestApp, sql: &str) -> Vec<sea_orm::QueryResult> {
    app.db
        .query_all_raw(Statement::from_string(DbBackend::Postgres, sql))
        .await
        .unwrap()
}
