//! The authorization endpoint (RFC 6749 §3.1, §4.1.1–§4.1.2) and the authorization-code grant
//! at the token endpoint (§4.1.3), built to RFC 9700 (OAuth 2.0 Security BCP): exact
//! redirect-URI matching, PKCE with S256 only (RFC 7636), single-use short-lived codes whose
//! replay revokes what they minted, and the `iss` response parameter (RFC 9207).
//!
//! The server crate parses the request and renders the pages; this module decides. A request
//! that cannot be trusted to redirect (unknown client, unregistered redirect URI) is an
//! [`AuthorizeError::Page`]; every other error is an [`AuthorizeError::Redirect`] back to the
//! client.

pub use crate::store::records::{AuthCode, NewAuthCode, ParkedRequest};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::clients::validate_redirect_uri;
use crate::error::{OAuthError, StoreError};
use crate::model::{AuditKind, Authn, Client, ClientKind, GrantType, User, UserId};
use crate::oauth::{Caller, Params, TokenResponse};
use crate::profile::TokenStyle;
use crate::scope::{Need, ScopeSet};
use crate::secret::{self, TokenFormat};
use crate::sessions::SessionSettings;
use crate::throttle::ThrottleSettings;
use crate::Core;

/// Longest `state` we carry (RFC 6749 does not bound it; we do).
pub const MAX_STATE_LEN: usize = 2048;
/// How long a parked authorization request waits for the user to sign in and decide.
pub const PARKED_REQUEST_TTL_SECS: i64 = 1800;
/// Upper bound of the configurable code lifetime: RFC 6749 §4.1.2 "A maximum authorization
/// code lifetime of 10 minutes is RECOMMENDED".
pub const MAX_CODE_TTL_SECS: i64 = 600;
/// Most parameters an authorization request may carry.
pub const MAX_PARAMS: usize = 64;

/// The message of the error page for a redirect URI that is not registered (django-oauth-toolkit
/// wording, as Angelcam answers).
pub const MISMATCHING_REDIRECT_URI: &str = "Mismatching redirect URI.";

/// Tunables of the browser flow (configurable; see the server's config).
#[derive(Debug, Clone)]
pub struct AuthzSettings {
    /// Lifetime of an authorization code, 1..=600 s (RFC 6749 §4.1.2).
    pub code_ttl_secs: i64,
    /// Lifetime of a device code (RFC 8628 §3.2 `expires_in`).
    pub device_code_ttl_secs: i64,
    /// Seconds a device waits between polls (RFC 8628 §3.2 `interval`).
    pub device_poll_interval_secs: i64,
    pub session: SessionSettings,
    pub throttle: ThrottleSettings,
}

impl Default for AuthzSettings {
    fn default() -> Self {
        Self {
            code_ttl_secs: 60,
            device_code_ttl_secs: 600,
            device_poll_interval_secs: 5,
            session: SessionSettings::default(),
            throttle: ThrottleSettings::default(),
        }
    }
}

/// The `prompt` parameter (OpenID Connect Core §3.1.2.1, widely used with plain OAuth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Prompt {
    /// Ask only when needed.
    #[default]
    Auto,
    /// Never show a page: fail with `login_required` / `consent_required` instead.
    None,
    /// Ask the user to sign in again.
    Login,
    /// Show the approval screen even if the user approved before.
    Consent,
}

/// A validated authorization request: the client is known and the redirect URI is one of its
/// registered URIs, so errors from here on go back to the client.
#[derive(Debug, Clone)]
pub struct ValidRequest {
    pub client: Client,
    /// The redirect URI to answer on: the one given, or the only registered one.
    pub redirect_uri: String,
    /// Whether `redirect_uri` was in the request (then the token request must repeat it,
    /// RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    pub scope: ScopeSet,
    pub state: Option<String>,
    /// BASE64URL(SHA256(code_verifier)) (RFC 7636 §4.2, S256 only).
    pub code_challenge: Option<String>,
    pub prompt: Prompt,
    /// OIDC Core §3.1.2.1: echoed in the id_token.
    pub nonce: Option<String>,
    /// OIDC Core §3.1.2.1: a session older than this many seconds does not count.
    pub max_age: Option<i64>,
    /// OIDC Core §3.1.2.1: pre-fills the sign-in form's email field.
    pub login_hint: Option<String>,
    /// When the request was parked (0: not parked): a sign-in after it satisfies
    /// `prompt=login` and `max_age` when the request resumes.
    pub parked_at: i64,
}

