//! `GET /coupon-batches/{id}/codes.csv`: a batch's codes as CSV (one `code`
//! column, oldest first), streamed page by page so memory stays bounded
//! whatever the batch size. Admins only (a bearer token, as the admin API),
//! and rate limited as a GraphQL request is.

use std::sync::Arc;

use async_graphql::futures_util::Stream;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use super::caller_of;
use super::rate_limit::RateLimiter;
use crate::auth::{Role, Verifier};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::coupon_batches;

/// Codes fetched per query.
const PAGE: i64 = 5_000;

/// The export route.
pub fn routes(state: AppState, verifier: Arc<Verifier>, limiter: Arc<RateLimiter>) -> Router {
    Router::new()
        .route("/coupon-batches/{id}/codes.csv", get(codes_csv))
        .with_state(Arc::new(Export {
            db: state.db,
            verifier,
            limiter,
        }))
}

/// What the export needs.
struct Export {
    db: DatabaseConnection,
    verifier: Arc<Verifier>,
    limiter: Arc<RateLimiter>,
}

async fn codes_csv(State(export): State<Arc<Export>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let caller = match caller_of(&export.verifier, &headers).await {
        Err(refused) => return refused.into_response(),
        Ok(caller) if caller.role != Role::Admin => {
            return AppError::Forbidden("only admins may export codes".into()).into_response();
        }
        Ok(caller) => caller,
    };
    if let Err(refused) = export.limiter.admit(&caller, 1).await {
        return AppError::from(refused).into_response();
    }
    let db = export.db.clone();
    let Ok(id) = id.parse::<Uuid>() else {
        return AppError::bad_input("id", "not a batch id").into_response();
    };
    match coupon_batches::find(&db, id).await {
        Ok(Some(_)) => {}
        Ok(None) => return AppError::not_found("id", format!("no coupon batch with id {id}")).into_response(),
        Err(e) => {
            tracing::warn!(error = %e.into_cause(), "coupon export failed");
            return AppError::unavailable("the codes cannot be read now; retry later").into_response();
        }
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"coupons-{id}.csv\""),
            ),
        ],
        Body::from_stream(csv_rows(db, id)),
    )
        .into_response()
}

/// The header, then one line per code, a page per chunk.
fn csv_rows(db: DatabaseConnection, id: Uuid) -> impl Stream<Item = Result<Bytes, std::io::Error>> {
    async_stream::try_stream! {
        yield Bytes::from_static(b"code\n");
        let mut after = None;
        loop {
            let page = coupon_batches::codes(&db, id, after, PAGE)
                .await
                .map_err(|e| std::io::Error::other(e.into_cause()))?;
            let Some((last, _)) = page.last() else { break };
            after = Some(*last);
            let mut chunk = String::with_capacity(page.len() * 24);
            for (_, code) in &page {
                chunk.push_str(code);
                chunk.push('\n');
            }
            yield Bytes::from(chunk);
            if i64::try_from(page.len()).unwrap_or(0) < PAGE {
                break;
            }
        }
    }
}
