//! The error policy of the service.
//!
//! Every failure a client can see is an [`AppError`]; each variant says the
//! GraphQL `extensions.code` it becomes and the HTTP status it has where it
//! refuses a whole request (authentication, rate limit, a body that is not
//! GraphQL, the CSV export): one rendering, [`AppError::parts`], for both.
//! No error code is written anywhere else. Input problems name the
//! offending input path in `extensions.field`. Infrastructure failures convert with
//! `From` and become UNAVAILABLE (a dependency is unreachable: retry later)
//! or INTERNAL (a bug or corrupt data). Both keep the error that caused
//! them ([`Cause`]) and are logged once, here, with what was being done and
//! every cause of the chain; the client gets a generic message and the
//! trace id.
//!
//! A rejected business rule in a cart (expired coupon, limit reached) is not
//! an error: it is data in `PromotionResult.rejected`.
//!
//! `AppError` deliberately has no `Display`: that keeps async-graphql's
//! blanket `From<T: Display>` away, so `?` in a resolver always goes
//! through [`From<AppError> for async_graphql::Error`] and never loses the code.

use std::time::Duration;

use async_graphql::ErrorExtensions;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};

use crate::domain::Invalid;

/// The code of errors async-graphql raises itself (it gives only a
/// message): see `graphql::ensure_codes`.
pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";

/// A failure, as the client will see it.
#[derive(Debug)]
pub enum AppError {
    /// BAD_USER_INPUT, 400: the input breaks a rule; `field` names it
    /// (None: the request as a whole, such as a body that is not JSON).
    BadInput { field: Option<String>, message: String },
    /// BAD_USER_INPUT, 413: the request body is larger than MAX_BODY_BYTES.
    TooLarge(String),
    /// UNAUTHENTICATED, 401 with `WWW-Authenticate: Bearer`: no valid token.
    Unauthenticated(String),
    /// FORBIDDEN, 403: the token's role may not do this.
    Forbidden(String),
    /// NOT_FOUND, 404: the request named something that does not exist.
    NotFound { field: String, message: String },
    /// CONFLICT, 409: the change collides with stored data (duplicate code,
    /// a move the current state does not allow).
    Conflict { field: Option<String>, message: String },
    /// RATE_LIMITED, 429 (with `Retry-After` and `extensions.retryAfter`
    /// when known): too many requests or sockets.
    RateLimited {
        message: String,
        retry_after: Option<Duration>,
    },
    /// UNAVAILABLE, 503: PostgreSQL or Redis cannot be reached; nothing was changed.
    Unavailable(Cause),
    /// INTERNAL, 500: a bug or stored data that fails to decode; logged, generic to the client.
    Internal(Cause),
}

/// What an infrastructure failure was: what was being done, and the error
/// that stopped it with its own causes, logged once, together.
#[derive(Debug)]
pub struct Cause {
    context: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Cause {
    /// A failure with no error behind it (a broken expectation).
    pub fn new(context: impl Into<String>) -> Self {
        Self {
            context: context.into(),
            source: None,
        }
    }

    /// A failure caused by `source`, whose own causes are kept.
    pub fn of(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            context: context.into(),
            source: Some(Box::new(source)),
        }
    }

    /// The context and every cause, outermost first: `context: cause: cause ...`.
    pub fn chain(&self) -> String {
        let mut text = self.context.clone();
        let mut next: Option<&(dyn std::error::Error + 'static)> = self.source.as_deref().map(|e| e as _);
        while let Some(error) = next {
            let message = error.to_string();
            // Some errors repeat their source's message in their own.
            if !text.ends_with(&message) {
                text.push_str(": ");
                text.push_str(&message);
            }
            next = error.source();
        }
        text
    }
}

/// An error as the client sees it: code, message and extensions.
pub struct Parts {
    pub code: &'static str,
    pub message: String,
    pub field: Option<String>,
    pub retry_after: Option<Duration>,
    pub trace_id: Option<String>,
}

impl AppError {
    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadInput { .. } | AppError::TooLarge(_) => BAD_USER_INPUT,
            AppError::Unauthenticated(_) => "UNAUTHENTICATED",
            AppError::Forbidden(_) => "FORBIDDEN",
            AppError::NotFound { .. } => "NOT_FOUND",
            AppError::Conflict { .. } => "CONFLICT",
            AppError::RateLimited { .. } => "RATE_LIMITED",
            AppError::Unavailable(_) => "UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// The HTTP status of a request this error refuses as a whole.
    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadInput { .. } => StatusCode::BAD_REQUEST,
            AppError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound { .. } => StatusCode::NOT_FOUND,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// BAD_USER_INPUT on `field`.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// NOT_FOUND on `field`.
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::NotFound {
            field: field.into(),
            message: message.into(),
        }
    }

    /// INTERNAL with no error behind it (a broken expectation).
    pub fn internal(context: impl Into<String>) -> Self {
        AppError::Internal(Cause::new(context))
    }

    /// INTERNAL caused by `source` (its causes are kept and logged).
    pub fn internal_from(context: impl Into<String>, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        AppError::Internal(Cause::of(context, source))
    }

