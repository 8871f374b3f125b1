//! Persistence: the PostgreSQL pool, migrations, and one repository module
//! per aggregate. Repositories are functions over `&impl ConnectionTrait`, so
//! the caller decides the transaction; they decode rows into domain types
//! and turn a row that does not decode into an error naming it.

pub mod campaigns;
pub mod changes;
pub mod coupon_batches;
pub mod coupons;
pub mod entities;
pub mod expiry;
pub mod outbox;
pub mod page;
pub mod promotions;
mod redemption_result;
pub mod redemptions;
pub mod usage;

use std::time::Duration;

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};

use crate::error::AppError;

/// Opens the pool, creating the database first when the server has none of
/// that name (so a fresh machine needs no manual `createdb`).
pub async fn connect(url: &str, max_connections: u32) -> Result<DatabaseConnection, DbErr> {
    let options = |url: &str| {
        let mut options = ConnectOptions::new(url.to_owned());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(5))
            .acquire_timeout(Duration::from_secs(5))
            .sqlx_logging(false);
        options
    };
    match Database::connect(options(url)).await {
        Err(err) if err.to_string().contains("does not exist") => {
            let (server_url, name) = split_database_name(url)
                .ok_or_else(|| DbErr::Custom(format!("DATABASE_URL names no database: {url}")))?;
            let server = Database::connect(options(&server_url)).await?;
            let quoted = format!("\"{}\"", name.replace('"', "\"\""));
            match server.execute_unprepared(&format!("CREATE DATABASE {quoted}")).await {
                // Another process may have created it meanwhile.
                Err(e) if !e.to_string().contains("already exists") => return Err(e),
                _ => {}
            }
            server.close().await?;
            tracing::info!(database = %name, "created the database");
            Database::connect(options(url)).await
        }
        other => other,
    }
}

/// `postgres://h/db?x` -> (`postgres://h/postgres?x`, `db`).
fn split_database_name(url: &str) -> Option<(String, String)> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let slash = base.rfind('/').filter(|i| *i > "postgres://".len())?;
    let name = &base[slash + 1..];
    if name.is_empty() {
        return None;
    }
    let mut server = format!("{}/postgres", &base[..slash]);
    if let Some(q) = query {
        server.push('?');
        server.push_str(q);
    }
    Some((server, name.to_owned()))
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// How many migrations this binary knows that the database has not applied.
pub async fn pending_migrations(db: &DatabaseConnection) -> Result<usize, DbErr> {
    Ok(Migrator::get_pending_migrations(db).await?.len())
}

/// A unique index the API reports as CONFLICT on an input field.
pub(crate) struct UniqueKey {
    /// The index or constraint, as the migration names it.
    pub constraint: &'static str,
    /// The input path the clash is reported on.
    pub field: &'static str,
}

/// The one mapping of unique violations: a violation of one of `keys`
/// becomes CONFLICT on that key's field with `message`; any other error
/// converts as usual (a violation of an index nobody named is a bug:
/// INTERNAL). The constraint's name comes from PostgreSQL's error fields,
/// not from parsing its message.
pub(crate) fn conflict_on(err: DbErr, keys: &[UniqueKey], message: impl FnOnce() -> String) -> AppError {
    use sea_orm::RuntimeErr;
    use sea_orm::sqlx::Error as SqlxError;
    let violated = match &err {
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => match e.as_ref() {
            SqlxError::Database(e) if e.is_unique_violation() => e.constraint(),
            _ => None,
        },
        _ => None,
    };
    match violated.and_then(|name| keys.iter().find(|k| k.constraint == name)) {
        Some(key) => AppError::Conflict {
            field: Some(key.field.to_owned()),
            message: message(),
        },
        None => err.into(),
    }
}

/// Checks that PostgreSQL answers (one trivial statement).
pub async fn ping(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Escapes `%`, `_` and `\` so user text matches literally inside ILIKE.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('%');
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_url_keeps_host_and_options() {
        assert_eq!(
            split_database_name("postgres://u@h:5432/promo?sslmode=disable"),
            Some((
                "postgres://u@h:5432/postgres?sslmode=disable".to_owned(),
                "promo".to_owned()
            ))
        );
        assert_eq!(split_database_name("postgres://u@h:5432"), None);
    }

    #[test]
    fn like_patterns_match_wildcards_literally() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
