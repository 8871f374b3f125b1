//! Who may call what (DESIGN.md 7).
//!
//! Every GraphQL request (HTTP `Authorization: Bearer <jwt>`, WebSocket
//! `connection_init` payload `{"Authorization": "Bearer <jwt>"}`) and the
//! CSV export carries a JWT, trusted through one or more roots:
//!
//! - HS256 signed with `JWT_SECRET` (leave it unset to accept only an
//!   identity provider's tokens);
//! - RS256 with a PEM public key (`JWT_PUBLIC_KEY_FILE`);
//! - RS256/RS384/RS512/PS256/ES256/ES384 keys of a JWKS URL (`JWT_JWKS_URL`),
//!   chosen by the token's `kid` ([`jwks`]).
//!
//! `exp` and `sub` are required, `nbf` is honoured, `iss` and `aud` are
//! checked when `JWT_ISSUER` / `JWT_AUDIENCE` are set (a token's `aud` is
//! ignored otherwise). `sub` names the client (the rate limit counts per
//! subject, an order belongs to the subject that applied it); the role is
//! the claim `JWT_ROLE_CLAIM` names (default `role`; a dotted path such as
//! `realm_access.roles` reaches into objects; an array gives its most
//! powerful known role):
//!
//! - `admin`: everything;
//! - `checkout`: every query but `outboxEvents` and coupon code listings,
//!   plus `applyPromotions` and `releaseRedemption` of its own orders; no
//!   subscriptions;
//! - `viewer`: every query (no code listings; the codes in `outboxEvents`
//!   payloads read `<redacted>`) and the subscriptions.
//!
//! A missing, malformed, expired, not-yet-valid or foreign token is
//! UNAUTHENTICATED; a valid token whose role may not use a root field is
//! FORBIDDEN ([`Allow`], a guard on every root field).

pub mod jwks;

use std::time::Duration;

use async_graphql::{Context, Guard};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{AppError, AppResult};
use jwks::Jwks;

/// A caller's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Checkout,
    Viewer,
}

impl Role {
    /// The role a name (a claim value, a setting) names, if any.
    pub fn named(name: &str) -> Option<Role> {
        match name {
            "admin" => Some(Role::Admin),
            "checkout" => Some(Role::Checkout),
            "viewer" => Some(Role::Viewer),
            _ => None,
        }
    }
}

/// Roles allowed on a root field.
pub type Roles = &'static [Role];
/// Every role: the queries checkout may use.
pub const ANY: Roles = &[Role::Admin, Role::Checkout, Role::Viewer];
/// Readers: `outboxEvents` and the subscriptions.
pub const READERS: Roles = &[Role::Admin, Role::Viewer];
/// The checkout's mutations.
pub const CHECKOUT: Roles = &[Role::Admin, Role::Checkout];
/// The admin API's mutations.
pub const ADMIN: Roles = &[Role::Admin];

/// The claims `promotions token` writes.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    role: Role,
    exp: u64,
}

/// An authenticated caller, in each request's data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's `sub`.
    pub subject: String,
    pub role: Role,
    /// The token's `exp` (seconds since the epoch): a socket closes then.
    pub expires_at: u64,
}

