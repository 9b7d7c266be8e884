//! `camgate-client`: an OAuth 2.0 client for camgate and Angelcam-compatible camera APIs.
//!
//! It obtains tokens with the password, authorization code + PKCE (RFC 7636, S256), client
//! credentials and refresh grants, keeps them in a pluggable [`TokenStore`] (in memory, or a
//! 0600 JSON file written atomically), and calls the API with `Authorization: Bearer`:
//!
//! * a known-expired access token is refreshed before the call;
//! * a `401` is answered by refreshing **once** and retrying **once**;
//! * however many calls run concurrently, **one** refresh request goes out: the token state sits
//!   behind an async mutex with a generation counter, and a caller that saw generation `g`
//!   refreshes only if the state is still at `g` — the others reuse the result. A rotating
//!   server (single-use refresh tokens) therefore never sees a used refresh token come back,
//!   which would revoke the whole token family as theft (RFC 9700 §4.14.2).
//!
//! The client keeps the refresh token, never the password: [`Client::password_grant`] sends it
//! once and forgets it. The client secret lives only in memory.
//!
//! ```no_run
//! use camgate_client::{Client, FileStore};
//!
//! # async fn demo() -> Result<(), camgate_client::Error> {
//! let client = Client::builder("https://camgate.example.com")
//!     .client_id("my-app")
//!     .scope("read")
//!     .store(FileStore::new("/home/me/.config/my-app/tokens.json"))
//!     .build()?;
//! // Once: the password is used for this request and dropped.
//! client.password_grant("user@example.com", "secret").await?;
//! // From then on (also in a later run, from the file): refreshed as needed.
//! let cameras: serde_json::Value = client.get("/v1/cameras/").await?.json().await?;
//! # let _ = cameras; Ok(()) }
//! ```
//!
//! Authorization code with PKCE:
//!
//! ```no_run
//! # async fn demo(client: camgate_client::Client) -> Result<(), camgate_client::Error> {
//! let request = client.authorization_request("http://127.0.0.1:8765/callback")?;
//! println!("open {}", request.url());
//! // … the browser comes back to http://127.0.0.1:8765/callback?code=…&state=…
//! # let callback_url = String::new();
//! client.exchange_code(request, &callback_url).await?; // checks state (and iss) first
//! # Ok(()) }
//! ```

mod error;
pub mod media;
mod store;

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use rand::RngCore;
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

pub use error::{Error, StoreError};
/// The HTTP client this crate is built on (for `Method`, `Response`, `RequestBuilder`).
pub use reqwest;
pub use store::{CredentialsFile, FileStore, MemoryStore, TokenStore, Tokens};

/// The Angelcam token endpoint path (the default).
pub const ANGELCAM_TOKEN_PATH: &str = "/oauth/token/";
/// The Angelcam authorization endpoint path (the default).
pub const ANGELCAM_AUTHORIZE_PATH: &str = "/oauth/authorize/";
/// The Angelcam revocation endpoint path (the default).
pub const ANGELCAM_REVOKE_PATH: &str = "/oauth/token-revoke/";

/// The client's notion of now, in Unix seconds. Injectable so expiry can be tested.
pub trait Clock: Send + Sync {
    fn now(&self) -> i64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0)
    }
}

impl<F: Fn() -> i64 + Send + Sync> Clock for F {
    fn now(&self) -> i64 {
        self()
    }
}

/// Builds a [`Client`].
pub struct ClientBuilder {
    server: String,
    client_id: Option<String>,
    client_secret: Option<Zeroizing<String>>,
    token_path: String,
    authorize_path: String,
    revoke_path: String,
    scopes: Vec<String>,
    store: Option<Arc<dyn TokenStore>>,
    clock: Option<Arc<dyn Clock>>,
    http: Option<reqwest::Client>,
    leeway_secs: i64,
}