impl ValidRequest {
    /// Whether a session that began at `auth_time` is recent enough for `max_age` (OIDC Core
    /// §3.1.2.1: `max_age=0` is `prompt=login`).
    pub fn session_fresh(&self, auth_time: i64, now: i64) -> bool {
        self.max_age.is_none_or(|m| now - auth_time <= m && m > 0)
    }

    /// Whether a session may continue this request where it resumes (`/consent`): one that
    /// began after the request was parked always may; an older one only if neither
    /// `prompt=login` nor `max_age` asks for a fresh sign-in. Without this check, opening
    /// `/consent?request_id=…` directly would skip the sign-in they ask for. Timestamps are
    /// whole seconds, so a sign-in in the very second of the request does not count as after
    /// it (the safe side of a tie; the user is asked once more).
    pub fn session_satisfies(&self, auth_time: i64, now: i64) -> bool {
        (self.parked_at > 0 && auth_time > self.parked_at)
            || (self.prompt != Prompt::Login && self.session_fresh(auth_time, now))
    }
}

/// The stored form of a parked request (JSON in the database). The client is re-read and the
/// redirect URI re-checked when it resumes, so a client changed meanwhile is noticed.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct ParkedJson {
    client_id: String,
    redirect_uri: String,
    redirect_uri_given: bool,
    scope: String,
    state: Option<String>,
    code_challenge: Option<String>,
    prompt: Prompt,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_age: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    login_hint: Option<String>,
}

/// An answer to the client through the user agent: the redirect URI plus response parameters
/// (RFC 6749 §4.1.2 / §4.1.2.1). The surface adds `iss` (RFC 9207) when rendering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRedirect {
    pub redirect_uri: String,
    pub params: Vec<(&'static str, String)>,
}

impl AuthorizationRedirect {
    /// An error response (RFC 6749 §4.1.2.1): `error`, `error_description`, `state`.
    pub fn error(
        redirect_uri: &str,
        state: Option<&str>,
        code: &'static str,
        description: impl Into<String>,
    ) -> Self {
        let mut params = vec![("error", code.to_string())];
        params.push(("error_description", description.into()));
        if let Some(s) = state {
            params.push(("state", s.to_string()));
        }
        Self {
            redirect_uri: redirect_uri.to_string(),
            params,
        }
    }

    /// The error code, if this is an error response.
    pub fn error_code(&self) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| *k == "error")
            .map(|(_, v)| v.as_str())
    }

    /// The `Location` to send: the redirect URI exactly as registered, with the parameters
    /// appended to its query (RFC 6749 §3.1.2: "MUST retain the query component") and
    /// `iss` last (RFC 9207 §2).
    pub fn location(&self, issuer: &str) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &self.params {
            ser.append_pair(k, v);
        }
        ser.append_pair("iss", issuer);
        let query = ser.finish();
        let uri = &self.redirect_uri;
        let sep = match uri.find('?') {
            None => "?",
            Some(_) if uri.ends_with('?') || uri.ends_with('&') => "",
            Some(_) => "&",
        };
        format!("{uri}{sep}{query}")
    }
}

/// Why an authorization request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// RFC 6749 §4.1.2.1: "If the request fails due to a missing, invalid, or mismatching
    /// redirection URI, or if the client identifier is missing or invalid, the authorization
    /// server SHOULD inform the resource owner of the error and MUST NOT automatically
    /// redirect the user-agent to the invalid redirection URI." `status` is an HTTP hint.
    Page { status: u16, message: String },
    /// Every other error goes back to the client.
    Redirect(AuthorizationRedirect),
}

