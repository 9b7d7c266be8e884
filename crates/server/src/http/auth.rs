//! The resource-route extractor: who is calling, with what scopes (RFC 6750 §2.1). Accepts
//! `Bearer`, `PersonalAccessToken` and `JWT` on every route; refuses tokens in the query
//! string (RFC 6750 §2.3 allows them, RFC 9700 §4.3.2 advises against; we refuse outright).

use std::marker::PhantomData;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::{header, request::Parts};
use axum::response::IntoResponse;

use camgate_core::error::ApiError;
use camgate_core::resource::{Principal, Scheme};

use super::AppState;

/// A dialect decides how authentication failures look.
pub trait Dialect: Send + Sync + 'static {
    type Error: IntoResponse + From<ApiError> + Send;
}

/// An authenticated caller on a route of dialect `D`.
pub struct Auth<D: Dialect>(pub Principal, PhantomData<D>);

impl<D: Dialect> std::ops::Deref for Auth<D> {
    type Target = Principal;
    fn deref(&self) -> &Principal {
        &self.0
    }
}

/// Splits an `Authorization` value into scheme and credential.
pub fn parse_authorization(value: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let token = rest.trim();
    if token.is_empty() || token.contains(' ') {
        return None;
    }
    Some((scheme, token))
}

fn query_has_token(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token" || k == "token")
    })
}

impl<D: Dialect> FromRequestParts<AppState> for Auth<D> {
    type Rejection = D::Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, D::Error> {
        if query_has_token(parts.uri.query()) {
            return Err(ApiError::invalid(
                "access_token",
                "Access tokens are not accepted in the query string; send an Authorization header.",
            )
            .into());
        }
        let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            return Err(ApiError::Unauthenticated(
                "Authentication credentials were not provided.".into(),
            )
            .into());
        };
        let bad = || ApiError::Unauthenticated("Invalid token header.".into());
        if values.next().is_some() {
            return Err(bad().into());
        }
        let value = value.to_str().map_err(|_| bad())?;
        let (scheme, token) = parse_authorization(value).ok_or_else(bad)?;
        let scheme = Scheme::parse(scheme).ok_or_else(bad)?;
        let principal = state.core.authenticate(scheme, token).await?;
        // Every write attempted with a dealer's token for a customer is audited with both
        // identities (before the handler runs: refused attempts are worth a row too).
        if principal.actor.is_some() && !parts.method.is_safe() {
            let ip = client_ip(parts);
            state
                .core
                .audit_acted_write(
                    &principal,
                    parts.method.as_str(),
                    parts.uri.path(),
                    ip.as_deref(),
                )
                .await;
        }
        Ok(Auth(principal, PhantomData))
    }
}

/// The caller's IP address (for audit), if the server was started with connect info.
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}

/// The peer's address from the connect info, if the server was started with it.
fn client_ip(parts: &Parts) -> Option<String> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(a)| a.ip().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_parsing() {
        assert_eq!(parse_authorization("Bearer abc"), Some(("Bearer", "abc")));
        assert_eq!(parse_authorization("Bearer  abc "), Some(("Bearer", "abc")));
        assert_eq!(parse_authorization("Bearer"), None);
        assert_eq!(parse_authorization("Bearer a b"), None);
        assert!(query_has_token(Some("limit=5&access_token=x")));
        assert!(!query_has_token(Some("limit=5")));
    }
}
