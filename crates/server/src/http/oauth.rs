//! The token endpoint, `POST /oauth/token` and `POST /oauth/token/` (RFC 6749 §3.2).
//!
//! Parameters come from the query string (spec 003 / 004 put them there), an
//! `application/x-www-form-urlencoded` body (RFC 6749 §4.3.2) or a `multipart/form-data` body
//! (spec 000 uses `curl -F`). Client authentication is HTTP Basic (§2.3.1) or body parameters.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::json;

use camgate_core::error::OAuthError;
use camgate_core::oauth::{Caller, ClientCredentials, Params, TokenResponse};

use super::auth::ClientIp;
use super::error::OAuthHttpError;
use super::openapi as doc;
use super::AppState;

const MAX_PARAMS: usize = 64;

/// Decodes `Authorization: Basic` into (client_id, secret), each form-urldecoded
/// (RFC 6749 §2.3.1). `Ok(None)` when there is no Authorization header.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut all = headers.get_all(header::AUTHORIZATION).iter();
    let Some(v) = all.next() else {
        return Ok(None);
    };
    if all.next().is_some() {
        // Ambiguous: a proxy in front may have read the other one.
        return Err(OAuthError::invalid_request(
            "The Authorization header is given more than once.",
        ));
    }
    let bad = || OAuthError::invalid_client("Malformed HTTP Basic client credentials.");
    let v = v.to_str().map_err(|_| bad())?;
    let (scheme, rest) = v.trim().split_once(' ').ok_or_else(bad)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "Only HTTP Basic client authentication is accepted here.",
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(rest.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let dec = |s: &str| -> String {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    let (id, secret) = (dec(id), dec(secret));
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, secret)))
}

fn urlencoded_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

async fn multipart_pairs(
    content_type: &str,
    body: Bytes,
) -> Result<Vec<(String, String)>, OAuthError> {
    let bad = |m: &str| OAuthError::invalid_request(format!("Malformed multipart body: {m}."));
    let boundary = multer::parse_boundary(content_type).map_err(|_| bad("no boundary"))?;
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut mp = multer::Multipart::new(stream, boundary);
    let mut out = Vec::new();
    while let Some(field) = mp.next_field().await.map_err(|_| bad("unreadable part"))? {
        if field.file_name().is_some() {
            return Err(bad("file parts are not accepted"));
        }
        let name = field
            .name()
            .map(str::to_string)
            .ok_or_else(|| bad("part without a name"))?;
        let value = field.text().await.map_err(|_| bad("unreadable part"))?;
        out.push((name, value));
        if out.len() > MAX_PARAMS {
            return Err(bad("too many parts"));
        }
    }
    Ok(out)
}

/// Reads every parameter of a token-endpoint-style request: query string plus body.
pub async fn read_params(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
) -> Result<Vec<(String, String)>, OAuthError> {
    let mut pairs = query
        .map(|q| urlencoded_pairs(q.as_bytes()))
        .unwrap_or_default();
    if !body.is_empty() {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or("").trim();
        match essence {
            "application/x-www-form-urlencoded" | "" => pairs.extend(urlencoded_pairs(&body)),
            "multipart/form-data" => pairs.extend(multipart_pairs(&ct, body).await?),
            _ => {
                return Err(OAuthError::invalid_request(
                    "Unsupported Content-Type: send application/x-www-form-urlencoded or multipart/form-data.",
                ))
            }
        }
    }
    if pairs.len() > MAX_PARAMS {
        return Err(OAuthError::invalid_request("Too many parameters."));
    }
    Ok(pairs)
}

/// Reads the body under the configured limit; an oversized body is a 413 in OAuth shape.
pub async fn read_body(
    req: Request,
    limit: usize,
) -> Result<(axum::http::request::Parts, Bytes), OAuthHttpError> {
    let (parts, body) = req.into_parts();
    match axum::body::to_bytes(body, limit).await {
        Ok(b) => Ok((parts, b)),
        Err(e) if !super::rejections::is_too_large(&e) => Err(OAuthError::invalid_request(
            "The request body could not be read (malformed chunked encoding or a broken connection).",
        )
        .into()),
        Err(_) => Err(OAuthHttpError {
            error: OAuthError::invalid_request(format!(
                "The request body exceeds the limit of {limit} bytes."
            )),
            status: Some(axum::http::StatusCode::PAYLOAD_TOO_LARGE),
        }),
    }
}