impl AuthorizeError {
    fn page(message: impl Into<String>) -> Self {
        Self::Page {
            status: 400,
            message: message.into(),
        }
    }
}

impl From<StoreError> for AuthorizeError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Self::Page {
                    status: 503,
                    message: "The service is busy. Please try again in a moment.".into(),
                }
            }
            _ => {
                tracing::error!(error = %e, "storage error");
                Self::Page {
                    status: 500,
                    message: "Something went wrong on our side. Please try again later.".into(),
                }
            }
        }
    }
}

/// Plain-language descriptions of what a scope lets an application do (the approval screen).
pub fn scope_descriptions(scope: ScopeSet) -> Vec<(&'static str, &'static str)> {
    let mut v = Vec::new();
    // OIDC Core §5.4: what each identity scope lets the application receive.
    if scope.openid {
        v.push((
            "openid",
            "Sign you in with your account (a stable identifier, not your email address)",
        ));
    }
    if scope.profile {
        v.push(("profile", "See your name"));
    }
    if scope.email {
        v.push(("email", "See your email address and whether it is verified"));
    }
    if scope.phone {
        v.push(("phone", "See your phone number"));
    }
    if scope.allows(Need::Read) {
        v.push((
            "read",
            "See your profile (name, email address, phone) and your cameras",
        ));
    }
    if scope.allows(Need::Write) {
        v.push(("write", "Add, change and delete cameras on your account"));
    }
    v
}

