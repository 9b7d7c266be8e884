//! Signed media URLs. Stream, snapshot and recording URLs are never handed out raw: each answer
//! carries the URL with `token=<JWT>` added as its last query parameter. The JWT is signed with
//! the server's access-token signing key (verifiable offline against `/.well-known/jwks.json`)
//! and binds the caller (`sub`), the camera (`cam`), the media kind (`kind`: `stream`,
//! `snapshot`, `recording`) and the URL itself (`uh`: base64url SHA-256 of the URL without the
//! token), with `exp` at most `media_url_ttl_secs` (300 by default) away.
//!
//! Its header says `typ: media+jwt`, so a media token is never accepted as an access token
//! (those must say `at+jwt`, RFC 9068 §2.1), and `aud` is `camgate-media`.
//!
//! Signing costs tens of microseconds, and a camera listing has two URLs per camera: tokens are
//! cached per (caller, camera, kind, URL) and reused while more than half their lifetime is
//! left, so a page served again within that time signs nothing.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::Mutex;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::jwt::b64_json;
use crate::model::{Camera, CameraId};
use crate::principal::Principal;
use crate::Core;

/// The JWS `typ` of a media token.
pub const MEDIA_TYP: &str = "media+jwt";
/// The audience every media server checks.
pub const MEDIA_AUD: &str = "camgate-media";

/// The claims of a media token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaClaims {
    pub iss: String,
    pub aud: String,
    /// Who the URL was handed to: a user id, or `client:<client_id>`.
    pub sub: String,
    pub cam: CameraId,
    /// `stream`, `snapshot` or `recording`.
    pub kind: String,
    /// base64url (no padding) SHA-256 of the URL without its token.
    pub uh: String,
    pub iat: i64,
    pub exp: i64,
}

/// The URL with `token=…` appended as the last query parameter (before any fragment).
pub fn add_token(url: &str, token: &str) -> String {
    let (base, fragment) = match url.find('#') {
        Some(i) => (&url[..i], &url[i..]),
        None => (url, ""),
    };
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}token={token}{fragment}")
}

/// Splits a signed URL into the URL as it was before signing and its token: the last `token=`
/// parameter, which must be the last one of the query. The same rule as
/// `camgate_client::media::split_token`: the client crate stands alone for media servers, so it
/// keeps its own copy (the events tests check URLs signed here with the client's verifier).
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
    let before = &base[..at - 1];
    Some((format!("{before}{fragment}"), token))
}

/// The `uh` claim of a URL.
pub fn url_hash(url: &str) -> String {
    B64.encode(Sha256::digest(url.as_bytes()))
}

/// Why a media URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    #[error("the URL carries no token")]
    NoToken,
    #[error("the token is malformed")]
    Malformed,
    #[error("the token's key is unknown or its signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token was issued for another URL")]
    OtherUrl,
    #[error("the token is not a media token of this server")]
    Audience,
}

const SHARDS: usize = 16;
const CACHE_MAX: usize = 20_000;

/// Who a media token is for (its `sub`), borrowed from the principal.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Subject<'a> {
    User(i64),
    Client(&'a str),
    Nobody,
}

impl<'a> Subject<'a> {
    fn of(p: &'a Principal) -> Self {
        match (&p.user, &p.client) {
            (Some(u), _) => Subject::User(u.id),
            (None, Some(c)) => Subject::Client(&c.client_id),
            (None, None) => Subject::Nobody,
        }
    }

    /// The `sub` claim.
    fn claim(self) -> String {
        match self {
            Subject::User(id) => id.to_string(),
            Subject::Client(c) => format!("client:{c}"),
            Subject::Nobody => String::new(),
        }
    }
}

/// [`Subject`], owned.
enum OwnedSubject {
    User(i64),
    Client(String),
    Nobody,
}

impl OwnedSubject {
    fn borrowed(&self) -> Subject<'_> {
        match self {
            OwnedSubject::User(id) => Subject::User(*id),
            OwnedSubject::Client(c) => Subject::Client(c),
            OwnedSubject::Nobody => Subject::Nobody,
        }
    }
}

