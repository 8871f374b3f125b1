//! The error policy of the service.
//!
//! Every failure a client can see is an [`AppError`]; each variant says the
//! GraphQL `extensions.code` it becomes. Input problems name the offending
//! input path in `extensions.field`. Infrastructure failures convert with
//! `From` and become UNAVAILABLE (a dependency is unreachable: retry later)
//! or INTERNAL (a bug or corrupt data): both are logged once, here, with
//! their cause chain, and the client gets a generic message.
//!
//! A rejected business rule in a cart (expired coupon, limit reached) is not
//! an error: it is data in `PromotionResult.rejected`.
//!
//! `AppError` deliberately has no `Display`: that keeps async-graphql's
//! blanket `From<T: Display>` away, so `?` in a resolver always goes
//! through [`From<AppError> for async_graphql::Error`] and never loses the code.

use async_graphql::ErrorExtensions;

use crate::domain::Invalid;

/// A failure, as the client will see it.
#[derive(Debug)]
pub enum AppError {
    /// BAD_USER_INPUT: the input breaks a rule; `field` names it.
    BadInput { field: String, message: String },
    /// NOT_FOUND: a mutation named something that does not exist.
    NotFound { field: String, message: String },
    /// CONFLICT: the change collides with stored data (duplicate code, a move
    /// the current state does not allow).
    Conflict { field: Option<String>, message: String },
    /// UNAVAILABLE: PostgreSQL or Redis cannot be reached; nothing was changed.
    Unavailable(String),
    /// INTERNAL: a bug or stored data that fails to decode; logged, generic to the client.
    Internal(String),
}

impl AppError {
    /// The `extensions.code` of this error.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::BadInput { .. } => "BAD_USER_INPUT",
            AppError::NotFound { .. } => "NOT_FOUND",
            AppError::Conflict { .. } => "CONFLICT",
            AppError::Unavailable(_) => "UNAVAILABLE",
            AppError::Internal(_) => "INTERNAL",
        }
    }

    /// BAD_USER_INPUT on `field`.
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::BadInput {
            field: field.into(),
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

    /// For logs of background work: the cause of an infrastructure failure, else the code.
    pub fn into_cause(self) -> String {
        match self {
            AppError::Unavailable(cause) | AppError::Internal(cause) => cause,
            other => other.code().to_owned(),
        }
    }

    /// A stored row that cannot be decoded: INTERNAL, naming the row.
    pub fn corrupt_row(table: &str, id: impl std::fmt::Display, why: impl std::fmt::Display) -> Self {
        AppError::Internal(format!("stored row {table}/{id} cannot be decoded: {why}"))
    }
}

impl From<Invalid> for AppError {
    fn from(invalid: Invalid) -> Self {
        AppError::BadInput {
            field: invalid.field,
            message: invalid.message,
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        use sea_orm::DbErr;
        match &err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
                AppError::Unavailable(format!("PostgreSQL is unavailable: {err}"))
            }
            _ => AppError::Internal(format!("database error: {err}")),
        }
    }
}

impl From<redis::RedisError> for AppError {
    fn from(err: redis::RedisError) -> Self {
        if err.is_io_error() || err.is_connection_dropped() || err.is_connection_refusal() || err.is_timeout() {
            AppError::Unavailable(format!("Redis is unavailable: {err}"))
        } else {
            AppError::Internal(format!("Redis error: {err}"))
        }
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        let code = err.code();
        let (message, field) = match err {
            AppError::BadInput { field, message } | AppError::NotFound { field, message } => (message, Some(field)),
            AppError::Conflict { field, message } => (message, field),
            AppError::Unavailable(cause) => {
                tracing::warn!(error.cause = %cause, "dependency unavailable");
                (
                    "a dependency is unavailable, nothing was changed; retry later".to_owned(),
                    None,
                )
            }
            AppError::Internal(cause) => {
                tracing::error!(error.cause = %cause, "internal error");
                ("internal error".to_owned(), None)
            }
        };
        let message = match &field {
            Some(f) if code == "BAD_USER_INPUT" => format!("{f}: {message}"),
            _ => message,
        };
        let trace_id = matches!(code, "INTERNAL" | "UNAVAILABLE")
            .then(crate::telemetry::current_trace_id)
            .flatten();
        async_graphql::Error::new(message).extend_with(|_, ext| {
            ext.set("code", code);
            if let Some(field) = field {
                ext.set("field", field);
            }
            if let Some(trace_id) = trace_id {
                ext.set("traceId", trace_id);
            }
        })
    }
}

/// Shorthand for results of use cases.
pub type AppResult<T> = Result<T, AppError>;