/// RFC 7636 §4.2: an S256 challenge is BASE64URL (no padding) of a SHA-256 digest: 43
/// characters of the base64url alphabet.
fn valid_s256_challenge(c: &str) -> bool {
    c.len() == 43
        && c.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`.
fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// RFC 7636 §4.2: `code_challenge = BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// How an authorization code looks for a client of this token style (the profile's).
pub fn code_format(style: Option<TokenStyle>) -> TokenFormat {
    match style {
        // django-oauth-toolkit style (≈ 178 bits).
        Some(TokenStyle::Alnum30) => TokenFormat::Alnum30,
        // `cgac_` + 32 alphanumerics (≈ 190 bits).
        _ => TokenFormat::Prefixed("cgac_"),
    }
}

fn parse_prompt(p: Option<&str>) -> Result<Prompt, String> {
    let Some(p) = p else {
        return Ok(Prompt::Auto);
    };
    let values: Vec<&str> = p.split(' ').filter(|s| !s.is_empty()).collect();
    // OIDC Core §3.1.2.1: "none" must not be combined with any other value.
    if values.contains(&"none") {
        return if values.len() == 1 {
            Ok(Prompt::None)
        } else {
            Err("prompt=none cannot be combined with other values.".into())
        };
    }
    if values.contains(&"login") {
        return Ok(Prompt::Login);
    }
    if values.contains(&"consent") {
        return Ok(Prompt::Consent);
    }
    // select_account and unknown values: nothing to do.
    Ok(Prompt::Auto)
}

/// The first step of validating an authorization request (RFC 6749 §4.1.1), before the
/// client is looked up: the parameter count, no repeated `client_id` / `redirect_uri`
/// (RFC 6749 §3.1), and the `client_id` itself. Errors are pages. Pure, so the fuzz target
/// `authorize_request` and the property tests run exactly what the endpoint runs.
pub fn authorization_client_id(pairs: &[(String, String)]) -> Result<&str, AuthorizeError> {
    if pairs.len() > MAX_PARAMS {
        return Err(AuthorizeError::page("Too many parameters."));
    }
    let count = |name: &str| pairs.iter().filter(|(k, _)| k == name).count();
    // RFC 6749 §3.1: "Request and response parameters MUST NOT be included more than
    // once." A repeated client_id or redirect_uri leaves nothing safe to redirect to.
    if count("client_id") > 1 {
        return Err(AuthorizeError::page(
            "The client_id parameter is included more than once.",
        ));
    }
    if count("redirect_uri") > 1 {
        return Err(AuthorizeError::page(MISMATCHING_REDIRECT_URI));
    }
    let first = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let client_id =
        first("client_id").ok_or_else(|| AuthorizeError::page("Missing client_id parameter."))?;
    if client_id.len() > 256 {
        return Err(invalid_client());
    }
    Ok(client_id)
}

fn invalid_client() -> AuthorizeError {
    AuthorizeError::page("Invalid client_id parameter value.")
}

/// The rest of the validation, once the client named by [`authorization_client_id`] is
/// known: the redirect URI (exact match against the registered ones — until it is known good,
/// errors are pages), then everything else, whose errors go back to the client. Pure.
pub fn validate_authorization_for(
    client: Client,
    pairs: Vec<(String, String)>,
) -> Result<ValidRequest, AuthorizeError> {
    let count = |name: &str| pairs.iter().filter(|(k, _)| k == name).count();
    let first = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    // RFC 9700 §2.1 / §4.1.3: the redirect URI is compared to the registered ones by exact
    // string comparison — no normalisation, no prefix or pattern matching. Registered
    // URIs must be absolute https (http on loopback), without fragment (RFC 6749 §3.1.2);
    // they are re-checked here in case one was imported unchecked.
    let (redirect_uri, given) = match first("redirect_uri") {
        Some(given) => {
            let registered = client.redirect_uris.iter().any(|r| r == given);
            if !registered || validate_redirect_uri(given).is_err() {
                return Err(AuthorizeError::page(MISMATCHING_REDIRECT_URI));
            }
            (given.to_string(), true)
        }
        // RFC 6749 §3.1.2.3: with exactly one registered URI the parameter may be omitted.
        None => match client.redirect_uris.as_slice() {
            [only] if validate_redirect_uri(only).is_ok() => (only.clone(), false),
            [] | [_] => {
                return Err(AuthorizeError::page(
                    "This application has no valid registered redirect URI.",
                ))
            }
            _ => {
                return Err(AuthorizeError::page(
                    "Missing redirect_uri parameter: this application has several \
                     registered redirect URIs, so the request must name one.",
                ))
            }
        },
    };
    // From here on, errors go back to the client (RFC 6749 §4.1.2.1).
    let state = match first("state") {
        Some(s) if s.len() > MAX_STATE_LEN || count("state") > 1 => {
            return Err(AuthorizeError::Redirect(AuthorizationRedirect::error(
                &redirect_uri,
                None,
                "invalid_request",
                "The state parameter is too long or repeated.",
            )))
        }
        s => s.map(str::to_string),
    };
    let fail = |code: &'static str, d: String| {
        AuthorizeError::Redirect(AuthorizationRedirect::error(
            &redirect_uri,
            state.as_deref(),
            code,
            d,
        ))
    };
    let from_oauth = |e: OAuthError| fail(e.code.as_str(), e.description);
    let params = Params::from_pairs(pairs.clone()).map_err(from_oauth)?;
    match params.get("response_type") {
        None => {
            return Err(fail(
                "invalid_request",
                "Missing response_type parameter.".into(),
            ))
        }
        Some("code") => {}
        Some(other) => {
            let shown: String = other.chars().take(40).collect();
            return Err(fail(
                "unsupported_response_type",
                format!("Response type `{shown}` is not supported; use `code`."),
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "This client may not use the authorization code grant.".into(),
        ));
    }
    // RFC 6749 §3.3: the scope must lie within what the client may be granted. The identity
    // scopes (OIDC) go to any client of this grant; registration limits camera permissions.
    let scope = match params.get("scope") {
        None => client.scopes,
        Some(s) => {
            let set = ScopeSet::parse_requested(s).map_err(from_oauth)?;
            if !client.scopes.covers(&set.resource()) {
                return Err(fail(
                    "invalid_scope",
                    "The requested scope exceeds what this client may be granted.".into(),
                ));
            }
            set
        }
    };
    // RFC 7636 §4.3 / RFC 9700 §2.1.1: PKCE with S256 only; required for public clients.
    let code_challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, None) => {
            if client.kind == ClientKind::Public {
                return Err(fail(
                    "invalid_request",
                    "PKCE is required for public clients: send code_challenge and \
                     code_challenge_method=S256 (RFC 7636, RFC 9700 §2.1.1)."
                        .into(),
                ));
            }
            None
        }
        (None, Some(_)) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method given without code_challenge.".into(),
            ))
        }
        (Some(c), Some("S256")) => {
            if !valid_s256_challenge(c) {
                return Err(fail(
                    "invalid_request",
                    "code_challenge must be 43 characters of base64url (S256, RFC 7636 §4.2)."
                        .into(),
                ));
            }
            Some(c.to_string())
        }
        // A missing method means "plain" (RFC 7636 §4.3), which we do not accept.
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "Only code_challenge_method=S256 is supported; plain is not \
                 (RFC 9700 §2.1.1)."
                    .into(),
            ))
        }
    };
    let prompt = parse_prompt(params.get("prompt")).map_err(|d| fail("invalid_request", d))?;
    // OpenID Connect Core §3.1.2.1.
    if scope.openid && !given {
        return Err(fail(
            "invalid_request",
            "redirect_uri is required in an OpenID Connect request (scope openid).".into(),
        ));
    }
    let nonce = match params.get("nonce") {
        Some(n) if n.len() > crate::oidc::MAX_NONCE_LEN => {
            return Err(fail("invalid_request", "nonce is too long.".into()))
        }
        n => n.map(str::to_string),
    };
    let max_age = match params.get("max_age") {
        None => None,
        Some(m) => match m.parse::<i64>() {
            Ok(v) if v >= 0 => Some(v),
            _ => {
                return Err(fail(
                    "invalid_request",
                    "max_age must be a non-negative number of seconds.".into(),
                ))
            }
        },
    };
    let login_hint = params
        .get("login_hint")
        .filter(|h| h.len() <= 320)
        .map(str::to_string);
    Ok(ValidRequest {
        client,
        redirect_uri,
        redirect_uri_given: given,
        scope,
        state,
        code_challenge,
        prompt,
        nonce,
        max_age,
        login_hint,
        parked_at: 0,
    })
}