/// Splits request parameters into grant parameters and client credentials.
pub fn split_client(
    headers: &HeaderMap,
    pairs: Vec<(String, String)>,
) -> Result<(Params, Option<ClientCredentials>), OAuthError> {
    let mut params = Params::from_pairs(pairs)?;
    let basic = basic_credentials(headers)?;
    let creds = ClientCredentials::resolve(
        basic,
        params.take("client_id"),
        params.take("client_secret"),
    )?;
    Ok((params, creds))
}

pub fn token_json(t: TokenResponse) -> Response {
    let mut body = json!({
        "access_token": t.access_token,
        "token_type": t.token_type,
        "expires_in": t.expires_in,
        "scope": t.scope,
    });
    if let Some(r) = t.refresh_token {
        body["refresh_token"] = json!(r);
    }
    if let Some(i) = t.id_token {
        body["id_token"] = json!(i);
    }
    if let Some(i) = t.issued_token_type {
        body["issued_token_type"] = json!(i);
    }
    no_store(Json(body).into_response())
}

/// RFC 6749 §5.1: token responses carry `Cache-Control: no-store` and `Pragma: no-cache`.
pub fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// `POST /oauth/token` (RFC 6749 §3.2): password, refresh, authorization-code and client
/// credentials grants.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "OAuth",
    operation_id = "oauth_token",
    request_body(content(
        (doc::TokenRequest = "application/x-www-form-urlencoded"),
        (doc::TokenRequest = "multipart/form-data"),
    )),
    responses(
        (status = 200, description = "Tokens (`Cache-Control: no-store`).", body = doc::TokenResponse),
        (status = 400, description = "Invalid request, grant, scope or grant type.", body = doc::OAuthErrorBody),
        (status = 401, description = "Client authentication failed (with `WWW-Authenticate: Basic`).", body = doc::OAuthErrorBody),
        (status = 413, description = "The body exceeds the configured limit.", body = doc::OAuthErrorBody),
        (status = 429, description = "Too many failed sign-ins, or requests from this address (`slow_down`, with `Retry-After`).", body = doc::OAuthErrorBody),
        (status = 503, description = "The database is unavailable (with `Retry-After`).", body = doc::OAuthErrorBody),
    ),
    security((), ("ClientBasic" = [])),
)]
pub async fn token(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    req: Request,
) -> Result<Response, OAuthHttpError> {
    let (parts, body) = read_body(req, state.body_limit).await?;
    let pairs = read_params(&parts.headers, parts.uri.query(), body).await?;
    let (params, creds) = split_client(&parts.headers, pairs)?;
    let mut t = state.core.token(params, creds, &Caller { ip }).await?;
    // RFC 6750 §4 and RFC 9068 §2: the RFC routes answer a bearer type, a JWT access token
    // included (standard clients refuse any other type; only the CAM2 routes keep their
    // dialect's `JWT`, and CameraManager's profile its lower-case `bearer`). Every resource
    // route accepts either scheme for a JWT.
    if !t.token_type.eq_ignore_ascii_case("bearer") {
        t.token_type = "Bearer".into();
    }
    Ok(token_json(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_decoding_is_form_urldecoded() {
        let mut h = HeaderMap::new();
        // "cameramanager.test:qwertyuiopasdfghjklzxcvbnm12345" (spec 003)
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static(
                "Basic Y2FtZXJhbWFuYWdlci50ZXN0OnF3ZXJ0eXVpb3Bhc2RmZ2hqa2x6eGN2Ym5tMTIzNDU=",
            ),
        );
        let (id, secret) = basic_credentials(&h).unwrap().unwrap();
        assert_eq!(id, "cameramanager.test");
        assert_eq!(secret, "qwertyuiopasdfghjklzxcvbnm12345");
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Basic YSUzQWI6YyUyQg=="),
        );
        // "a%3Ab:c%2B" -> id "a:b", secret "c+"
        let (id, secret) = basic_credentials(&h).unwrap().unwrap();
        assert_eq!((id.as_str(), secret.as_str()), ("a:b", "c+"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(basic_credentials(&h).is_err());
    }
}