impl ClientBuilder {
    /// The client identifier (RFC 6749 §2.2). Required.
    pub fn client_id(mut self, id: impl Into<String>) -> Self {
        self.client_id = Some(id.into());
        self
    }
    /// The client secret of a confidential client; sent in the request body
    /// (`client_secret_post`, RFC 6749 §2.3.1). Kept in memory only, never stored.
    pub fn client_secret(mut self, secret: impl Into<String>) -> Self {
        self.client_secret = Some(Zeroizing::new(secret.into()));
        self
    }
    /// The token endpoint's path (default [`ANGELCAM_TOKEN_PATH`]; `/oauth/token` for the
    /// canonical endpoint).
    pub fn token_path(mut self, path: impl Into<String>) -> Self {
        self.token_path = path.into();
        self
    }
    /// The authorization endpoint's path (default [`ANGELCAM_AUTHORIZE_PATH`]).
    pub fn authorize_path(mut self, path: impl Into<String>) -> Self {
        self.authorize_path = path.into();
        self
    }
    /// The revocation endpoint's path (default [`ANGELCAM_REVOKE_PATH`]).
    pub fn revoke_path(mut self, path: impl Into<String>) -> Self {
        self.revoke_path = path.into();
        self
    }
    /// Adds a scope to request (RFC 6749 §3.3); none means the server's default.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scopes
            .extend(scope.into().split_whitespace().map(str::to_string));
        self
    }
    /// Where tokens are kept (default: a [`MemoryStore`]).
    pub fn store(mut self, store: impl TokenStore + 'static) -> Self {
        self.store = Some(Arc::new(store));
        self
    }
    /// Like [`ClientBuilder::store`], with a store the caller also holds.
    pub fn shared_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }
    /// The clock used for expiry (default [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }
    /// An HTTP client to use (e.g. with a proxy, extra roots or other timeouts; the default
    /// one gives up connecting after 10 s and on a whole request after 60 s). It should not follow
    /// redirects to other hosts with the Authorization header; reqwest's default strips it.
    pub fn http_client(mut self, http: reqwest::Client) -> Self {
        self.http = Some(http);
        self
    }
    /// Refresh this many seconds before the access token's expiry (default 30).
    pub fn leeway_secs(mut self, secs: i64) -> Self {
        self.leeway_secs = secs.max(0);
        self
    }

    pub fn build(self) -> Result<Client, Error> {
        let client_id = self
            .client_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Error::Config("a client_id is required".into()))?;
        let base = Url::parse(&self.server)?;
        if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
            return Err(Error::Config(format!(
                "the server must be an http(s) URL, not `{}`",
                self.server
            )));
        }
        let http = match self.http {
            Some(h) => h,
            None => reqwest::Client::builder()
                .user_agent(concat!("camgate-client/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(std::time::Duration::from_secs(10))
                .timeout(std::time::Duration::from_secs(60))
                .build()?,
        };
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                base,
                client_id,
                client_secret: self.client_secret,
                token_path: self.token_path,
                authorize_path: self.authorize_path,
                revoke_path: self.revoke_path,
                scopes: self.scopes,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                leeway: self.leeway_secs,
                state: tokio::sync::Mutex::new(State::default()),
            }),
        })
    }
}

/// An OAuth client bound to one server and one client id. Cheap to clone: clones share the
/// tokens, the store and the refresh lock.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: Url,
    client_id: String,
    client_secret: Option<Zeroizing<String>>,
    token_path: String,
    authorize_path: String,
    revoke_path: String,
    scopes: Vec<String>,
    store: Arc<dyn TokenStore>,
    clock: Arc<dyn Clock>,
    leeway: i64,
    state: tokio::sync::Mutex<State>,
}