impl From<Subject<'_>> for OwnedSubject {
    fn from(s: Subject<'_>) -> Self {
        match s {
            Subject::User(id) => OwnedSubject::User(id),
            Subject::Client(c) => OwnedSubject::Client(c.to_string()),
            Subject::Nobody => OwnedSubject::Nobody,
        }
    }
}

/// One signed token and what it was signed for (compared on a hit: the map is keyed by hash).
struct Signed {
    sub: OwnedSubject,
    camera: CameraId,
    kind: &'static str,
    url: String,
    token: String,
    exp: i64,
}

/// Media tokens already signed, by (caller, camera, kind, URL). A lookup hashes the borrowed
/// parts once (the hash picks the shard and is the map's key) and allocates nothing: a listing
/// of 20 cameras looks up about 60 URLs, and the owned key it used to build for each (two
/// strings, two SipHash passes) was a measurable share of an uncached listing.
pub struct MediaCache {
    hasher: std::hash::RandomState,
    shards: Vec<Mutex<HashMap<u64, Signed, PassThrough>>>,
}

/// The map's keys are already hashes.
#[derive(Default, Clone, Copy)]
struct PassThrough;

impl std::hash::BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;
    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

struct PassThroughHasher(u64);

impl Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a u64); fold anything else in anyway.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl Default for MediaCache {
    fn default() -> Self {
        Self {
            hasher: std::hash::RandomState::new(),
            shards: (0..SHARDS)
                .map(|_| Mutex::new(HashMap::with_hasher(PassThrough)))
                .collect(),
        }
    }
}

impl MediaCache {
    fn hash(&self, sub: Subject<'_>, camera: CameraId, kind: &str, url: &str) -> u64 {
        use std::hash::BuildHasher;
        self.hasher.hash_one((sub, camera, kind, url))
    }

    fn shard(&self, h: u64) -> &Mutex<HashMap<u64, Signed, PassThrough>> {
        // The map uses the hash's low bits for its buckets; the shard takes high ones.
        &self.shards[(h >> 58) as usize % SHARDS]
    }

    /// `url` with the cached token for (sub, camera, kind), if one is fresh until `fresh_until`.
    fn signed_url(
        &self,
        sub: Subject<'_>,
        camera: CameraId,
        kind: &str,
        url: &str,
        fresh_until: i64,
    ) -> Option<String> {
        let h = self.hash(sub, camera, kind, url);
        let m = self.shard(h).lock().unwrap_or_else(|e| e.into_inner());
        m.get(&h)
            .filter(|e| {
                e.exp >= fresh_until
                    && e.camera == camera
                    && e.kind == kind
                    && e.url == url
                    && e.sub.borrowed() == sub
            })
            .map(|e| add_token(url, &e.token))
    }

    fn put(&self, e: Signed) {
        let h = self.hash(e.sub.borrowed(), e.camera, e.kind, &e.url);
        let mut m = self.shard(h).lock().unwrap_or_else(|e| e.into_inner());
        if m.len() >= CACHE_MAX / SHARDS {
            m.clear();
        }
        m.insert(h, e);
    }
}

