//! Tokens from an identity provider: keys from a JWKS URL chosen by `kid`
//! (served here by a local HTTP server that rotates its key), `iss`, `aud`
//! and `nbf`, the role from a configured claim, HS256 switched off; and
//! the sockets' lifetime: no connection_init in time, a token that expires.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use promotions::auth::Role;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{TestApp, client_with, init_socket, next_json, open_socket, spawn_app_serving, token};

/// The fixtures of these tests: test-only keys and their JWK sets.
fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/jwt")
            .join(name),
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A token signed with the key `kid` (rsa-a, rsa-b: RS256; ec-c: ES256)
/// carrying `claims` (sub, exp and role added unless given).
fn signed(kid: &str, claims: Value) -> String {
    let mut all = json!({ "sub": "shop-7", "exp": now() + 600, "role": "checkout" });
    for (k, v) in claims.as_object().unwrap() {
        all[k] = v.clone();
    }
    let pem = fixture(&format!("{kid}-test-only.key.pem"));
    let (algorithm, key) = if kid.starts_with("ec") {
        (
            jsonwebtoken::Algorithm::ES256,
            jsonwebtoken::EncodingKey::from_ec_pem(&pem).unwrap(),
        )
    } else {
        (
            jsonwebtoken::Algorithm::RS256,
            jsonwebtoken::EncodingKey::from_rsa_pem(&pem).unwrap(),
        )
    };
    let mut header = jsonwebtoken::Header::new(algorithm);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(&header, &all, &key).unwrap()
}

/// A local identity provider: serves the JWK set it holds now at /jwks and
/// counts the fetches.
struct Provider {
    url: String,
    keys: Arc<Mutex<Vec<Value>>>,
    fetches: Arc<Mutex<usize>>,
}

