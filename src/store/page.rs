//! Relay-style forward pagination in SQL: newest first by id (UUIDv7 ids
//! are time-ordered), keyset on the id, `first + 1` ids to know whether a
//! next page exists (then the rows of those ids), and a COUNT with the same filter for `totalCount`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
    Select, Statement, Value,
};
use uuid::Uuid;

use crate::domain::Invalid;

/// Default page size when `first` is not given.
pub const DEFAULT_PAGE_SIZE: u64 = 20;
/// Largest page size.
pub const MAX_PAGE_SIZE: u64 = 500;

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// How many items, 0..=[`MAX_PAGE_SIZE`].
    pub first: u64,
    /// Items strictly after (older than) this id.
    pub after: Option<Uuid>,
}

impl PageRequest {
    /// Parses `first` and `after`; errors name the argument.
    pub fn new(first: Option<i32>, after: Option<&str>) -> Result<Self, Invalid> {
        let first = match first {
            None => DEFAULT_PAGE_SIZE,
            Some(n) if (0..=MAX_PAGE_SIZE as i32).contains(&n) => n as u64,
            Some(_) => {
                return Err(Invalid::new("first", format!("must be between 0 and {MAX_PAGE_SIZE}")));
            }
        };
        let after = after.map(decode_cursor).transpose()?;
        Ok(Self { first, after })
    }
}

/// One page of items.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// At most `first` items, newest first.
    pub items: Vec<T>,
    /// Whether items exist after the last one.
    pub has_next_page: bool,
    /// Items matching the filter, all pages together.
    pub total_count: u64,
}

impl<T> Page<T> {
    /// The same page with each item converted (e.g. decoded).
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            has_next_page: self.has_next_page,
            total_count: self.total_count,
        })
    }
}

/// The opaque cursor of an item.
pub fn encode_cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(id.as_bytes())
}

fn decode_cursor(cursor: &str) -> Result<Uuid, Invalid> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| Invalid::new("after", "is not a cursor this service issued"))
}

/// Runs `select` (already filtered) as one page, ordered by `id` descending.
pub async fn fetch<E, C>(db: &C, select: Select<E>, id: E::Column, page: PageRequest) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    // Ids only: the filter and the order are answered from indexes alone,
    // without reading every row the keyset walk passes over.
    let count = select.clone().select_only().column(id).count(db);
    let mut ids_query = select.clone().select_only().column(id);
    if let Some(after) = page.after {
        ids_query = ids_query.filter(id.lt(after));
    }
    let ids = ids_query
        .order_by_desc(id)
        .limit(page.first + 1)
        .into_tuple::<Uuid>()
        .all(db);
    // The count and the page run at once (on two pooled connections).
    let (total_count, ids) = tokio::try_join!(count, ids)?;
    rows_of::<E, C>(db, ids, id, page, total_count).await
}

/// The page of rows for up to `first + 1` ids (the extra one only says a
/// next page exists), newest first.
async fn rows_of<E, C>(
    db: &C,
    mut ids: Vec<Uuid>,
    id: E::Column,
    page: PageRequest,
    total_count: u64,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    let has_next_page = ids.len() as u64 > page.first;
    ids.truncate(page.first as usize);
    let items = if ids.is_empty() {
        Vec::new()
    } else {
        E::find().filter(id.is_in(ids)).order_by_desc(id).all(db).await?
    };
    Ok(Page {
        items,
        has_next_page,
        total_count,
    })
}

/// One page of the rows whose ids `ids_sql` (with its `values`) selects as
/// column `id`: the count and the page of ids come from that statement alone,
/// then the page's rows by id.
pub async fn fetch_by_ids<E, C>(
    db: &C,
    (ids_sql, values): (String, Vec<Value>),
    id: E::Column,
    page: PageRequest,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Send + Sync,
    C: ConnectionTrait,
{
    let count_sql = format!("SELECT count(*) AS n FROM ({ids_sql}) ids");
    let count = db.query_one_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        count_sql,
        values.clone(),
    ));
    let mut page_values = values.clone();
    let after = match page.after {
        Some(after) => {
            page_values.push(after.into());
            format!("WHERE ids.id < ${}", page_values.len())
        }
        None => String::new(),
    };
    let page_sql = format!(
        "SELECT ids.id FROM ({ids_sql}) ids {after} ORDER BY ids.id DESC LIMIT {}",
        page.first + 1
    );
    let ids = db.query_all_raw(Statement::from_sql_and_values(
        DbBackend::Postgres,
        page_sql,
        page_values,
    ));
    let (count, rows) = tokio::try_join!(count, ids)?;
    let total_count: i64 = match count {
        Some(row) => row.try_get("", "n")?,
        None => 0,
    };
    let ids: Vec<Uuid> = rows.iter().map(|r| r.try_get("", "id")).collect::<Result<_, _>>()?;
    rows_of::<E, C>(db, ids, id, page, u64::try_from(total_count).unwrap_or(0)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_rejected_on_after() {
        let id = Uuid::now_v7();
        let page = PageRequest::new(Some(5), Some(&encode_cursor(id))).unwrap();
        assert_eq!(page.after, Some(id));
        assert_eq!(PageRequest::new(None, Some("nope!")).unwrap_err().field, "after");
    }

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(PageRequest::new(None, None).unwrap().first, DEFAULT_PAGE_SIZE);
        assert_eq!(PageRequest::new(Some(0), None).unwrap().first, 0);
        assert_eq!(PageRequest::new(Some(-1), None).unwrap_err().field, "first");
        assert_eq!(PageRequest::new(Some(501), None).unwrap_err().field, "first");
    }
}
