//! Pieces every type uses: ids, connections, usage statistics.

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ID, OutputType, SimpleObject};
use uuid::Uuid;

use crate::error::AppError;
use crate::graphql::scalars::Long;
use crate::store::page::{Page, PageRequest, encode_cursor};

/// Extra fields of every connection.
#[derive(SimpleObject)]
pub struct ConnectionFields {
    /// Items matching the filter, all pages together.
    pub total_count: i32,
}

/// A Relay connection with `totalCount`.
pub type Conn<T> = Connection<String, T, ConnectionFields>;

/// Parses a GraphQL ID argument as a UUID; a malformed one is BAD_USER_INPUT on `field`.
pub fn parse_id(field: &str, id: &ID) -> Result<Uuid, AppError> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, "is not an id this service issued"))
}

/// Parses `first`/`after` into a page request.
pub fn page_request(first: Option<i32>, after: Option<String>) -> Result<PageRequest, AppError> {
    Ok(PageRequest::new(first, after.as_deref())?)
}

/// A connection from a page; `id` gives each item's cursor key.
pub fn connection<T: OutputType, U>(
    page: Page<U>,
    had_cursor: bool,
    id: impl Fn(&U) -> Uuid,
    node: impl Fn(U) -> T,
) -> Conn<T> {
    let total_count = i32::try_from(page.total_count).unwrap_or(i32::MAX);
    let mut conn = Connection::with_additional_fields(had_cursor, page.has_next_page, ConnectionFields { total_count });
    conn.edges.extend(
        page.items
            .into_iter()
            .map(|item| Edge::new(encode_cursor(id(&item)), node(item))),
    );
    conn
}

/// Redemptions and discount of a promotion or campaign.
#[derive(SimpleObject)]
pub struct UsageStats {
    /// Redemptions not released.
    pub redemptions: i32,
    /// Their discount, in minor units.
    pub discount_total: Long,
    /// The total usage limit, if any.
    pub limit: Option<i32>,
    /// limit - redemptions (never below 0), if limited.
    pub remaining: Option<i32>,
}

impl UsageStats {
    /// Stats from counts and an optional limit.
    pub fn new(redemptions: i64, discount_total: i64, limit: Option<i32>) -> Self {
        let redemptions = i32::try_from(redemptions).unwrap_or(i32::MAX);
        Self {
            redemptions,
            discount_total: Long(discount_total),
            limit,
            remaining: limit.map(|l| (l - redemptions).max(0)),
        }
    }
}
