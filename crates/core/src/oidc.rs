//! The OpenID Provider (OpenID Connect Core 1.0 on the authorization-code flow): subject
//! identifiers, id_tokens, userinfo, discovery, and RP-initiated logout.
//!
//! - `sub` (Core §2, §8): never the row id. Public: base64url(HMAC-SHA256(K, "camgate sub v1\0"
//!   ‖ user id)); pairwise (§8.1): HMAC(K, "camgate pairwise v1\0" ‖ sector ‖ "\0" ‖ user id),
//!   the sector being the client's `sector_identifier`, else the one host of its redirect URIs.
//!   K is 32 random bytes in the `settings` table, made once and never rotated: changing it
//!   would change every `sub`, which Core §2 forbids ("never reassigned"). Nothing else goes
//!   in — not the email (changes), not the issuer (the Host may differ), not the key ring.
//! - id_tokens (§2, §3.1.3.6): signed with the client's algorithm (RS256 unless registered
//!   otherwise; §15.1 makes RS256 the one every RP must accept) by an `id`-purpose key, so an
//!   id_token never verifies as an access token (and `typ` is `JWT`, not `at+jwt`).
//!   Profile, email and phone claims are in userinfo only (§5.4: with an access token issued,
//!   they are returned from userinfo).
//! - Refresh (§12.2): a grant with `openid` gets a new id_token with the same `sub`,
//!   `auth_time` and `amr`, a new `iat`/`at_hash`, and no `nonce`.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256, Sha512};

use crate::error::{ApiError, OAuthError, StoreError};
use crate::jwt::{b64_json, verify_signature, CachedKey, JwtAlg, KeyPurpose};
use crate::model::{Authn, Client, SubjectType, User, UserId};
use crate::principal::Principal;
use crate::Core;

/// Longest `nonce` we carry (Core does not bound it; we do).
pub const MAX_NONCE_LEN: usize = 512;
/// The `amr` of a password sign-in (RFC 8176 §2).
pub const AMR_PASSWORD: &str = "pwd";
/// `acr` (Core §2) of a sign-in with a password alone, and with a second factor too.
pub const ACR_PASSWORD: &str = "urn:camgate:acr:pwd";
pub const ACR_MFA: &str = "urn:camgate:acr:mfa";

/// The `acr` of a sign-in with these `amr` values.
pub fn acr_of(amr: &[String]) -> &'static str {
    if amr.iter().any(|a| a != AMR_PASSWORD) {
        ACR_MFA
    } else {
        ACR_PASSWORD
    }
}

/// Tunables of the OpenID Provider.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// Lifetime of an id_token (`exp` − `iat`).
    pub id_token_ttl_secs: i64,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            id_token_ttl_secs: 3600,
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8], parts: &[&[u8]]) -> String {
    // HMAC accepts keys of any length; the settings key is 32 bytes.
    let mut m = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    for p in parts {
        m.update(p);
    }
    B64.encode(m.finalize().into_bytes())
}

/// The public subject identifier of a user (43 base64url characters).
pub fn public_subject(key: &[u8], user: UserId) -> String {
    mac(key, &[b"camgate sub v1\0", user.to_string().as_bytes()])
}

/// The pairwise subject identifier of a user in a sector (OIDC Core §8.1).
pub fn pairwise_subject(key: &[u8], sector: &str, user: UserId) -> String {
    mac(
        key,
        &[
            b"camgate pairwise v1\0",
            sector.as_bytes(),
            b"\0",
            user.to_string().as_bytes(),
        ],
    )
}

/// The sector of a pairwise client: its `sector_identifier`, else the host of its redirect
/// URIs when they all share one. `None`: pairwise is not possible (checked at registration).
pub fn sector_of(client: &Client) -> Option<String> {
    if let Some(s) = &client.oidc.sector_identifier {
        return Some(s.clone());
    }
    let mut hosts = client.redirect_uris.iter().filter_map(|u| {
        url::Url::parse(u)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
    });
    let first = hosts.next()?;
    hosts.all(|h| h == first).then_some(first)
}