impl Core {
    /// Validates an authorization request (RFC 6749 §4.1.1). Client and redirect URI first:
    /// until both are known good, errors are pages, never redirects.
    pub async fn validate_authorization(
        &self,
        pairs: Vec<(String, String)>,
    ) -> Result<ValidRequest, AuthorizeError> {
        let client = self
            .store
            .client_by_client_id(authorization_client_id(&pairs)?)
            .await?
            .ok_or_else(invalid_client)?;
        validate_authorization_for(client, pairs)
    }

    /// Whether the user must see the approval screen: `prompt=consent`, or no remembered
    /// consent covering the requested scope.
    pub async fn needs_consent(
        &self,
        user_id: UserId,
        req: &ValidRequest,
    ) -> Result<bool, AuthorizeError> {
        if req.prompt == Prompt::Consent {
            return Ok(true);
        }
        let stored = self.store.consent(user_id, req.client.pk).await?;
        Ok(!matches!(stored, Some(s) if s.covers(&req.scope)))
    }

    /// Remembers that the user approved `scope` for the client (added to what they approved
    /// before).
    pub async fn remember_consent(
        &self,
        user_id: UserId,
        client: &Client,
        scope: ScopeSet,
    ) -> Result<(), AuthorizeError> {
        let prev = self.store.consent(user_id, client.pk).await?;
        let scope = prev.map(|p| p.union(&scope)).unwrap_or(scope);
        self.store
            .put_consent(user_id, client.pk, scope, self.now())
            .await?;
        self.notify(
            &[user_id],
            "app.authorized",
            serde_json::json!({
                "client_id": client.client_id,
                "name": client.name,
                "scope": scope.to_string(),
            }),
        )
        .await;
        Ok(())
    }

