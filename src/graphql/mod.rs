//! The GraphQL API: schema assembly, and thin resolvers that parse input
//! into domain drafts, call one use case and map the result.

pub mod documents;
pub mod endpoint;
pub mod fast_preview;
pub mod feed;
pub mod loaders;
pub mod mutation;
pub mod observe;
pub mod query;
pub mod scalars;
pub mod subscription;
pub mod types;
pub mod unstorable;

use async_graphql::Schema;

use crate::state::AppState;

/// The service's schema type.
pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Deepest selection accepted (introspection's TypeRef chain needs 13).
pub const MAX_DEPTH: usize = 16;
/// Most fields one operation may select (each field counts 1).
pub const MAX_COMPLEXITY: usize = 2_000;
/// Most aliased fields in one document.
pub const MAX_ALIASES: usize = 50;

/// Builds the schema around the shared state and the live event feed, with
/// the depth and complexity limits; `introspection` false hides the schema.
pub fn build(state: AppState, feed: feed::Feed, introspection: bool) -> AppSchema {
    let builder = Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .limit_depth(MAX_DEPTH)
        .limit_complexity(MAX_COMPLEXITY)
        .data(loaders::Loaders::new(&state.db))
        .data(state)
        .data(feed);
    if introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The authenticated caller of a request (every root field's guard
/// requires one).
pub fn caller<'a>(ctx: &async_graphql::Context<'a>) -> async_graphql::Result<&'a crate::auth::Caller> {
    ctx.data_opt::<crate::auth::Caller>()
        .ok_or_else(|| crate::error::AppError::Unauthenticated("a bearer token is required".into()).into())
}

/// Whose orders `caller` may see: its own subject's, or every one (admin).
pub fn orders_of(caller: &crate::auth::Caller) -> crate::redemption::Viewer<'_> {
    if caller.sees_every_order() {
        crate::redemption::Viewer::Everyone
    } else {
        crate::redemption::Viewer::Client(&caller.subject)
    }
}

/// The SDL, as `print-schema` prints it and schema.graphql holds it.
pub fn sdl() -> String {
    Schema::build(query::Query, mutation::Mutation, subscription::Subscription)
        .finish()
        .sdl()
}

/// Gives every error without `extensions.code` the code BAD_USER_INPUT: such
/// errors come from async-graphql itself (a document that does not parse or
/// validate, a value of the wrong type, a oneOf input with zero or two
/// members), since resolvers only fail with coded [`crate::error::AppError`]s.
/// Where the message names an argument or variable, it becomes `field`.
pub fn ensure_codes(errors: &mut [async_graphql::ServerError]) {
    for error in errors {
        let extensions = error.extensions.get_or_insert_with(Default::default);
        if extensions.get("code").is_some() {
            continue;
        }
        extensions.set("code", crate::error::BAD_USER_INPUT);
        if let Some(field) = named_input(&error.message) {
            extensions.set("field", field);
        }
    }
}

/// `Invalid value for argument "input.action", ...` -> `input.action`;
/// `Variable "$input" got ...` -> `input`.
fn named_input(message: &str) -> Option<String> {
    let rest = ["argument \"", "Variable \"$", "variable \"$"]
        .iter()
        .find_map(|marker| message.find(marker).map(|i| &message[i + marker.len()..]))?;
    rest.split('"').next().filter(|f| !f.is_empty()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_named_input_is_taken_from_the_message() {
        assert_eq!(
            super::named_input("Invalid value for argument \"input.action\", Oneof ..."),
            Some("input.action".to_owned())
        );
        assert_eq!(
            super::named_input("Variable \"$input\" got invalid value"),
            Some("input".to_owned())
        );
        assert_eq!(super::named_input("Unknown field"), None);
    }
}
