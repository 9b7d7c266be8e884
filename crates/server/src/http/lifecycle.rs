//! Revocation (RFC 7009), introspection (RFC 7662) and server metadata (RFC 8414).

use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use camgate_core::error::OAuthError;
use camgate_core::lifecycle::TokenHint;
use camgate_core::model::Client;
use camgate_core::Core;

use super::auth::ClientIp;
use super::error::OAuthHttpError;
use super::oauth::{no_store, read_body, read_params, split_client};
use super::openapi as doc;
use super::{base_url, AppState};

/// Parses an endpoint request the way the token endpoint does and authenticates the client
/// (RFC 7009 §2.1 and RFC 7662 §2.1 reuse RFC 6749 §2.3 client authentication).
async fn authenticated(
    state: &AppState,
    req: Request,
) -> Result<(Client, camgate_core::oauth::Params), OAuthHttpError> {
    let (parts, body) = read_body(req, state.body_limit).await?;
    let pairs = read_params(&parts.headers, parts.uri.query(), body).await?;
    let (params, creds) = split_client(&parts.headers, pairs)?;
    let creds =
        creds.ok_or_else(|| OAuthError::invalid_client("Client authentication is required."))?;
    let client = state.core.authenticate_client(&creds).await?;
    Ok((client, params))
}

/// `POST /oauth/revoke` and `POST /oauth/token-revoke/` (RFC 7009 §2). 200 with an empty body
/// whether or not the token was known (§2.2).
#[utoipa::path(
    post,
    path = "/oauth/revoke",
    tag = "OAuth",
    operation_id = "oauth_revoke",
    request_body(content(
        (doc::TokenHintRequest = "application/x-www-form-urlencoded"),
        (doc::TokenHintRequest = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Revoked, or unknown: an empty body (RFC 7009 §2.2)."),
        (status = 400, description = "Invalid request, grant, scope or grant type.", body = doc::OAuthErrorBody),
        (status = 401, description = "Client authentication failed (with `WWW-Authenticate: Basic`).", body = doc::OAuthErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::OAuthErrorBody),
        (status = 429, description = "Too many failed sign-ins, or requests from this address (`slow_down`, with `Retry-After`).", body = doc::OAuthErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::OAuthErrorBody),
    ),
    security((), ("ClientBasic" = [])),
)]
pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Result<Response, OAuthHttpError> {
    let (client, params) = authenticated(&state, req).await?;
    let token = params.require("token")?;
    let hint = TokenHint::parse(params.get("token_type_hint"));
    state
        .core
        .revoke(&client, token, hint, ip.as_deref())
        .await?;
    Ok(no_store(().into_response()))
}

/// `POST /oauth/introspect` (RFC 7662 §2).
#[utoipa::path(
    post,
    path = "/oauth/introspect",
    tag = "OAuth",
    operation_id = "oauth_introspect",
    request_body(content(
        (doc::TokenHintRequest = "application/x-www-form-urlencoded"),
        (doc::TokenHintRequest = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "What the token is (`Cache-Control: no-store`).", body = doc::IntrospectResponse),
        (status = 400, description = "Invalid request, grant, scope or grant type.", body = doc::OAuthErrorBody),
        (status = 401, description = "Client authentication failed (with `WWW-Authenticate: Basic`).", body = doc::OAuthErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::OAuthErrorBody),
        (status = 429, description = "Too many failed sign-ins, or requests from this address (`slow_down`, with `Retry-After`).", body = doc::OAuthErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::OAuthErrorBody),
    ),
    // Client authentication is required (RFC 7662 §2.1), by HTTP Basic or body parameters.
    security((), ("ClientBasic" = [])),
)]
pub async fn introspect(
    State(state): State<AppState>,
    req: Request,
) -> Result<Response, OAuthHttpError> {
    let iss = base_url(&state, req.headers());
    let (client, params) = authenticated(&state, req).await?;
    Core::may_introspect(&client)?;
    let token = params.require("token")?;
    let hint = TokenHint::parse(params.get("token_type_hint"));
    let body = match state.core.introspect(token, hint).await? {
        None => json!({"active": false}),
        Some(i) => {
            let act = i.act.clone();
            let mut b = json!({
            "active": true,
            "scope": i.scope.to_scope_string(),
            "client_id": i.client_id,
            "username": i.username,
            "token_type": i.token_type,
            "exp": i.exp,
            "iat": i.iat,
            "sub": i.sub,
            "aud": i.client_id,
            "iss": iss,
            });
            // A token obtained by token exchange: who acts for the subject (RFC 8693 §4.1).
            if let Some(dealer) = act {
                b["act"] = json!({"sub": dealer});
            }
            b
        }
    };
    Ok(no_store(Json(body).into_response()))
}

/// RFC 8414 §2 / §3: `GET /.well-known/oauth-authorization-server`.
#[utoipa::path(
    get,
    path = "/.well-known/oauth-authorization-server",
    tag = "OAuth",
    operation_id = "oauth_metadata",
    responses((status = 200, description = "Authorization server metadata.", body = doc::ServerMetadata)),
)]
pub async fn metadata(State(state): State<AppState>, headers: HeaderMap) -> Json<Value> {
    // One document for RFC 8414 and OpenID Connect Discovery (see `core::oidc`).
    Json(camgate_core::oidc::server_metadata(&base_url(
        &state, &headers,
    )))
}