/// `at_hash` (Core §3.1.3.6): base64url of the left half of the hash of the access token's
/// ASCII octets, the hash being the one of the id_token's algorithm: SHA-256 for RS256 and
/// ES256; SHA-512 for EdDSA over Ed25519 (the hash Ed25519 uses; what authlib and
/// node-oidc-provider compute).
pub fn at_hash(alg: JwtAlg, access_token: &str) -> String {
    match alg {
        JwtAlg::EdDsa => {
            let d = Sha512::digest(access_token.as_bytes());
            B64.encode(&d[..32])
        }
        JwtAlg::Es256 | JwtAlg::Rs256 => {
            let d = Sha256::digest(access_token.as_bytes());
            B64.encode(&d[..16])
        }
    }
}

/// The claims of an id_token (Core §2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
    /// Core §2: the authentication context class the sign-in satisfied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// Core §2: the party the token was issued to; with one audience it equals `aud`.
    pub azp: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
}

#[derive(Serialize)]
struct IdHeader<'a> {
    alg: &'a str,
    kid: &'a str,
    typ: &'a str,
}

/// What a valid RP-initiated logout request (RP-Initiated Logout 1.0 §2) allows.
#[derive(Debug, Clone)]
pub struct EndSession {
    /// The client that asked, when identified (by the hint or `client_id`).
    pub client: Option<Client>,
    /// The `sub` of the `id_token_hint`, if there was one.
    pub hint_sub: Option<String>,
    /// Where to send the browser afterwards (the registered URI with `state`), if anywhere.
    pub redirect: Option<String>,
}

/// The parameters of an end-session request.
#[derive(Debug, Clone, Default)]
pub struct EndSessionRequest {
    pub id_token_hint: Option<String>,
    pub client_id: Option<String>,
    pub post_logout_redirect_uri: Option<String>,
    pub state: Option<String>,
}

/// The metadata document: RFC 8414 §2 and OpenID Connect Discovery 1.0 §3 in one, so the two
/// well-known URLs can never disagree. `iss` is the issuer exactly as tokens carry it.
pub fn server_metadata(iss: &str) -> Value {
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "userinfo_endpoint": format!("{iss}/oauth/userinfo"),
        "end_session_endpoint": format!("{iss}/oauth/logout"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "device_authorization_endpoint": format!("{iss}/oauth/device_authorization"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "grant_types_supported": ["authorization_code", "password", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code", "urn:ietf:params:oauth:grant-type:token-exchange"],
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email", "phone", "read", "write", "user_access", "camera_access", "camera_manage", "camera_create", "camera_delete"],
        "authorization_response_iss_parameter_supported": true,
        // OpenID Connect Discovery 1.0 §3.
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256", "EdDSA"],
        "userinfo_signing_alg_values_supported": ["none"],
        "acr_values_supported": [ACR_PASSWORD, ACR_MFA],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "amr", "acr", "azp", "at_hash", "name", "given_name", "family_name", "email", "email_verified", "phone_number"],
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "display_values_supported": ["page"],
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        // Its default is true (Discovery §3): say that request_uri is not supported.
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
    })
}

impl Core {
    /// The `sub` a client sees for a user (public or pairwise, per the client).
    pub fn subject_for(&self, client: &Client, user: UserId) -> String {
        match client.oidc.subject_type {
            SubjectType::Public => public_subject(&self.subject_key, user),
            SubjectType::Pairwise => match sector_of(client) {
                Some(sector) => pairwise_subject(&self.subject_key, &sector, user),
                // Registration refuses this; a client imported without a sector gets a
                // pairwise value of its own client_id rather than the public one.
                None => pairwise_subject(&self.subject_key, &client.client_id, user),
            },
        }
    }

    /// Signs an id_token for `client` (Core §3.1.3.6, §12.2). `nonce`: the authorization
    /// request's (code exchange only).
    pub(crate) async fn sign_id_token(
        &self,
        client: &Client,
        user: UserId,
        authn: &Authn,
        nonce: Option<&str>,
        access_token: &str,
    ) -> Result<String, OAuthError> {
        let iss = self.jwt_issuer().ok_or_else(|| {
            tracing::error!("no issuer known: set `issuer` in the configuration");
            OAuthError::server_error()
        })?;
        let alg = client.oidc.id_token_alg.0;
        let key = self.id_token_key(alg).await?;
        let now = self.now();
        let amr: Vec<String> = authn
            .amr
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let claims = IdClaims {
            iss,
            sub: self.subject_for(client, user),
            aud: client.client_id.clone(),
            exp: now + self.settings.oidc.id_token_ttl_secs,
            iat: now,
            auth_time: authn.auth_time,
            nonce: nonce.map(str::to_string),
            acr: Some(acr_of(&amr).to_string()),
            amr,
            azp: client.client_id.clone(),
            at_hash: Some(at_hash(alg, access_token)),
        };
        let header = IdHeader {
            alg: alg.as_str(),
            kid: &key.kid,
            typ: "JWT",
        };
        let signing_input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let sig = key.sign(signing_input.as_bytes());
        if sig.is_empty() {
            tracing::error!(kid = %key.kid, "id_token signing failed");
            return Err(OAuthError::server_error());
        }
        Ok(format!("{signing_input}.{}", B64.encode(sig)))
    }

