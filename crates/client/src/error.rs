//! Errors of the client library.

use serde::Deserialize;

/// Everything that can go wrong in the client. OAuth errors from the token endpoint are
/// parsed into their code and description (RFC 6749 §5.2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The authorization server answered with an OAuth error (RFC 6749 §5.2), e.g.
    /// `invalid_grant` for a wrong password or a revoked refresh token.
    #[error("{}", oauth_message(code, description.as_deref(), *status))]
    OAuth {
        /// The HTTP status of the answer (400, or 401 for `invalid_client`).
        status: u16,
        /// The `error` code, e.g. `invalid_grant`.
        code: String,
        /// The `error_description`, when the server sent one.
        description: Option<String>,
    },
    /// The token endpoint answered something that is not a token response.
    #[error("unexpected answer from the token endpoint (HTTP {status}): {detail}")]
    BadResponse { status: u16, detail: String },
    /// No tokens yet: log in (a grant) first.
    #[error("not logged in: the token store holds no tokens")]
    NotAuthenticated,
    /// The access token expired or was rejected and there is no way to get a new one without
    /// the user (no refresh token, and the tokens did not come from client credentials).
    #[error("the access token is no longer valid and there is no refresh token: log in again")]
    NoRefreshToken,
    /// The `state` in the authorization response differs from the one sent (RFC 6749 §10.12:
    /// a possible cross-site request forgery). The code was not exchanged.
    #[error("the authorization response's state does not match the request (possible CSRF); the code was not used")]
    StateMismatch,
    /// The `iss` in the authorization response names another issuer (RFC 9207 §2.4: a
    /// possible mix-up attack). The code was not exchanged.
    #[error("the authorization response comes from another issuer ({0}); the code was not used")]
    IssuerMismatch(String),
    /// The authorization server redirected back with an error (RFC 6749 §4.1.2.1), e.g.
    /// `access_denied` when the user denied.
    #[error("{}", oauth_message(code, description.as_deref(), 0))]
    Authorization {
        code: String,
        description: Option<String>,
    },
    /// The callback carries neither a code nor an error.
    #[error("the authorization response has no code")]
    MissingCode,
    /// A request URL on another origin than the configured server: the access token is only
    /// ever sent to the server it was issued by.
    #[error("refusing to send the access token to another origin: {0}")]
    ForeignOrigin(String),
    /// The builder was given something unusable.
    #[error("configuration: {0}")]
    Config(String),
    /// A URL could not be parsed.
    #[error("invalid URL: {0}")]
    Url(#[from] url::ParseError),
    /// The token store failed to load or save.
    #[error("token store: {0}")]
    Store(#[from] StoreError),
    /// Network or HTTP-level failure.
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
}

impl Error {
    /// The OAuth error code, for [`Error::OAuth`] and [`Error::Authorization`].
    pub fn oauth_code(&self) -> Option<&str> {
        match self {
            Error::OAuth { code, .. } | Error::Authorization { code, .. } => Some(code),
            _ => None,
        }
    }
}

fn oauth_message(code: &str, description: Option<&str>, status: u16) -> String {
    let mut s = match status {
        0 => format!("authorization failed: {code}"),
        _ => format!("the token endpoint refused (HTTP {status}): {code}"),
    };
    if let Some(d) = description {
        s.push_str(": ");
        s.push_str(d);
    }
    s
}

/// A failure of a [`crate::TokenStore`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a credentials file: {source}")]
    Format {
        path: String,
        #[source]
        source: serde_json::Error,
    },
    /// Anything else, for third-party stores (a keyring, a database).
    #[error("{0}")]
    Other(String),
}

/// The RFC 6749 §5.2 error body.
#[derive(Deserialize)]
pub(crate) struct OAuthErrorBody {
    pub error: String,
    #[serde(default)]
    pub error_description: Option<String>,
}

/// Builds the error for a non-2xx answer of the token (or revocation) endpoint.
pub(crate) fn from_error_body(status: u16, body: &[u8]) -> Error {
    match serde_json::from_slice::<OAuthErrorBody>(body) {
        Ok(e) => Error::OAuth {
            status,
            code: e.error,
            description: e.error_description,
        },
        Err(_) => Error::BadResponse {
            status,
            detail: snippet(body),
        },
    }
}

/// The start of a body for an error message (never a token: only error bodies get here).
pub(crate) fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(body);
    let mut out: String = s.chars().take(200).collect();
    if s.chars().count() > 200 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oauth_error_bodies_are_parsed() {
        let e = from_error_body(
            400,
            br#"{"error":"invalid_grant","error_description":"Invalid credentials given."}"#,
        );
        assert_eq!(e.oauth_code(), Some("invalid_grant"));
        assert_eq!(
            e.to_string(),
            "the token endpoint refused (HTTP 400): invalid_grant: Invalid credentials given."
        );
        let e = from_error_body(502, b"<html>bad gateway</html>");
        assert!(matches!(e, Error::BadResponse { status: 502, .. }), "{e}");
        assert_eq!(e.oauth_code(), None);
    }
}