impl Caller {
    /// Whether this caller acts on every client's orders (admin), or only on
    /// its own subject's.
    pub fn sees_every_order(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether coupon codes are shown to this caller where it did not name
    /// them (listings, events): admins only, codes are bearer secrets.
    pub fn sees_coupon_codes(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Where tokens are trusted from, and what they must say.
#[derive(Debug, Clone, Default)]
pub struct TokenSettings {
    /// HS256 key (`JWT_SECRET`); None: HS256 tokens are refused.
    pub secret: Option<String>,
    /// PEM of an RSA public key (`JWT_PUBLIC_KEY_FILE`).
    pub public_key_pem: Option<Vec<u8>>,
    /// An identity provider's key set (`JWT_JWKS_URL`).
    pub jwks_url: Option<String>,
    /// Required `iss` (`JWT_ISSUER`).
    pub issuer: Option<String>,
    /// Required `aud` (`JWT_AUDIENCE`).
    pub audience: Option<String>,
    /// The claim holding the role (`JWT_ROLE_CLAIM`), a dotted path.
    pub role_claim: String,
}

/// Checks tokens.
pub struct Verifier {
    secret: Option<DecodingKey>,
    public_key: Option<DecodingKey>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    role_claim: Vec<String>,
}

/// A HS256 key long enough to sign with.
fn check_secret(secret: &str) -> Result<(), String> {
    if secret.len() < 16 {
        return Err("JWT_SECRET must be at least 16 characters".into());
    }
    Ok(())
}

/// Most characters of a bearer token.
const MAX_TOKEN_CHARS: usize = 8_192;
/// Seconds of clock skew allowed on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 5;
/// The asymmetric algorithms a key set's keys may use.
const ASYMMETRIC: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::ES256,
    Algorithm::ES384,
];

impl Verifier {
    /// A verifier trusting what `settings` name: at least one root.
    pub fn new(settings: TokenSettings) -> Result<Self, String> {
        if let Some(secret) = &settings.secret {
            check_secret(secret)?;
        }
        if settings.secret.is_none() && settings.public_key_pem.is_none() && settings.jwks_url.is_none() {
            return Err("no token can be trusted: set JWT_SECRET, JWT_PUBLIC_KEY_FILE or JWT_JWKS_URL".into());
        }
        let public_key = settings
            .public_key_pem
            .as_deref()
            .map(|pem| {
                DecodingKey::from_rsa_pem(pem).map_err(|e| format!("JWT_PUBLIC_KEY_FILE is not an RSA public key: {e}"))
            })
            .transpose()?;
        let role_claim: Vec<String> = settings.role_claim.split('.').map(str::to_owned).collect();
        if role_claim.iter().any(String::is_empty) {
            return Err(format!(
                "JWT_ROLE_CLAIM {:?} is not a claim name or dotted path",
                settings.role_claim
            ));
        }
        Ok(Self {
            secret: settings.secret.map(|s| DecodingKey::from_secret(s.as_bytes())),
            public_key,
            jwks: settings.jwks_url.map(Jwks::new).transpose()?,
            issuer: settings.issuer,
            audience: settings.audience,
            role_claim,
        })
    }

    /// Fetches the key set once (start-up), so the first requests need not.
    pub async fn warm_up(&self) {
        if let Some(jwks) = &self.jwks {
            jwks.refresh().await;
        }
    }

    /// The caller of an `Authorization` header value.
    pub async fn verify(&self, authorization: Option<&str>) -> AppResult<Caller> {
        let refuse = |why: &str| AppError::Unauthenticated(why.to_owned());
        let header =
            authorization.ok_or_else(|| refuse("a bearer token is required (Authorization: Bearer <token>)"))?;
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_CHARS)
            .ok_or_else(|| refuse("the Authorization header must be 'Bearer <token>'"))?;
        let header = jsonwebtoken::decode_header(token).map_err(|_| refuse("the bearer token is not a JWT"))?;
        let algorithm = header.alg;
        let key = if algorithm == Algorithm::HS256 {
            self.secret
                .clone()
                .ok_or_else(|| refuse("HS256 tokens are not accepted here"))?
        } else if !ASYMMETRIC.contains(&algorithm) {
            return Err(refuse("the token's algorithm is not accepted"));
        } else if let (Some(jwks), Some(kid)) = (&self.jwks, header.kid.as_deref()) {
            jwks.key(kid, algorithm)
                .await
                .ok_or_else(|| refuse("the token's key (kid) is not one of the identity provider's"))?
        } else {
            self.public_key
                .clone()
                .filter(|_| algorithm == Algorithm::RS256)
                .ok_or_else(|| refuse("the token names no key this service trusts"))?
        };
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        if let Some(issuer) = &self.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &self.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        let claims = jsonwebtoken::decode::<serde_json::Map<String, serde_json::Value>>(token, &key, &validation)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                match e.kind() {
                    ErrorKind::ExpiredSignature => refuse("the token has expired"),
                    ErrorKind::ImmatureSignature => refuse("the token is not valid yet (nbf)"),
                    ErrorKind::InvalidSignature => refuse("the token's signature is not valid"),
                    ErrorKind::InvalidIssuer => refuse("the token's issuer (iss) is not the one configured"),
                    ErrorKind::InvalidAudience => refuse("the token's audience (aud) is not this service"),
                    ErrorKind::MissingRequiredClaim(claim) => refuse(&format!("the token has no {claim}")),
                    _ => refuse("the token is not valid (it needs sub, exp and a role: admin, checkout or viewer)"),
                }
            })?
            .claims;
        let subject = claims
            .get("sub")
            .and_then(serde_json::Value::as_str)
            .and_then(|sub| crate::domain::validation::identifier("sub", sub).ok())
            .ok_or_else(|| refuse("the token's sub is not valid"))?;
        let expires_at = claims
            .get("exp")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| refuse("the token's exp is not a number of seconds"))?;
        let role = self.role_of(&claims).ok_or_else(|| {
            refuse(&format!(
                "the token's {} claim names no role (admin, checkout or viewer)",
                self.role_claim.join(".")
            ))
        })?;
        Ok(Caller {
            subject,
            role,
            expires_at,
        })
    }

    /// The role the configured claim names: a string, or the most powerful
    /// known role of an array.
    fn role_of(&self, claims: &serde_json::Map<String, serde_json::Value>) -> Option<Role> {
        let (first, rest) = self.role_claim.split_first()?;
        let mut value = claims.get(first)?;
        for part in rest {
            value = value.get(part)?;
        }
        match value {
            serde_json::Value::String(name) => Role::named(name),
            serde_json::Value::Array(names) => {
                let named: Vec<Role> = names.iter().filter_map(|n| n.as_str().and_then(Role::named)).collect();
                [Role::Admin, Role::Checkout, Role::Viewer]
                    .into_iter()
                    .find(|role| named.contains(role))
            }
            _ => None,
        }
    }
}

