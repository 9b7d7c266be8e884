//! Error types of the domain. One enum per area; the HTTP surfaces map them to their own
//! response shapes (see `camgate-server`), so nothing here knows about status codes except as
//! a hint.

use std::fmt;

/// What a storage backend can fail with. Backends map driver errors onto these.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness constraint was violated (e.g. email or client id taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The database cannot be reached or timed out; the request may be retried.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// Anything else: a bug or a corrupted database.
    #[error("storage error: {0}")]
    Other(String),
}

/// OAuth 2.0 error codes (RFC 6749 §5.2, RFC 7009 §2.2.1, RFC 6750 §3.1). `Display` is the code
/// as it appears on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    AccessDenied,
    UnsupportedResponseType,
    UnsupportedTokenType,
    ServerError,
    TemporarilyUnavailable,
    /// Not an RFC 6749 code: too many failed attempts (answered 429).
    SlowDown,
    /// RFC 8628 §3.5: the user has not decided yet (400).
    AuthorizationPending,
    /// RFC 8628 §3.5: the device polls too fast; `slow_down` answered 400 (unlike
    /// [`OAuthErrorCode::SlowDown`], the login throttle's 429).
    DeviceSlowDown,
    /// RFC 8628 §3.5: the device code expired (400).
    ExpiredToken,
    /// RFC 8693 §2.2.2: the token cannot be issued for the requested subject or target (400).
    InvalidTarget,
}

impl OAuthErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::AccessDenied => "access_denied",
            Self::UnsupportedResponseType => "unsupported_response_type",
            Self::UnsupportedTokenType => "unsupported_token_type",
            Self::ServerError => "server_error",
            Self::TemporarilyUnavailable => "temporarily_unavailable",
            Self::SlowDown | Self::DeviceSlowDown => "slow_down",
            Self::AuthorizationPending => "authorization_pending",
            Self::ExpiredToken => "expired_token",
            Self::InvalidTarget => "invalid_target",
        }
    }
}

impl fmt::Display for OAuthErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An OAuth error with a human-readable description (never containing a secret).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code}: {description}")]
pub struct OAuthError {
    pub code: OAuthErrorCode,
    pub description: String,
    /// Seconds the client should wait (for `temporarily_unavailable` / `slow_down`).
    pub retry_after: Option<u64>,
}

impl OAuthError {
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            retry_after: None,
        }
    }
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, d)
    }
    pub fn invalid_client(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidClient, d)
    }
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, d)
    }
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidScope, d)
    }
    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::UnauthorizedClient, d)
    }
    pub fn unavailable(retry_after: u64) -> Self {
        Self {
            code: OAuthErrorCode::TemporarilyUnavailable,
            description: "The server is busy; retry later.".into(),
            retry_after: Some(retry_after),
        }
    }
    pub fn server_error() -> Self {
        Self::new(OAuthErrorCode::ServerError, "Internal server error.")
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Self::unavailable(5)
            }
            _ => {
                tracing::error!(error = %e, "storage error");
                Self::server_error()
            }
        }
    }
}

/// Errors of the resource API (cameras, users). Surfaces render these in their own shapes.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No credentials, or credentials that are unknown, expired or revoked (RFC 6750 §3.1
    /// `invalid_token`).
    #[error("{0}")]
    Unauthenticated(String),
    /// Credentials are fine but the token lacks a scope (RFC 6750 §3.1 `insufficient_scope`).
    #[error("The token does not carry the scope `{0}`.")]
    InsufficientScope(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("Not found.")]
    NotFound,
    /// Invalid input; `field` names the offending parameter when there is one.
    #[error("{message}")]
    Invalid {
        field: Option<String>,
        message: String,
    },
    #[error("{0}")]
    Conflict(String),
    #[error("Service temporarily unavailable.")]
    Unavailable { retry_after: u64 },
    /// A per-camera or per-client rate limit (429 with `Retry-After`).
    #[error("Too many requests; try again in {retry_after} seconds.")]
    TooManyRequests { retry_after: u64 },
    #[error("Internal server error.")]
    Internal,
}

impl ApiError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: Some(field.into()),
            message: message.into(),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "storage unavailable");
                Self::Unavailable { retry_after: 5 }
            }
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::Other(_) => {
                tracing::error!(error = %e, "storage error");
                Self::Internal
            }
        }
    }
}