    /// UserInfo (Core §5.3): the claims the token's scopes allow (§5.4), from the user record.
    /// The token must carry `openid`; empty claims are left out (§5.3.2).
    pub async fn userinfo(&self, p: &Principal) -> Result<Value, ApiError> {
        if !p.scopes.openid {
            return Err(ApiError::InsufficientScope("openid"));
        }
        let (Some(user), Some(cref)) = (&p.user, &p.client) else {
            // A client credentials token has no end-user (and cannot carry openid anyway).
            return Err(ApiError::InsufficientScope("openid"));
        };
        let client = self
            .store
            .client_by_client_id(&cref.client_id)
            .await?
            .ok_or_else(|| ApiError::Unauthenticated("Invalid token.".into()))?;
        Ok(userinfo_claims(
            &self.subject_for(&client, user.id),
            user,
            p,
        ))
    }

    /// Checks an RP-initiated logout request (RP-Initiated Logout 1.0 §2–§4). `Err`: a message
    /// for an error page; such a request never redirects (§4).
    pub async fn check_end_session(&self, r: &EndSessionRequest) -> Result<EndSession, String> {
        let mut client_id = r.client_id.clone().filter(|c| !c.is_empty());
        let mut hint_sub = None;
        if let Some(hint) = r.id_token_hint.as_deref().filter(|h| !h.is_empty()) {
            let (aud, sub) = self.check_id_token_hint(hint).await?;
            // §2: a client_id given alongside the hint must be its audience.
            if client_id.as_deref().is_some_and(|c| c != aud) {
                return Err("client_id does not match the id_token_hint.".into());
            }
            client_id = Some(aud);
            hint_sub = Some(sub);
        }
        let client = match &client_id {
            Some(id) if id.len() <= 256 => self
                .store
                .client_by_client_id(id)
                .await
                .map_err(|e| store_message(&e))?,
            _ => None,
        };
        if client_id.is_some() && client.is_none() {
            return Err("Unknown client_id.".into());
        }
        let redirect = match r
            .post_logout_redirect_uri
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            None => None,
            Some(uri) => {
                // §3: only to a URI registered for the identified client, compared exactly.
                let Some(c) = &client else {
                    return Err(
                        "post_logout_redirect_uri needs id_token_hint or client_id to identify \
                         the application."
                            .into(),
                    );
                };
                if !c.oidc.post_logout_redirect_uris.iter().any(|u| u == uri) {
                    return Err(
                        "post_logout_redirect_uri is not registered for this application.".into(),
                    );
                }
                Some(with_state(uri, r.state.as_deref()))
            }
        };
        Ok(EndSession {
            client,
            hint_sub,
            redirect,
        })
    }

    /// Verifies an `id_token_hint`: camgate's own signature by an id key that still verifies,
    /// our issuer; expiry is not checked (RP-Initiated Logout §2: an expired one should be
    /// accepted). Returns its audience and `sub`.
    async fn check_id_token_hint(&self, hint: &str) -> Result<(String, String), String> {
        let bad = || "The id_token_hint is not a valid ID token issued here.".to_string();
        if hint.len() > 8192 {
            return Err(bad());
        }
        let mut parts = hint.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let header: Value = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(bad)?;
        let kid = header.get("kid").and_then(Value::as_str).ok_or_else(bad)?;
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .and_then(JwtAlg::parse_any)
            .ok_or_else(bad)?;
        let key: Arc<CachedKey> = self
            .verifying_key(kid)
            .await
            .map_err(|e| store_message(&e))?
            .ok_or_else(bad)?;
        let now = self.now();
        if key.alg != alg
            || key.purpose != KeyPurpose::Id
            || key.verify_until.is_some_and(|u| u <= now)
        {
            return Err(bad());
        }
        let sig = B64.decode(s).map_err(|_| bad())?;
        if !verify_signature(&key, &hint.as_bytes()[..h.len() + 1 + p.len()], &sig) {
            return Err(bad());
        }
        let claims: IdClaims = B64
            .decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(bad)?;
        if Some(claims.iss.as_str()) != self.jwt_issuer().as_deref() {
            return Err(bad());
        }
        Ok((claims.aud, claims.sub))
    }

    /// Whether a checked logout request's `id_token_hint` names `user` (the signed-in one):
    /// `sub` is one-way, so the user's `sub` for the client is computed and compared.
    pub fn hint_names(&self, es: &EndSession, user: UserId) -> bool {
        match (&es.client, &es.hint_sub) {
            (Some(c), Some(sub)) => {
                crate::secret::ct_eq(self.subject_for(c, user).as_bytes(), sub.as_bytes())
            }
            _ => false,
        }
    }
}

