//! The GraphQL API: schema assembly, and thin resolvers that parse input
//! into domain drafts, call one use case and map the result.

pub mod mutation;
pub mod query;
pub mod scalars;
pub mod types;

use async_graphql::{EmptySubscription, Schema};

use crate::app::AppState;

/// The service's schema type.
pub type AppSchema = Schema<query::Query, mutation::Mutation, EmptySubscription>;

/// Builds the schema around the shared state.
pub fn build(state: AppState) -> AppSchema {
    Schema::build(query::Query::default(), mutation::Mutation::default(), EmptySubscription)
        .data(state)
        .finish()
}

/// The SDL, as `print-schema` prints it and schema.graphql holds it.
pub fn sdl() -> String {
    Schema::build(query::Query::default(), mutation::Mutation::default(), EmptySubscription)
        .finish()
        .sdl()
}
