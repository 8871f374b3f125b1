//! The HTTP surface: GraphQL (POST /graphql, GraphiQL on GET), health
//! endpoints, and the layers every request goes through (body limit, tracing).

pub mod health;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::GraphQL;
use axum::Router;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use crate::config::ServeConfig;
use crate::graphql::AppSchema;

/// The router of the whole service.
pub fn router(state: AppState, schema: AppSchema, serve: &ServeConfig) -> Router {
    let graphql = if serve.graphiql {
        get(graphiql).post_service(GraphQL::new(schema))
    } else {
        axum::routing::post_service(GraphQL::new(schema))
    };
    Router::new()
        .route("/graphql", graphql)
        .merge(health::routes(state))
        .layer(RequestBodyLimitLayer::new(serve.max_body_bytes))
        .layer(TraceLayer::new_for_http())
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").subscription_endpoint("/graphql/ws").finish())
}