/// Where a logout returns to: the registered URI with `state` appended (§3).
fn with_state(uri: &str, state: Option<&str>) -> String {
    let Some(state) = state.filter(|s| !s.is_empty()) else {
        return uri.to_string();
    };
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    ser.append_pair("state", state);
    let sep = if uri.contains('?') { "&" } else { "?" };
    format!("{uri}{sep}{}", ser.finish())
}

fn store_message(e: &StoreError) -> String {
    tracing::warn!(error = %e, "storage error during logout");
    "The service is busy. Please try again in a moment.".into()
}

/// The claims of userinfo for a principal's scopes (Core §5.4).
fn userinfo_claims(sub: &str, user: &User, p: &Principal) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("sub".into(), json!(sub));
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            m.insert(k.into(), json!(v));
        }
    };
    if p.scopes.profile {
        let name = format!("{} {}", user.first_name, user.last_name);
        put("name", name.trim());
        put("given_name", &user.first_name);
        put("family_name", &user.last_name);
    }
    if p.scopes.email {
        put("email", &user.email);
    }
    if p.scopes.phone {
        put("phone_number", &user.phone);
    }
    if p.scopes.email {
        m.insert("email_verified".into(), json!(user.email_verified));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_openid_connect_core_example() {
        // OIDC Core 1.0 Appendix A.3/A.4: this access token's at_hash under RS256.
        assert_eq!(
            at_hash(JwtAlg::Rs256, "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
        // EdDSA: the left half of SHA-512 (32 bytes, 43 base64url characters).
        assert_eq!(at_hash(JwtAlg::EdDsa, "t").len(), 43);
        assert_eq!(at_hash(JwtAlg::Es256, "t"), at_hash(JwtAlg::Rs256, "t"));
    }

    #[test]
    fn subjects_are_an_hmac_of_the_user_and_sector() {
        let key = [9u8; 32];
        // Computed independently of `mac`: HMAC-SHA256 over the documented input.
        let mut m = HmacSha256::new_from_slice(&key).unwrap();
        m.update(b"camgate sub v1\0");
        m.update(b"42");
        assert_eq!(
            public_subject(&key, 42),
            B64.encode(m.finalize().into_bytes())
        );
        assert_eq!(public_subject(&key, 42).len(), 43);
        assert_ne!(public_subject(&key, 42), public_subject(&key, 43));
        assert_ne!(public_subject(&key, 42), public_subject(&[8u8; 32], 42));
        let a = pairwise_subject(&key, "a.example", 42);
        assert_ne!(a, pairwise_subject(&key, "b.example", 42));
        assert_ne!(a, public_subject(&key, 42));
        // The NUL separator keeps a sector and a user id from running together.
        assert_ne!(
            pairwise_subject(&key, "x", 11),
            pairwise_subject(&key, "x\u{0}1", 1)
        );
    }

    #[test]
    fn acr_follows_the_factors() {
        assert_eq!(acr_of(&["pwd".into()]), ACR_PASSWORD);
        assert_eq!(acr_of(&["pwd".into(), "otp".into()]), ACR_MFA);
        assert_eq!(acr_of(&["hwk".into(), "user".into()]), ACR_MFA);
    }

    #[test]
    fn logout_state_is_appended_encoded() {
        assert_eq!(
            with_state("https://a.example/bye", Some("x y")),
            "https://a.example/bye?state=x+y"
        );
        assert_eq!(
            with_state("https://a.example/bye?k=1", Some("s")),
            "https://a.example/bye?k=1&state=s"
        );
        assert_eq!(
            with_state("https://a.example/bye", None),
            "https://a.example/bye"
        );
    }
}