/// A token for `role` and `subject`, valid for `ttl`, signed with `secret` (HS256).
pub fn issue(secret: &str, role: Role, subject: &str, ttl: Duration) -> Result<String, String> {
    check_secret(secret)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    let claims = Claims {
        sub: subject.to_owned(),
        role,
        exp: (now + ttl).as_secs(),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| e.to_string())
}

/// The guard on a root field: the caller's role must be one of these.
pub struct Allow(pub Roles);

impl Guard for Allow {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        match ctx.data_opt::<Caller>() {
            None => Err(AppError::Unauthenticated("a bearer token is required".into()).into()),
            Some(caller) if self.0.contains(&caller.role) => Ok(()),
            Some(caller) => {
                Err(AppError::Forbidden(format!("the role {:?} may not use this field", caller.role)).into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "a-test-secret-of-32-characters!!";

    fn bearer(token: &str) -> String {
        format!("Bearer {token}")
    }

    fn hs256(secret: &str) -> Verifier {
        Verifier::new(TokenSettings {
            secret: Some(secret.to_owned()),
            role_claim: "role".into(),
            ..TokenSettings::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn an_issued_token_verifies_with_its_role_and_subject() {
        let token = issue(SECRET, Role::Checkout, "shop-1", Duration::from_secs(60)).unwrap();
        let caller = hs256(SECRET).verify(Some(&bearer(&token))).await.unwrap();
        assert_eq!((caller.subject.as_str(), caller.role), ("shop-1", Role::Checkout));
    }

    #[tokio::test]
    async fn missing_malformed_foreign_and_expired_tokens_are_refused() {
        let verifier = hs256(SECRET);
        let foreign = issue(
            "another-secret-of-32-characters!",
            Role::Admin,
            "x",
            Duration::from_secs(60),
        )
        .unwrap();
        let expired = {
            let claims = Claims {
                sub: "x".into(),
                role: Role::Admin,
                exp: 1_000,
            };
            jsonwebtoken::encode(
                &Header::default(),
                &claims,
                &EncodingKey::from_secret(SECRET.as_bytes()),
            )
            .unwrap()
        };
        for (header, why) in [
            (None, "required"),
            (Some("Basic abc".to_owned()), "Bearer"),
            (Some(bearer("not-a-jwt")), "not a JWT"),
            (Some(bearer(&foreign)), "signature"),
            (Some(bearer(&expired)), "expired"),
        ] {
            let Err(AppError::Unauthenticated(refused)) = verifier.verify(header.as_deref()).await else {
                panic!("{header:?} was not refused as unauthenticated");
            };
            assert!(refused.contains(why), "{header:?}: {refused}");
        }
    }

    #[test]
    fn a_short_secret_and_no_trust_root_are_refused() {
        let settings = |secret: Option<&str>| TokenSettings {
            secret: secret.map(str::to_owned),
            role_claim: "role".into(),
            ..TokenSettings::default()
        };
        assert!(Verifier::new(settings(Some("short"))).is_err());
        assert!(Verifier::new(settings(None)).is_err());
    }

    #[test]
    fn the_role_comes_from_the_configured_claim_string_or_array() {
        let verifier = |claim: &str| {
            Verifier::new(TokenSettings {
                secret: Some(SECRET.into()),
                role_claim: claim.into(),
                ..TokenSettings::default()
            })
            .unwrap()
        };
        let claims = |json: serde_json::Value| json.as_object().unwrap().clone();
        let nested = claims(serde_json::json!({ "realm_access": { "roles": ["offline", "viewer", "checkout"] } }));
        assert_eq!(verifier("realm_access.roles").role_of(&nested), Some(Role::Checkout));
        assert_eq!(verifier("role").role_of(&nested), None);
        let plain = claims(serde_json::json!({ "groups": "admin" }));
        assert_eq!(verifier("groups").role_of(&plain), Some(Role::Admin));
        assert_eq!(
            verifier("groups").role_of(&claims(serde_json::json!({ "groups": "root" }))),
            None
        );
        assert!(
            Verifier::new(TokenSettings {
                secret: Some(SECRET.into()),
                role_claim: "a..b".into(),
                ..TokenSettings::default()
            })
            .is_err()
        );
    }
}
