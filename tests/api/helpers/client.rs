//! HTTP clients, tokens and GraphQL requests to an app or a binary.

use super::*;

/// An HTTP client that sends `Authorization: Bearer <token>` when given one.
pub fn client_with(token: Option<&str>) -> reqwest::Client {
    promotions::telemetry::install_tls_provider();
    let mut headers = reqwest::header::HeaderMap::new();
    if let Some(token) = token {
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().expect("a header value"),
        );
    }
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .expect("an HTTP client")
}

/// GET without a token (what `reqwest::get` does, with the process's TLS provider).
pub async fn get(url: String) -> reqwest::Result<reqwest::Response> {
    client_with(None).get(url).send().await
}

/// An HTTP client that sends an admin token.
pub fn admin_client() -> reqwest::Client {
    client_with(Some(&token(Role::Admin)))
}

/// POSTs a GraphQL document with a token of `role` to a binary on `port`,
/// with a `traceparent` when given; the whole JSON response.
pub async fn graphql_as(role: Role, port: u16, query: &str, variables: Value, traceparent: Option<&str>) -> Value {
    let mut request = client_with(Some(&token(role))).post(format!("http://127.0.0.1:{port}/graphql"));
    if let Some(tp) = traceparent {
        request = request.header("traceparent", tp);
    }
    post_graphql(request, query, variables).await
}

/// [`graphql_as`] an admin.
pub async fn graphql_at(port: u16, query: &str, variables: Value, traceparent: Option<&str>) -> Value {
    graphql_as(Role::Admin, port, query, variables, traceparent).await
}

/// [`graphql_as`] the checkout.
pub async fn checkout_at(port: u16, query: &str, variables: Value, traceparent: Option<&str>) -> Value {
    graphql_as(Role::Checkout, port, query, variables, traceparent).await
}

/// GETs `path` as admin from a binary on `port`: its status and JSON body
/// (null when not JSON).
pub async fn get_json_at(port: u16, path: &str) -> (u16, Value) {
    get_json_with(&admin_client(), format!("http://127.0.0.1:{port}{path}")).await
}

/// GETs `url` with `client`: its status and JSON body (null when not JSON).
pub async fn get_json_with(client: &reqwest::Client, url: String) -> (u16, Value) {
    let response = client.get(url).send().await.expect("send GET");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Sends a GraphQL document with `request`; the whole JSON response.
pub(super) async fn post_graphql(request: reqwest::RequestBuilder, query: &str, variables: Value) -> Value {
    request
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("send the GraphQL request")
        .json()
        .await
        .expect("a JSON response")
}

/// The HS256 key of the test apps' tokens.
pub const JWT_SECRET: &str = "test-secret-of-at-least-16-chars";

/// A token of the test apps for `role`, valid for an hour.
pub fn token(role: Role) -> String {
    promotions::auth::issue(
        JWT_SECRET,
        role,
        &format!("test-{role:?}"),
        std::time::Duration::from_secs(3600),
    )
    .expect("a token")
}