    /// UNAVAILABLE: `context` says what could not be done now.
    pub fn unavailable(context: impl Into<String>) -> Self {
        AppError::Unavailable(Cause::new(context))
    }

    /// For logs of background work: an infrastructure failure with every
    /// cause, else the code.
    pub fn into_cause(self) -> String {
        match self {
            AppError::Unavailable(cause) | AppError::Internal(cause) => cause.chain(),
            other => other.code().to_owned(),
        }
    }

    /// A stored row that cannot be decoded: INTERNAL, naming the row.
    pub fn corrupt_row(table: &str, id: impl std::fmt::Display, why: impl std::fmt::Display) -> Self {
        AppError::internal(format!("stored row {table}/{id} cannot be decoded: {why}"))
    }

    /// What the client sees; an infrastructure failure is logged here, once,
    /// with its cause, and the client gets a generic message and the trace id.
    pub fn parts(self) -> Parts {
        let code = self.code();
        let mut retry = None;
        let (message, field) = match self {
            AppError::BadInput { field, message } | AppError::Conflict { field, message } => (message, field),
            AppError::NotFound { field, message } => (message, Some(field)),
            AppError::TooLarge(message) | AppError::Unauthenticated(message) | AppError::Forbidden(message) => {
                (message, None)
            }
            AppError::RateLimited { message, retry_after } => {
                retry = retry_after;
                (message, None)
            }
            AppError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause.chain(), "dependency unavailable");
                (
                    "a dependency is unavailable, nothing was changed; retry later".to_owned(),
                    None,
                )
            }
            AppError::Internal(cause) => {
                tracing::error!(error.cause = %cause.chain(), "internal error");
                ("internal error".to_owned(), None)
            }
        };
        let message = match &field {
            Some(f) if code == BAD_USER_INPUT => format!("{f}: {message}"),
            _ => message,
        };
        let trace_id = matches!(code, "INTERNAL" | "UNAVAILABLE")
            .then(crate::telemetry::current_trace_id)
            .flatten();
        Parts {
            code,
            message,
            field,
            retry_after: retry,
            trace_id,
        }
    }
}

/// `retryAfter` in seconds, as the extensions carry it (at least 1 ms).
fn seconds(retry_after: Duration) -> f64 {
    retry_after.as_secs_f64().max(0.001)
}

impl From<Invalid> for AppError {
    fn from(invalid: Invalid) -> Self {
        AppError::bad_input(invalid.field, invalid.message)
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                AppError::Unavailable(Cause::of("PostgreSQL is unavailable", err))
            }
            _ => AppError::internal_from("database error", err),
        }
    }
}

/// Whether `err` says Redis does not serve (unreachable, timing out, a
/// cluster down or failing over, loading, read-only, out of memory), as
/// opposed to refusing one request.
pub fn redis_unavailable(err: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_cluster_error()
        || err.code() == Some("OOM")
        || matches!(
            err.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly
                )
        )
}

impl From<redis::RedisError> for AppError {
    fn from(err: redis::RedisError) -> Self {
        if redis_unavailable(&err) {
            AppError::Unavailable(Cause::of("Redis is unavailable", err))
        } else {
            AppError::internal_from("Redis error", err)
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let parts = err.parts();
        async_graphql::Error::new(parts.message).extend_with(|_, ext| {
            ext.set("code", parts.code);
            if let Some(field) = &parts.field {
                ext.set("field", field.as_str());
            }
            if let Some(retry_after) = parts.retry_after {
                ext.set("retryAfter", seconds(retry_after));
            }
            if let Some(trace_id) = &parts.trace_id {
                ext.set("traceId", trace_id.as_str());
            }
        })
    }
}

/// A request refused as a whole: the error's status and
/// `{"errors": [{message, extensions}]}`, as a GraphQL response would hold it.
impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let parts = self.parts();
        let mut extensions = serde_json::json!({ "code": parts.code });
        if let Some(field) = &parts.field {
            extensions["field"] = field.as_str().into();
        }
        if let Some(retry_after) = parts.retry_after {
            extensions["retryAfter"] = seconds(retry_after).into();
        }
        if let Some(trace_id) = &parts.trace_id {
            extensions["traceId"] = trace_id.as_str().into();
        }
        let body = serde_json::json!({ "errors": [{ "message": parts.message, "extensions": extensions }] });
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(retry_after) = parts.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
        }
        response
    }
}

/// Shorthand for results of use cases.
pub type AppResult<T> = Result<T, AppError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection reset")]
    struct Reset;

    #[derive(Debug, thiserror::Error)]
    #[error("query failed")]
    struct Query(#[source] Reset);

    #[test]
    fn an_internal_error_keeps_every_cause_and_the_client_sees_none() {
        let error = AppError::internal_from("recording a redemption", Query(Reset));
        let AppError::Internal(cause) = &error else {
            panic!("not internal")
        };
        assert_eq!(cause.chain(), "recording a redemption: query failed: connection reset");
        let parts = error.parts();
        assert_eq!((parts.code, parts.message.as_str()), ("INTERNAL", "internal error"));
        assert_eq!(parts.field, None);
    }
}