#[derive(Default)]
struct State {
    loaded: bool,
    tokens: Option<Tokens>,
    /// Bumped on every change of `tokens`; see the crate docs.
    generation: u64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("server", &self.inner.base.as_str())
            .field("client_id", &self.inner.client_id)
            .field(
                "client_secret",
                &self.inner.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

/// An authorization request in progress (RFC 6749 §4.1.1 with RFC 7636 PKCE): the URL to send
/// the user to, and the `state` and code verifier to check the answer against.
pub struct AuthorizationRequest {
    url: Url,
    state: String,
    verifier: Zeroizing<String>,
    redirect_uri: String,
}

impl AuthorizationRequest {
    /// Where to send the user's browser.
    pub fn url(&self) -> &Url {
        &self.url
    }
    /// The `state` sent (RFC 6749 §10.12); the answer must carry the same one.
    pub fn state(&self) -> &str {
        &self.state
    }
    pub fn redirect_uri(&self) -> &str {
        &self.redirect_uri
    }
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &self.url.as_str())
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    expires_in: Option<i64>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// 32 random bytes, base64url: 43 characters (RFC 7636 §4.1 asks for 43–128 of them).
fn random_token() -> String {
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

/// RFC 7636 §4.2: `code_challenge = BASE64URL(SHA256(ASCII(code_verifier)))`.
pub fn s256_challenge(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

impl Client {
    /// Starts a builder for the server at `server` (its base URL, e.g.
    /// `https://camgate.example.com`; a path prefix is kept).
    pub fn builder(server: impl Into<String>) -> ClientBuilder {
        ClientBuilder {
            server: server.into(),
            client_id: None,
            client_secret: None,
            token_path: ANGELCAM_TOKEN_PATH.into(),
            authorize_path: ANGELCAM_AUTHORIZE_PATH.into(),
            revoke_path: ANGELCAM_REVOKE_PATH.into(),
            scopes: Vec::new(),
            store: None,
            clock: None,
            http: None,
            leeway_secs: 30,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.inner.client_id
    }

    /// The server's base URL.
    pub fn server(&self) -> &Url {
        &self.inner.base
    }

    /// The absolute URL of `path` on the server. Absolute URLs are accepted only on the
    /// server's own origin: the access token is never sent elsewhere.
    pub fn url(&self, path: &str) -> Result<Url, Error> {
        if path.starts_with("http://") || path.starts_with("https://") {
            let u = Url::parse(path)?;
            if u.origin() != self.inner.base.origin() {
                return Err(Error::ForeignOrigin(u.origin().ascii_serialization()));
            }
            return Ok(u);
        }
        let base = self.inner.base.as_str().trim_end_matches('/');
        let path = path.trim_start_matches('/');
        Ok(Url::parse(&format!("{base}/{path}"))?)
    }

    /// The current tokens (loading them from the store on first use).
    pub async fn tokens(&self) -> Result<Option<Tokens>, Error> {
        let mut st = self.inner.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        Ok(st.tokens.clone())
    }

    async fn ensure_loaded(&self, st: &mut State) -> Result<(), Error> {
        if !st.loaded {
            st.tokens = self.inner.store.load().await?;
            st.loaded = true;
            st.generation += 1;
        }
        Ok(())
    }

    fn scope_param(&self) -> Option<String> {
        (!self.inner.scopes.is_empty()).then(|| self.inner.scopes.join(" "))
    }

    /// POSTs a grant to the token endpoint with the client's credentials (RFC 6749 §2.3.1,
    /// in the body) and parses the answer (§5.1 / §5.2).
    async fn token_request(
        &self,
        mut form: Vec<(&str, &str)>,
        grant: &str,
        previous_refresh: Option<&str>,
    ) -> Result<Tokens, Error> {
        form.push(("client_id", &self.inner.client_id));
        if let Some(s) = &self.inner.client_secret {
            form.push(("client_secret", s.as_str()));
        }
        let r = self
            .inner
            .http
            .post(self.url(&self.inner.token_path)?)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await?;
        let status = r.status();
        let body = r.bytes().await?;
        if !status.is_success() {
            return Err(error::from_error_body(status.as_u16(), &body));
        }
        let t: TokenResponse = serde_json::from_slice(&body).map_err(|e| Error::BadResponse {
            status: status.as_u16(),
            detail: format!("not a token response: {e}"),
        })?;
        let now = self.inner.clock.now();
        Ok(Tokens {
            access_token: t.access_token,
            token_type: t.token_type.unwrap_or_else(|| "Bearer".into()),
            expires_at: t.expires_in.map(|s| now.saturating_add(s)),
            // RFC 6749 §6: the server may keep the refresh token (no new one in the answer).
            refresh_token: t.refresh_token.or(previous_refresh.map(str::to_string)),
            scope: t.scope,
            grant: Some(grant.to_string()),
        })
    }

    /// Stores freshly obtained tokens (store first, then memory, under the lock).
    async fn install(&self, st: &mut State, tokens: Tokens) -> Result<Tokens, Error> {
        let saved = self.inner.store.save(&tokens).await;
        st.tokens = Some(tokens.clone());
        st.loaded = true;
        st.generation += 1;
        saved?;
        Ok(tokens)
    }

    async fn grant(&self, form: Vec<(&str, &str)>, grant: &str) -> Result<Tokens, Error> {
        let mut st = self.inner.state.lock().await;
        let t = self.token_request(form, grant, None).await?;
        self.install(&mut st, t).await
    }

    /// Resource owner password credentials grant (RFC 6749 §4.3). The password is sent in
    /// this one request and not kept.
    pub async fn password_grant(&self, username: &str, password: &str) -> Result<Tokens, Error> {
        let scope = self.scope_param();
        let mut form = vec![
            ("grant_type", "password"),
            ("username", username),
            ("password", password),
        ];
        if let Some(s) = &scope {
            form.push(("scope", s));
        }
        self.grant(form, "password").await
    }

    /// Client credentials grant (RFC 6749 §4.4); needs a client secret. There is no refresh
    /// token (§4.4.3): when the token expires or is rejected, the client asks again.
    pub async fn client_credentials_grant(&self) -> Result<Tokens, Error> {
        if self.inner.client_secret.is_none() {
            return Err(Error::Config(
                "the client credentials grant needs a client secret".into(),
            ));
        }
        let scope = self.scope_param();
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(s) = &scope {
            form.push(("scope", s));
        }
        self.grant(form, "client_credentials").await
    }

    /// Starts an authorization-code request with PKCE S256 (RFC 7636 §4.1–4.3) and a random
    /// `state` (RFC 6749 §10.12).
    pub fn authorization_request(&self, redirect_uri: &str) -> Result<AuthorizationRequest, Error> {
        let verifier = Zeroizing::new(random_token());
        let state = random_token();
        let mut url = self.url(&self.inner.authorize_path)?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.inner.client_id)
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("state", &state)
                .append_pair("code_challenge", &s256_challenge(&verifier))
                .append_pair("code_challenge_method", "S256");
            if let Some(s) = self.scope_param() {
                q.append_pair("scope", &s);
            }
        }
        Ok(AuthorizationRequest {
            url,
            state,
            verifier,
            redirect_uri: redirect_uri.to_string(),
        })
    }

    /// Finishes an authorization-code request: `callback` is the URL the browser was sent back
    /// to (or just its query string). Checks `state` (and `iss` when present, RFC 9207 §2.4)
    /// before the code is used, then exchanges code + verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
    pub async fn exchange_code(
        &self,
        request: AuthorizationRequest,
        callback: &str,
    ) -> Result<Tokens, Error> {
        let query = match callback.split_once('?') {
            Some((_, q)) => q,
            None => callback,
        };
        let query = query.split('#').next().unwrap_or("");
        let mut code = None;
        let mut state = None;
        let mut iss = None;
        let mut err = None;
        let mut err_desc = None;
        for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
            match &*k {
                "code" => code = Some(v.into_owned()),
                "state" => state = Some(v.into_owned()),
                "iss" => iss = Some(v.into_owned()),
                "error" => err = Some(v.into_owned()),
                "error_description" => err_desc = Some(v.into_owned()),
                _ => {}
            }
        }
        // RFC 6749 §10.12: an answer that does not carry our state is not ours.
        let state_ok = state.as_deref().is_some_and(|s| {
            s.len() == request.state.len()
                && s.bytes()
                    .zip(request.state.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        if !state_ok {
            return Err(Error::StateMismatch);
        }
        if let Some(iss) = iss {
            let ours = self.inner.base.as_str().trim_end_matches('/');
            if iss.trim_end_matches('/') != ours {
                return Err(Error::IssuerMismatch(iss));
            }
        }
        if let Some(code) = err {
            return Err(Error::Authorization {
                code,
                description: err_desc,
            });
        }
        let code = Zeroizing::new(code.ok_or(Error::MissingCode)?);
        self.exchange_code_unchecked(&code, &request).await
    }

    async fn exchange_code_unchecked(
        &self,
        code: &str,
        request: &AuthorizationRequest,
    ) -> Result<Tokens, Error> {
        let form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", request.redirect_uri.as_str()),
            ("code_verifier", request.verifier.as_str()),
        ];
        self.grant(form, "authorization_code").await
    }

    /// Installs tokens obtained elsewhere (e.g. from an earlier run) and saves them.
    pub async fn set_tokens(&self, tokens: Tokens) -> Result<(), Error> {
        let mut st = self.inner.state.lock().await;
        self.install(&mut st, tokens).await.map(|_| ())
    }

    /// Refreshes now (RFC 6749 §6), whatever the token's expiry; single-flight with every
    /// other refresh.
    pub async fn refresh(&self) -> Result<Tokens, Error> {
        let generation = {
            let mut st = self.inner.state.lock().await;
            self.ensure_loaded(&mut st).await?;
            st.generation
        };
        self.refresh_from(generation).await.map(|(t, _)| t)
    }

    /// Gets new tokens unless someone already did since `seen` (the generation the caller's
    /// token came from). The lock is held across the token request, so concurrent callers
    /// queue behind the one refresh and then find the generation moved on.
    async fn refresh_from(&self, seen: u64) -> Result<(Tokens, u64), Error> {
        let mut st = self.inner.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        let current = st.tokens.clone().ok_or(Error::NotAuthenticated)?;
        if st.generation != seen {
            return Ok((current, st.generation));
        }
        let fresh = match (&current.refresh_token, current.grant.as_deref()) {
            (Some(rt), _) => {
                let rt = Zeroizing::new(rt.clone());
                let form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", rt.as_str()),
                ];
                let grant = current.grant.as_deref().unwrap_or("refresh_token");
                self.token_request(form, grant, Some(&rt)).await?
            }
            (None, Some("client_credentials")) if self.inner.client_secret.is_some() => {
                let scope = self.scope_param();
                let mut form = vec![("grant_type", "client_credentials")];
                if let Some(s) = &scope {
                    form.push(("scope", s));
                }
                self.token_request(form, "client_credentials", None).await?
            }
            _ => return Err(Error::NoRefreshToken),
        };
        let t = self.install(&mut st, fresh).await?;
        Ok((t, st.generation))
    }

    /// The access token to use now and its generation, refreshing first when it is known to
    /// have expired.
    async fn access_token(&self) -> Result<(Tokens, u64), Error> {
        let (tokens, generation) = {
            let mut st = self.inner.state.lock().await;
            self.ensure_loaded(&mut st).await?;
            (
                st.tokens.clone().ok_or(Error::NotAuthenticated)?,
                st.generation,
            )
        };
        let now = self.inner.clock.now();
        if matches!(tokens.expires_at, Some(e) if now >= e - self.inner.leeway) {
            return self.refresh_from(generation).await;
        }
        Ok((tokens, generation))
    }

    /// Sends an authenticated request: `method` on `path` (relative to the server, or an
    /// absolute URL on the same origin), with `customize` adding a body, headers or a query.
    /// `customize` may run twice: on a `401` the client refreshes once and retries once.
    /// Any other status is returned as is; check it.
    pub async fn request<F>(
        &self,
        method: Method,
        path: &str,
        customize: F,
    ) -> Result<Response, Error>
    where
        F: Fn(RequestBuilder) -> RequestBuilder,
    {
        let url = self.url(path)?;
        let (tokens, generation) = self.access_token().await?;
        let r = self.send_once(&method, &url, &tokens, &customize).await?;
        // RFC 6750 §3.1: 401 means the token was not accepted (expired, revoked).
        if r.status() != StatusCode::UNAUTHORIZED {
            return Ok(r);
        }
        let fresh = match self.refresh_from(generation).await {
            Ok((t, _)) => t,
            // Nothing to refresh with: the caller gets the 401 itself.
            Err(Error::NoRefreshToken) => return Ok(r),
            Err(e) => return Err(e),
        };
        self.send_once(&method, &url, &fresh, &customize).await
    }

    async fn send_once<F>(
        &self,
        method: &Method,
        url: &Url,
        tokens: &Tokens,
        customize: &F,
    ) -> Result<Response, Error>
    where
        F: Fn(RequestBuilder) -> RequestBuilder,
    {
        let rb = self
            .inner
            .http
            .request(method.clone(), url.clone())
            .bearer_auth(&tokens.access_token);
        Ok(customize(rb).send().await?)
    }

    /// `GET path`, authenticated.
    pub async fn get(&self, path: &str) -> Result<Response, Error> {
        self.request(Method::GET, path, |r| r).await
    }

    /// `method path`, authenticated, with an optional JSON body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        json: Option<&serde_json::Value>,
    ) -> Result<Response, Error> {
        self.request(method, path, |r| match json {
            Some(j) => r.json(j),
            None => r,
        })
        .await
    }

    /// Revokes the session at the server (RFC 7009: the refresh token, which revokes its
    /// family, else the access token) and clears the store. The store is cleared even when the
    /// server cannot be reached; that error is returned afterwards.
    pub async fn revoke(&self) -> Result<(), Error> {
        let mut st = self.inner.state.lock().await;
        self.ensure_loaded(&mut st).await?;
        let result = match st.tokens.take() {
            None => Ok(()),
            Some(t) => {
                let (token, hint) = match &t.refresh_token {
                    Some(r) => (r.as_str(), "refresh_token"),
                    None => (t.access_token.as_str(), "access_token"),
                };
                self.revoke_request(token, hint).await
            }
        };
        st.generation += 1;
        self.inner.store.clear().await?;
        result
    }

    async fn revoke_request(&self, token: &str, hint: &str) -> Result<(), Error> {
        let mut form = vec![
            ("token", token),
            ("token_type_hint", hint),
            ("client_id", self.inner.client_id.as_str()),
        ];
        if let Some(s) = &self.inner.client_secret {
            form.push(("client_secret", s.as_str()));
        }
        let r = self
            .inner
            .http
            .post(self.url(&self.inner.revoke_path)?)
            .form(&form)
            .send()
            .await?;
        let status = r.status();
        if status.is_success() {
            return Ok(());
        }
        let body = r.bytes().await?;
        Err(error::from_error_body(status.as_u16(), &body))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn client() -> Client {
        Client::builder("https://cams.example.com/prefix/")
            .client_id("app")
            .scope("read write")
            .build()
            .unwrap()
    }

    #[test]
    fn urls_keep_the_prefix_and_refuse_other_origins() {
        let c = client();
        assert_eq!(
            c.url("/v1/me/").unwrap().as_str(),
            "https://cams.example.com/prefix/v1/me/"
        );
        assert_eq!(
            c.url("https://cams.example.com/x").unwrap().as_str(),
            "https://cams.example.com/x"
        );
        assert!(matches!(
            c.url("https://evil.example.com/v1/me/"),
            Err(Error::ForeignOrigin(_))
        ));
        assert!(matches!(
            c.url("http://cams.example.com/v1/me/"),
            Err(Error::ForeignOrigin(_))
        ));
    }

    #[test]
    fn builder_needs_a_client_id_and_an_http_url() {
        assert!(matches!(
            Client::builder("https://x").build(),
            Err(Error::Config(_))
        ));
        assert!(matches!(
            Client::builder("ftp://x").client_id("a").build(),
            Err(Error::Config(_))
        ));
        assert!(Client::builder("not a url").client_id("a").build().is_err());
        let dbg = format!(
            "{:?}",
            Client::builder("https://x")
                .client_id("a")
                .client_secret("hush")
                .build()
                .unwrap()
        );
        assert!(!dbg.contains("hush"), "{dbg}");
    }

    #[test]
    fn authorization_request_carries_pkce_s256_and_state() {
        let c = client();
        let a = c.authorization_request("http://127.0.0.1:9/cb").unwrap();
        let q: std::collections::HashMap<_, _> = a.url().query_pairs().into_owned().collect();
        assert_eq!(a.url().path(), "/prefix/oauth/authorize/");
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "app");
        assert_eq!(q["redirect_uri"], "http://127.0.0.1:9/cb");
        assert_eq!(q["state"], a.state());
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], s256_challenge(&a.verifier));
        assert_eq!(q["scope"], "read write");
        assert_eq!(a.verifier.len(), 43);
        assert!(!a.url().as_str().contains(a.verifier.as_str()));
        let b = c.authorization_request("http://127.0.0.1:9/cb").unwrap();
        assert_ne!(a.state(), b.state());
    }

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[tokio::test]
    async fn a_wrong_state_or_issuer_or_error_never_reaches_the_server() {
        // The server does not exist: any request would fail with Error::Http.
        let c = Client::builder("http://127.0.0.1:9")
            .client_id("app")
            .build()
            .unwrap();
        let a = c.authorization_request("http://127.0.0.1:9/cb").unwrap();
        let e = c
            .exchange_code(a, "http://127.0.0.1:9/cb?code=x&state=nope")
            .await;
        assert!(matches!(e, Err(Error::StateMismatch)), "{e:?}");
        let a = c.authorization_request("http://127.0.0.1:9/cb").unwrap();
        let e = c.exchange_code(a, "?code=x").await;
        assert!(matches!(e, Err(Error::StateMismatch)), "{e:?}");
        let a = c.authorization_request("http://127.0.0.1:9/cb").unwrap();
        let cb = format!("code=x&state={}&iss=https%3A%2F%2Fevil.example", a.state());
        let e = c.exchange_code(a, &cb).await;
        assert!(matches!(e, Err(Error::IssuerMismatch(_))), "{e:?}");
        let a = c.authorization_request("http://127.0.0.1:9/cb").unwrap();
        let cb = format!(
            "error=access_denied&error_description=no&state={}",
            a.state()
        );
        let e = c.exchange_code(a, &cb).await.unwrap_err();
        assert_eq!(e.oauth_code(), Some("access_denied"));
        let a = c.authorization_request("http://127.0.0.1:9/cb").unwrap();
        let cb = format!("state={}", a.state());
        assert!(matches!(
            c.exchange_code(a, &cb).await,
            Err(Error::MissingCode)
        ));
    }

    #[tokio::test]
    async fn no_tokens_means_not_authenticated() {
        let c = client();
        assert!(matches!(
            c.get("/v1/me/").await,
            Err(Error::NotAuthenticated)
        ));
        assert!(matches!(c.refresh().await, Err(Error::NotAuthenticated)));
    }
}