    /// Issues an authorization code (RFC 6749 §4.1.2) and returns the redirect carrying it.
    pub async fn issue_code(
        &self,
        user: &User,
        authn: &Authn,
        req: &ValidRequest,
        caller: &Caller,
    ) -> Result<AuthorizationRedirect, AuthorizeError> {
        let style = self
            .profiles
            .get(&req.client.profile)
            .map(|p| p.token_style);
        let code = secret::generate(code_format(style));
        let now = self.now();
        self.store
            .create_auth_code(&NewAuthCode {
                hash: secret::digest(&code),
                client_pk: req.client.pk,
                user_id: user.id,
                redirect_uri: req.redirect_uri.clone(),
                redirect_uri_given: req.redirect_uri_given,
                scope: req.scope,
                code_challenge: req.code_challenge.clone(),
                created_at: now,
                expires_at: now + self.settings.authz.code_ttl_secs,
                nonce: req.nonce.clone(),
                authn: Some(authn.clone()),
            })
            .await?;
        self.audit(
            AuditKind::TokenIssued,
            Some(user.id),
            Some(&req.client.client_id),
            caller.ip.as_deref(),
            "authorization code",
        )
        .await;
        let mut params = vec![("code", code)];
        if let Some(s) = &req.state {
            params.push(("state", s.clone()));
        }
        Ok(AuthorizationRedirect {
            redirect_uri: req.redirect_uri.clone(),
            params,
        })
    }

    /// Parks a validated request server-side while the user signs in or decides; returns the
    /// opaque handle (only its digest is stored). Nothing of the request travels in the
    /// browser but this handle.
    pub async fn park_request(&self, req: &ValidRequest) -> Result<String, AuthorizeError> {
        let json = serde_json::to_string(&ParkedJson {
            client_id: req.client.client_id.clone(),
            redirect_uri: req.redirect_uri.clone(),
            redirect_uri_given: req.redirect_uri_given,
            scope: req.scope.to_scope_string(),
            state: req.state.clone(),
            code_challenge: req.code_challenge.clone(),
            prompt: req.prompt,
            nonce: req.nonce.clone(),
            max_age: req.max_age,
            login_hint: req.login_hint.clone(),
        })
        .map_err(|e| StoreError::Other(e.to_string()))?;
        let handle = secret::generate(TokenFormat::Prefixed("cgar_"));
        let now = self.now();
        self.store
            .park_authz_request(
                &secret::digest(&handle),
                &ParkedRequest {
                    client_pk: req.client.pk,
                    request: json,
                    created_at: now,
                    expires_at: now + PARKED_REQUEST_TTL_SECS,
                },
            )
            .await?;
        Ok(handle)
    }

    /// Reads (or, with `take`, consumes) a parked request. `Ok(None)`: unknown or expired.
    /// The client is re-read and the redirect URI re-checked against its registration.
    pub async fn parked_request(
        &self,
        handle: &str,
        take: bool,
    ) -> Result<Option<ValidRequest>, AuthorizeError> {
        if handle.is_empty() || handle.len() > 128 {
            return Ok(None);
        }
        let hash = secret::digest(handle);
        let row = if take {
            self.store.take_authz_request(&hash).await?
        } else {
            self.store.parked_authz_request(&hash).await?
        };
        let Some(row) = row else { return Ok(None) };
        if row.expires_at <= self.now() {
            return Ok(None);
        }
        let Ok(p) = serde_json::from_str::<ParkedJson>(&row.request) else {
            tracing::error!("unreadable parked authorization request");
            return Ok(None);
        };
        let Some(client) = self.store.client_by_client_id(&p.client_id).await? else {
            return Ok(None);
        };
        if client.pk != row.client_pk || !client.redirect_uris.contains(&p.redirect_uri) {
            return Err(AuthorizeError::page(MISMATCHING_REDIRECT_URI));
        }
        Ok(Some(ValidRequest {
            client,
            redirect_uri: p.redirect_uri,
            redirect_uri_given: p.redirect_uri_given,
            scope: ScopeSet::parse(&p.scope).unwrap_or_default(),
            state: p.state,
            code_challenge: p.code_challenge,
            prompt: p.prompt,
            nonce: p.nonce,
            max_age: p.max_age,
            login_hint: p.login_hint,
            parked_at: row.created_at,
        }))
    }