impl Core {
    /// `url` with a media token for `p`, camera `camera` and `kind` added.
    pub async fn sign_media_url(
        &self,
        p: &Principal,
        camera: CameraId,
        kind: &'static str,
        url: &str,
    ) -> Result<String, ApiError> {
        let ttl = self.settings.media_url_ttl_secs.max(1);
        let now = self.now();
        let sub = Subject::of(p);
        if let Some(signed) = self
            .media_cache
            .signed_url(sub, camera, kind, url, now + ttl / 2)
        {
            return Ok(signed);
        }
        let iss = self.jwt_issuer().ok_or(ApiError::Internal)?;
        let signing = self
            .active_access_key()
            .await
            .map_err(|_| ApiError::Internal)?;
        let claims = MediaClaims {
            iss,
            aud: MEDIA_AUD.into(),
            sub: sub.claim(),
            cam: camera,
            kind: kind.into(),
            uh: url_hash(url),
            iat: now,
            exp: now + ttl,
        };
        let header =
            serde_json::json!({"alg": signing.alg.as_str(), "typ": MEDIA_TYP, "kid": signing.kid});
        let input = format!("{}.{}", b64_json(&header), b64_json(&claims));
        let sig = signing.sign(input.as_bytes());
        let token = format!("{input}.{}", B64.encode(sig));
        let out = add_token(url, &token);
        self.media_cache.put(Signed {
            sub: sub.into(),
            camera,
            kind,
            url: url.to_string(),
            token,
            exp: claims.exp,
        });
        Ok(out)
    }

    /// Signs a camera's stream and snapshot URLs in place, for `p`.
    pub async fn sign_camera(&self, p: &Principal, cam: &mut Camera) -> Result<(), ApiError> {
        let id = cam.id;
        for s in cam.fields.streams.iter_mut() {
            s.url = self.sign_media_url(p, id, "stream", &s.url).await?;
        }
        if let Some(s) = cam.fields.snapshot.as_mut() {
            s.url = self.sign_media_url(p, id, "snapshot", &s.url).await?;
        }
        Ok(())
    }

    /// Checks a signed media URL against this server's keys (`camgate media verify`): what a
    /// media server does offline with the JWKS.
    pub async fn verify_media_url(&self, url: &str) -> Result<MediaClaims, MediaError> {
        let (base, token) = split_token(url).ok_or(MediaError::NoToken)?;
        let mut parts = token.split('.');
        let (Some(h), Some(c), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(MediaError::Malformed);
        };
        let header: serde_json::Value = B64
            .decode(h)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(MediaError::Malformed)?;
        if header["typ"] != MEDIA_TYP {
            return Err(MediaError::Audience);
        }
        let kid = header["kid"].as_str().ok_or(MediaError::Malformed)?;
        let key = self
            .key_for(kid)
            .await
            .ok()
            .flatten()
            .ok_or(MediaError::Signature)?;
        if header["alg"] != key.alg.as_str() {
            return Err(MediaError::Signature);
        }
        let sig = B64.decode(s).map_err(|_| MediaError::Malformed)?;
        if !crate::jwt::verify_signature(&key, &token.as_bytes()[..h.len() + 1 + c.len()], &sig) {
            return Err(MediaError::Signature);
        }
        let claims: MediaClaims = B64
            .decode(c)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(MediaError::Malformed)?;
        if claims.aud != MEDIA_AUD {
            return Err(MediaError::Audience);
        }
        if claims.exp <= self.now() {
            return Err(MediaError::Expired);
        }
        if claims.uh != url_hash(&base) {
            return Err(MediaError::OtherUrl);
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_go_last_and_come_off_exactly() {
        for url in [
            "https://m.example.com/live.m3u8",
            "https://m.example.com/live.m3u8?q=1",
            "rtsp://cam.example.com:554/s?a=b&c=d#frag",
        ] {
            let signed = add_token(url, "a.b.c");
            let (base, t) = split_token(&signed).unwrap();
            assert_eq!((base.as_str(), t), (url, "a.b.c"), "{signed}");
        }
        assert_eq!(add_token("https://x/y", "t"), "https://x/y?token=t");
        assert_eq!(add_token("https://x/y?a=1", "t"), "https://x/y?a=1&token=t");
        assert_eq!(split_token("https://x/y?a=1"), None);
        assert_eq!(split_token("https://x/y?mytoken=abc"), None);
        assert_eq!(
            split_token("https://x/y?token=abc&a=1"),
            None,
            "not the last parameter"
        );
    }

    #[test]
    fn the_url_hash_is_base64url_sha256() {
        // SHA-256("abc") = ba7816bf…, base64url without padding.
        assert_eq!(
            url_hash("abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
    }
}