impl Provider {
    async fn start(kids: &[&str]) -> Self {
        let keys = Arc::new(Mutex::new(Vec::new()));
        let fetches = Arc::new(Mutex::new(0));
        let (served, counted) = (keys.clone(), fetches.clone());
        let app = axum::Router::new().route(
            "/jwks",
            axum::routing::get(move || {
                let (served, counted) = (served.clone(), counted.clone());
                async move {
                    *counted.lock().unwrap() += 1;
                    axum::Json(json!({ "keys": served.lock().unwrap().clone() }))
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let provider = Provider { url, keys, fetches };
        provider.publish(kids);
        provider
    }

    /// Publishes exactly these keys from now on.
    fn publish(&self, kids: &[&str]) {
        let keys = kids
            .iter()
            .map(|kid| {
                let set: Value = serde_json::from_slice(&fixture(&format!("{kid}.jwk.json"))).unwrap();
                set["keys"][0].clone()
            })
            .collect();
        *self.keys.lock().unwrap() = keys;
    }

    fn fetches(&self) -> usize {
        *self.fetches.lock().unwrap()
    }
}

/// The status and error codes of `{ __typename }` with `token`.
async fn answer(app: &TestApp, token: &str) -> (u16, Vec<String>, Value) {
    let response = client_with(Some(token))
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    let codes = body["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|e| e["extensions"]["code"].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .unwrap_or_default();
    (status, codes, body)
}

#[tokio::test]
async fn keys_come_from_the_providers_jwks_by_kid_and_a_rotation_is_followed() {
    let provider = Provider::start(&["rsa-a", "ec-c"]).await;
    let url = provider.url.clone();
    let app = spawn_app_serving(move |s| {
        s.jwt_jwks_url = Some(url);
        s.jwt_secret = None;
    })
    .await;
    let fetched_at_start = provider.fetches();
    assert_eq!(fetched_at_start, 1, "the set is fetched once at start-up");
    for kid in ["rsa-a", "ec-c"] {
        let (status, codes, body) = answer(&app, &signed(kid, json!({}))).await;
        assert_eq!((status, codes.len()), (200, 0), "{kid}: {body}");
    }
    assert_eq!(provider.fetches(), 1, "known keys are served from the cache");

    // HS256 is switched off: the secret's tokens are refused.
    let (status, codes, _) = answer(&app, &token(Role::Admin)).await;
    assert_eq!((status, codes), (401, vec!["UNAUTHENTICATED".to_owned()]));

    // The provider rotates: it publishes rsa-b and withdraws rsa-a. The
    // first token under rsa-b fetches the set again.
    provider.publish(&["rsa-b", "ec-c"]);
    tokio::time::sleep(promotions::auth::jwks::MIN_REFRESH).await;
    let (status, codes, body) = answer(&app, &signed("rsa-b", json!({}))).await;
    assert_eq!(
        (status, codes.len()),
        (200, 0),
        "the new key is fetched on its first kid: {body}"
    );
    assert_eq!(provider.fetches(), 2);
    // The withdrawn key is no longer trusted; unknown kids do not make the
    // service hammer the provider.
    for i in 0..20 {
        let (status, _, _) = answer(&app, &signed("rsa-a", json!({ "sub": format!("x{i}") }))).await;
        assert_eq!(status, 401, "rsa-a was withdrawn");
    }
    let forged = signed_as("nobody", "rsa-a");
    for _ in 0..20 {
        let (status, _, _) = answer(&app, &forged).await;
        assert_eq!(status, 401, "an unknown kid is refused");
    }
    assert_eq!(
        provider.fetches(),
        2,
        "at most one fetch per {:?}",
        promotions::auth::jwks::MIN_REFRESH
    );
    // A token signed with one key but naming another's kid is refused.
    assert_eq!(answer(&app, &signed_as("rsa-b", "rsa-a")).await.0, 401);
}

/// An admin token whose header names `kid` but that `key`'s key signed.
fn signed_as(kid: &str, key: &str) -> String {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(
        &header,
        &json!({ "sub": "x", "exp": now() + 60, "role": "admin" }),
        &jsonwebtoken::EncodingKey::from_rsa_pem(&fixture(&format!("{key}-test-only.key.pem"))).unwrap(),
    )
    .unwrap()
}

#[tokio::test]
async fn issuer_audience_not_before_and_the_role_claim_are_checked() {
    let provider = Provider::start(&["rsa-a"]).await;
    let url = provider.url.clone();
    let app = spawn_app_serving(move |s| {
        s.jwt_jwks_url = Some(url);
        s.jwt_issuer = Some("https://idp.example/realms/shop".into());
        s.jwt_audience = Some("promotions".into());
        s.jwt_role_claim = "realm_access.roles".into();
    })
    .await;
    let iss = "https://idp.example/realms/shop";
    let roles = json!({ "roles": ["offline_access", "checkout"] });
    let good = json!({ "iss": iss, "aud": ["account", "promotions"], "realm_access": roles });
    let (status, codes, body) = answer(&app, &signed("rsa-a", good.clone())).await;
    assert_eq!((status, codes.len()), (200, 0), "{body}");
    let with = |change: Value| {
        let mut claims = good.clone();
        for (k, v) in change.as_object().unwrap() {
            claims[k] = v.clone();
        }
        signed("rsa-a", claims)
    };
    for (why, token, message) in [
        (
            "another issuer",
            with(json!({ "iss": "https://evil.example" })),
            "issuer",
        ),
        ("another audience", with(json!({ "aud": "billing" })), "audience"),
        (
            "not valid for another minute",
            with(json!({ "nbf": now() + 60 })),
            "not valid yet",
        ),
        (
            "no role in the claim",
            with(json!({ "realm_access": { "roles": ["offline_access"] } })),
            "role",
        ),
    ] {
        let (status, codes, body) = answer(&app, &token).await;
        assert_eq!(
            (status, codes),
            (401, vec!["UNAUTHENTICATED".to_owned()]),
            "{why}: {body}"
        );
        assert!(body.to_string().contains(message), "{why}: {body}");
    }
    // A token already valid (nbf past) passes; the role claim "role" is not read here.
    let (status, _, body) = answer(&app, &with(json!({ "nbf": now() - 10, "role": "admin" }))).await;
    assert_eq!(status, 200, "{body}");
    let (_, _, body) = answer(
        &app,
        &with(json!({ "nbf": now() - 10, "role": "admin", "realm_access": { "roles": ["viewer"] } })),
    )
    .await;
    assert!(body.get("errors").is_none(), "{body}");
}

#[tokio::test]
async fn a_token_with_an_audience_is_accepted_when_none_is_configured() {
    let app = spawn_app_serving(|_| {}).await;
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": "s", "exp": now() + 60, "role": "viewer", "aud": "anything" }),
        &jsonwebtoken::EncodingKey::from_secret(crate::helpers::JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let (status, codes, body) = answer(&app, &token).await;
    assert_eq!((status, codes.len()), (200, 0), "{body}");
}

/// The close frame a socket ends with, within `within`.
async fn close_code(socket: &mut crate::helpers::Socket, within: Duration) -> Option<u16> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return Some(frame.code.into()),
            Ok(Some(Ok(_))) => continue,
            _ => return None,
        }
    }
}

#[tokio::test]
async fn a_socket_without_connection_init_is_closed_and_frees_its_slot() {
    let app = spawn_app_serving(|s| {
        s.ws_init_timeout = Duration::from_millis(500);
        s.max_ws_connections = 1;
    })
    .await;
    let mut idle = open_socket(&app, "graphql-transport-ws").await;
    assert_eq!(close_code(&mut idle, Duration::from_secs(3)).await, Some(4408));
    drop(idle);
    // Its slot is free again: another client connects and is acknowledged.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = open_socket(&app, "graphql-transport-ws").await;
    init_socket(&mut next, Some(&token(Role::Viewer))).await;
    assert_eq!(
        next_json(&mut next, Duration::from_secs(2)).await.unwrap()["type"],
        "connection_ack"
    );
}

#[tokio::test]
async fn a_socket_is_closed_when_its_token_expires() {
    let app = spawn_app_serving(|_| {}).await;
    let short =
        promotions::auth::issue(crate::helpers::JWT_SECRET, Role::Viewer, "dash", Duration::from_secs(2)).unwrap();
    let mut socket = open_socket(&app, "graphql-transport-ws").await;
    init_socket(&mut socket, Some(&short)).await;
    assert_eq!(
        next_json(&mut socket, Duration::from_secs(2)).await.unwrap()["type"],
        "connection_ack"
    );
    let started = std::time::Instant::now();
    assert_eq!(close_code(&mut socket, Duration::from_secs(6)).await, Some(4401));
    assert!(started.elapsed() < Duration::from_secs(4), "closed at the token's exp");
}
