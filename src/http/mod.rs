//! The HTTP surface: GraphQL (POST /graphql, GraphiQL on GET), health
//! endpoints, and the layers every request goes through (body limit, tracing).

pub mod health;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::rejection::GraphQLRejection;
use async_graphql_axum::{GraphQLBatchRequest, GraphQLResponse, GraphQLSubscription};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Json, Response};
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::config::ServeConfig;
use crate::graphql::AppSchema;

/// The router of the whole service.
pub fn router(state: AppState, schema: AppSchema, serve: &ServeConfig) -> Router {
    let graphql = if serve.graphiql {
        get(graphiql).post(execute)
    } else {
        post(execute)
    };
    Router::new()
        .route_service("/graphql/ws", GraphQLSubscription::new(schema.clone()))
        .route("/graphql", graphql)
        .with_state(schema)
        .merge(health::routes(state))
        .layer(RequestBodyLimitLayer::new(serve.max_body_bytes))
        .layer(TraceLayer::new_for_http())
}

async fn graphiql() -> impl IntoResponse {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .finish(),
    )
}

/// Executes a GraphQL request (or batch); every error leaves with a code.
async fn execute(State(schema): State<AppSchema>, request: Result<GraphQLBatchRequest, GraphQLRejection>) -> Response {
    match request {
        Ok(request) => {
            let mut response = schema.execute_batch(request.into_inner()).await;
            match &mut response {
                async_graphql::BatchResponse::Single(r) => crate::graphql::ensure_codes(&mut r.errors),
                async_graphql::BatchResponse::Batch(rs) => {
                    rs.iter_mut().for_each(|r| crate::graphql::ensure_codes(&mut r.errors))
                }
            }
            GraphQLResponse::from(response).into_response()
        }
        Err(rejection) => {
            let body = serde_json::json!({ "errors": [{
                "message": format!("the request is not a GraphQL request: {}", rejection.0),
                "extensions": { "code": "BAD_USER_INPUT" },
            }]});
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        }
    }
}
