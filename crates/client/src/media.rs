//! Verifying camgate's signed media URLs offline, as a media server does: the URL's last query
//! parameter `token` is a JWS (`typ: media+jwt`) signed with one of the keys of the server's
//! `/.well-known/jwks.json` (EdDSA/Ed25519 or ES256/P-256). It binds the caller (`sub`), the
//! camera (`cam`), the media kind (`kind`) and the URL (`uh` = base64url SHA-256 of the URL
//! without its token), and expires at `exp`.
//!
//! ```no_run
//! # fn main() -> Result<(), camgate_client::media::MediaError> {
//! let jwks: serde_json::Value = serde_json::from_str(r#"{"keys": []}"#).unwrap();
//! let now = 1_700_000_000;
//! let claims = camgate_client::media::verify("https://media.example.com/live.m3u8?token=…", &jwks, now)?;
//! assert_eq!(claims.kind, "stream");
//! # Ok(()) }
//! ```

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The JWS `typ` of a media token.
pub const MEDIA_TYP: &str = "media+jwt";
/// The audience of a media token.
pub const MEDIA_AUD: &str = "camgate-media";

/// What a verified media token says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MediaClaims {
    pub iss: String,
    pub aud: String,
    /// Who the URL was handed to: a user id, or `client:<client_id>`.
    pub sub: String,
    /// The camera.
    pub cam: i64,
    /// `stream`, `snapshot` or `recording`.
    pub kind: String,
    pub uh: String,
    pub iat: i64,
    pub exp: i64,
}

/// Why a media URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("the URL carries no token")]
    NoToken,
    #[error("the token is malformed")]
    Malformed,
    #[error("no key of the JWKS verifies the token")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another URL")]
    OtherUrl,
    #[error("the token is not a camgate media token")]
    Audience,
}

/// Splits a signed URL into the URL before signing and the token (its last `token=` parameter,
/// which must end the query).
pub fn split_token(url: &str) -> Option<(String, &str)> {
    let (base, fragment) = match url.find('#') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let at = base.rfind("token=")?;
    let sep = base[..at].chars().last()?;
    if sep != '?' && sep != '&' {
        return None;
    }
    let token = &base[at + "token=".len()..];
    if token.is_empty() || token.contains('&') {
        return None;
    }
    Some((format!("{}{fragment}", &base[..at - 1]), token))
}

fn key_verifies(jwk: &Value, alg: &str, input: &[u8], sig: &[u8]) -> bool {
    let b = |name: &str| jwk[name].as_str().and_then(|s| B64.decode(s).ok());
    match (alg, jwk["kty"].as_str(), jwk["crv"].as_str()) {
        ("EdDSA", Some("OKP"), Some("Ed25519")) => {
            use ed25519_dalek::{Signature, VerifyingKey};
            let (Some(x), Ok(sig)) = (b("x"), Signature::from_slice(sig)) else {
                return false;
            };
            let Ok(x): Result<[u8; 32], _> = x.try_into() else {
                return false;
            };
            VerifyingKey::from_bytes(&x)
                .map(|k| k.verify_strict(input, &sig).is_ok())
                .unwrap_or(false)
        }
        ("ES256", Some("EC"), Some("P-256")) => {
            use p256::ecdsa::signature::Verifier;
            use p256::ecdsa::{Signature, VerifyingKey};
            let (Some(x), Some(y)) = (b("x"), b("y")) else {
                return false;
            };
            if x.len() != 32 || y.len() != 32 {
                return false;
            }
            let mut sec1 = vec![4u8];
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            match (
                VerifyingKey::from_sec1_bytes(&sec1),
                Signature::from_slice(sig),
            ) {
                (Ok(k), Ok(s)) => k.verify(input, &s).is_ok(),
                _ => false,
            }
        }
        _ => false,
    }
}

/// Verifies a signed media URL against a JWKS document at time `now` (Unix seconds).
pub fn verify(url: &str, jwks: &Value, now: i64) -> Result<MediaClaims, MediaError> {
    let (base, token) = split_token(url).ok_or(MediaError::NoToken)?;
    let parts: Vec<&str> = token.split('.').collect();
    let [h, c, s] = parts[..] else {
        return Err(MediaError::Malformed);
    };
    let json = |p: &str| -> Result<Value, MediaError> {
        B64.decode(p)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(MediaError::Malformed)
    };
    let header = json(h)?;
    if header["typ"] != MEDIA_TYP {
        return Err(MediaError::Audience);
    }
    let (Some(alg), Some(kid)) = (header["alg"].as_str(), header["kid"].as_str()) else {
        return Err(MediaError::Malformed);
    };
    let sig = B64.decode(s).map_err(|_| MediaError::Malformed)?;
    let input = &token.as_bytes()[..h.len() + 1 + c.len()];
    let verified = jwks["keys"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|k| k["kid"].as_str() == Some(kid))
        .any(|k| key_verifies(k, alg, input, &sig));
    if !verified {
        return Err(MediaError::Signature);
    }
    let claims: MediaClaims =
        serde_json::from_value(json(c)?).map_err(|_| MediaError::Malformed)?;
    if claims.aud != MEDIA_AUD {
        return Err(MediaError::Audience);
    }
    if claims.exp <= now {
        return Err(MediaError::Expired);
    }
    if claims.uh != B64.encode(Sha256::digest(base.as_bytes())) {
        return Err(MediaError::OtherUrl);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_without_a_last_token_parameter_are_refused() {
        let jwks = serde_json::json!({"keys": []});
        assert_eq!(verify("https://x/y", &jwks, 0), Err(MediaError::NoToken));
        assert_eq!(
            verify("https://x/y?token=a.b", &jwks, 0),
            Err(MediaError::Malformed)
        );
        assert_eq!(
            split_token("https://x/y?a=1&token=t#f").unwrap(),
            ("https://x/y?a=1#f".to_string(), "t")
        );
    }
}