    /// The owner of a client, for the approval screen.
    pub async fn client_owner(&self, client: &Client) -> Result<Option<User>, StoreError> {
        match client.owner_id {
            Some(id) => self.store.user_by_id(id).await,
            None => Ok(None),
        }
    }

    /// RFC 6749 §4.1.3: exchanging an authorization code at the token endpoint.
    pub(crate) async fn authorization_code_grant(
        &self,
        client: &Client,
        params: &Params,
        caller: &Caller,
    ) -> Result<TokenResponse, OAuthError> {
        let presented = params.require("code")?;
        let invalid = || {
            OAuthError::invalid_grant("The authorization code is invalid, expired or already used.")
        };
        if presented.len() > 256 {
            return Err(invalid());
        }
        let hash = secret::digest(presented);
        let code = self.store.auth_code(&hash).await?.ok_or_else(invalid)?;
        // §4.1.3: "ensure that the authorization code was issued to the authenticated
        // confidential client, or if the client is public, ensure that the code was issued to
        // client_id in the request". Another client's code looks like an unknown one.
        if code.client_pk != client.pk {
            return Err(invalid());
        }
        let now = self.now();
        // §4.1.2: "If an authorization code is used more than once, the authorization server
        // MUST deny the request and SHOULD revoke (when possible) all tokens previously issued
        // based on that authorization code."
        if code.used_at.is_some() {
            self.code_replayed(client, &hash, code.user_id, caller)
                .await?;
            return Err(invalid());
        }
        if code.expires_at <= now {
            return Err(invalid());
        }
        // §4.1.3: redirect_uri is required if it was in the authorization request, and must
        // then be identical.
        match params.get("redirect_uri") {
            None if code.redirect_uri_given => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri is required: it was given in the authorization request.",
                ))
            }
            Some(u) if u != code.redirect_uri => {
                return Err(OAuthError::invalid_grant(
                    "redirect_uri does not match the one given in the authorization request.",
                ))
            }
            _ => {}
        }
        // RFC 7636 §4.6 and RFC 9700 §2.1.1 (PKCE downgrade: a verifier for a code issued
        // without a challenge is refused).
        match (&code.code_challenge, params.get("code_verifier")) {
            (Some(challenge), Some(verifier)) => {
                if !valid_verifier(verifier)
                    || !secret::ct_eq(s256_challenge(verifier).as_bytes(), challenge.as_bytes())
                {
                    return Err(OAuthError::invalid_grant(
                        "PKCE verification failed: code_verifier does not match the challenge.",
                    ));
                }
            }
            (Some(_), None) => return Err(OAuthError::invalid_grant(
                "code_verifier is required: the authorization request carried a PKCE challenge.",
            )),
            (None, Some(_)) => {
                return Err(OAuthError::invalid_grant(
                    "code_verifier given, but the authorization request had no code_challenge.",
                ))
            }
            (None, None) if client.kind == ClientKind::Public => return Err(invalid()),
            (None, None) => {}
        }
        let user = match self.store.user_by_id(code.user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Err(invalid()),
        };
        // The claim: one conditional UPDATE; a concurrent second use loses here.
        if !self.store.claim_auth_code(&hash, now).await? {
            self.code_replayed(client, &hash, code.user_id, caller)
                .await?;
            return Err(invalid());
        }
        // OIDC: the family remembers how the user signed in, so its refreshes carry id_tokens.
        let authn = code.authn.clone().filter(|_| code.scope.openid);
        let mut resp = self
            .issue_family_authn(
                client,
                Some(user.id),
                GrantType::AuthorizationCode,
                code.scope,
                caller,
                authn.clone(),
            )
            .await?;
        // Link the new family to the code, so a replay can revoke it. If a replay was recorded
        // between the claim and now, revoke at once.
        let family = match self
            .store
            .access_token(&secret::digest(&resp.access_token))
            .await?
        {
            Some(a) => Some(a.family_id),
            None => match &resp.refresh_token {
                Some(r) => self
                    .store
                    .refresh_token(&secret::digest(r))
                    .await?
                    .map(|r| r.family_id),
                None => None,
            },
        };
        match family {
            Some(f) => {
                if self.store.attach_auth_code_family(&hash, f).await? {
                    self.store.revoke_family(f, self.now()).await?;
                    return Err(invalid());
                }
            }
            None => {
                tracing::warn!(client = %client.client_id, "tokens minted from a code could not be linked to it");
            }
        }
        // OIDC Core §3.1.3.3: an id_token with the tokens of an openid request.
        if let Some(authn) = &authn {
            resp.id_token = Some(
                self.sign_id_token(
                    client,
                    user.id,
                    authn,
                    code.nonce.as_deref(),
                    &resp.access_token,
                )
                .await?,
            );
        }
        Ok(resp)
    }

    async fn code_replayed(
        &self,
        client: &Client,
        hash: &[u8],
        user_id: UserId,
        caller: &Caller,
    ) -> Result<(), OAuthError> {
        let family = self.store.mark_auth_code_replayed(hash, self.now()).await?;
        if let Some(f) = family {
            self.store.revoke_family(f, self.now()).await?;
        }
        self.audit(
            AuditKind::TheftDetected,
            Some(user_id),
            Some(&client.client_id),
            caller.ip.as_deref(),
            match family {
                Some(f) => format!("authorization code reused; family {f} revoked"),
                None => "authorization code reused".to_string(),
            },
        )
        .await;
        tracing::warn!(client = %client.client_id, "authorization code reuse");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_s256_challenge(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!valid_s256_challenge("short"));
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("too-short"));
        assert!(!valid_verifier(&"a".repeat(129)));
    }

    #[test]
    fn location_keeps_the_registered_uri_and_appends() {
        let r = AuthorizationRedirect {
            redirect_uri: "https://a.example/cb?x=1".into(),
            params: vec![("code", "abc".into()), ("state", "s t".into())],
        };
        assert_eq!(
            r.location("https://as.example"),
            "https://a.example/cb?x=1&code=abc&state=s+t&iss=https%3A%2F%2Fas.example"
        );
        let e = AuthorizationRedirect::error(
            "https://a.example/cb",
            Some("xyz"),
            "access_denied",
            "no",
        );
        assert_eq!(e.error_code(), Some("access_denied"));
        assert!(e.location("http://127.0.0.1:1").starts_with(
            "https://a.example/cb?error=access_denied&error_description=no&state=xyz&iss="
        ));
    }

    #[test]
    fn prompt_values() {
        assert_eq!(parse_prompt(None), Ok(Prompt::Auto));
        assert_eq!(parse_prompt(Some("none")), Ok(Prompt::None));
        assert!(parse_prompt(Some("none consent")).is_err());
        assert_eq!(parse_prompt(Some("consent")), Ok(Prompt::Consent));
        assert_eq!(parse_prompt(Some("login consent")), Ok(Prompt::Login));
        assert_eq!(parse_prompt(Some("select_account")), Ok(Prompt::Auto));
    }
}
