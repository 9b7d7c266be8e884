//! The bodies of the fuzz targets in `fuzz/`. Each target there is one line
//! calling a function here, and `tests/api/fuzz_corpus.rs` replays every file of `fuzz/corpus/*`
//! through the same functions, so the seeds and the regression inputs of found crashes run in
//! `cargo test` (CI) without cargo-fuzz, and target and test cannot drift apart.
//!
//! Each function takes any byte string, runs the code the server runs on such input, and
//! asserts the properties that must hold; a panic is a finding. None touches a database.

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use bytes::Bytes;

use camgate_core::authorize::{
    authorization_client_id, validate_authorization_for, AuthorizeError, MAX_STATE_LEN,
};
use camgate_core::cameras::Page;
use camgate_core::clients::validate_redirect_uri;
use camgate_core::jwt::{
    check_jwt, looks_like_jwt, parse_jwt_header, AccessClaims, CachedKey, Exp, JwtError,
    SigningKeyRecord,
};
use camgate_core::lifecycle::TokenHint;
use camgate_core::model::{Client, ClientKind, GrantType, SecretHash};
use camgate_core::resource::Scheme;
use camgate_core::scope::{ScopeSet, MAX_SCOPE_LEN};

use crate::http::auth::parse_authorization;
use crate::http::oauth::{basic_credentials, read_params, split_client};

/// Every target, by the name of its binary in `fuzz/` and its corpus directory.
pub const TARGETS: &[&str] = &[
    "token_request",
    "basic_header",
    "authorization_header",
    "resource_query",
    "authorize_request",
    "jwt",
];

/// Runs `data` through `target`; `false` for an unknown target name.
pub fn run(target: &str, data: &[u8]) -> bool {
    match target {
        "token_request" => token_request(data),
        "basic_header" => basic_header(data),
        "authorization_header" => authorization_header(data),
        "resource_query" => resource_query(data),
        "authorize_request" => authorize_request(data),
        "jwt" => jwt(data),
        _ => return false,
    }
    true
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(
        || match tokio::runtime::Builder::new_current_thread().build() {
            Ok(rt) => rt,
            Err(e) => panic!("cannot start a runtime: {e}"),
        },
    )
}

/// Splits `data` into `n - 1` newline-terminated lines and the rest (the body); an empty line
/// is an absent part.
fn lines(data: &[u8], n: usize) -> Vec<Option<&[u8]>> {
    let mut parts = data.splitn(n, |b| *b == b'\n');
    (0..n)
        .map(|i| {
            let p = parts.next();
            if i + 1 == n {
                Some(p.unwrap_or(&[]))
            } else {
                p.filter(|p| !p.is_empty())
            }
        })
        .collect()
}

/// The token-endpoint request parser: query string + urlencoded or multipart body + HTTP
/// Basic client authentication, exactly as `POST /oauth/token` runs it (`read_params`,
/// `split_client`), then the scope / grant / hint parsers the grants apply.
///
/// Layout (so seeds are readable): `QUERY \n AUTHORIZATION \n CONTENT-TYPE \n BODY…`.
pub fn token_request(data: &[u8]) {
    let l = lines(data, 4);
    let (query, auth, ctype, body) = (l[0], l[1], l[2], l[3].unwrap_or(&[]));
    let mut headers = HeaderMap::new();
    if let Some(v) = auth.and_then(|a| HeaderValue::from_bytes(a).ok()) {
        headers.insert(header::AUTHORIZATION, v);
    }
    if let Some(v) = ctype.and_then(|c| HeaderValue::from_bytes(c).ok()) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    // The server sees the query as the URI's query: valid UTF-8 only (hyper refuses the rest).
    let query = query.and_then(|q| std::str::from_utf8(q).ok());
    let body = Bytes::copy_from_slice(body);
    let Ok(pairs) = runtime().block_on(read_params(&headers, query, body)) else {
        return;
    };
    assert!(pairs.len() <= 64, "parameter cap");
    let Ok((params, creds)) = split_client(&headers, pairs) else {
        return;
    };
    if let Some(c) = &creds {
        assert!(!c.client_id.is_empty(), "empty client id accepted");
        assert!(!c.via_basic || params.get("client_secret").is_none());
    }
    if let Some(s) = params.get("scope") {
        if let Ok(set) = ScopeSet::parse_requested(s) {
            assert!(!set.is_empty());
            assert!(s.len() <= MAX_SCOPE_LEN);
        }
    }
    if let Some(g) = params.get("grant_type") {
        if let Some(grant) = GrantType::parse(g) {
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
    }
    let _ = TokenHint::parse(params.get("token_type_hint"));
}

/// HTTP Basic client authentication (RFC 6749 §2.3.1): base64, then `id:secret`, each
/// form-urldecoded. Input: the Authorization header value.
pub fn basic_header(data: &[u8]) {
    let Ok(v) = HeaderValue::from_bytes(data) else {
        return;
    };
    let mut h = HeaderMap::new();
    h.insert(header::AUTHORIZATION, v.clone());
    if let Ok(Some((id, _secret))) = basic_credentials(&h) {
        assert!(!id.is_empty(), "empty client id accepted");
        assert!(data.len() >= 6, "too short to be Basic");
    }
    // Twice is always refused.
    h.append(header::AUTHORIZATION, v);
    assert!(basic_credentials(&h).is_err());
}

/// The resource-route Authorization parser (`Bearer`, `PersonalAccessToken`, `JWT`):
/// `parse_authorization` then the scheme lookup, as the extractor runs them.
pub fn authorization_header(data: &[u8]) {
    let Ok(v) = HeaderValue::from_bytes(data) else {
        return;
    };
    let Ok(s) = v.to_str() else {
        return;
    };
    if let Some((scheme, token)) = parse_authorization(s) {
        assert!(!token.is_empty() && !token.contains(' '), "{token:?}");
        assert!(!scheme.is_empty() && !scheme.contains(' '), "{scheme:?}");
        if let Some(parsed) = Scheme::parse(scheme) {
            let name = match parsed {
                Scheme::Bearer => "bearer",
                Scheme::PersonalAccessToken => "personalaccesstoken",
                Scheme::Jwt => "jwt",
            };
            assert!(scheme.eq_ignore_ascii_case(name));
        }
    }
}

/// Resource-route query strings and registered redirect URIs: `limit`/`offset` pagination
/// (parse and link arithmetic with any count) and the redirect-URI registration rules.
/// Input: a query string; the redirect rules get the same bytes as a URI.
pub fn resource_query(data: &[u8]) {
    let mut limit = None;
    let mut offset = None;
    let mut count = 0i64;
    // The same decoder axum's Query uses underneath.
    for (k, v) in form_urlencoded::parse(data) {
        match &*k {
            "limit" => limit = Some(v.into_owned()),
            "offset" => offset = Some(v.into_owned()),
            "count" => count = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    for max in [100, 1000] {
        if let Ok(p) = Page::parse(limit.as_deref(), offset.as_deref(), max) {
            assert!(p.limit >= 1 && p.limit <= max && p.offset >= 0);
            if let Some(n) = p.next(count) {
                assert!(n > p.offset && n < count);
            }
            if let Some(prev) = p.previous() {
                assert!(prev >= 0 && prev < p.offset);
            }
        }
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if validate_redirect_uri(s).is_ok() {
            assert!(!s.contains('#'));
            assert!(s.len() <= 2000);
        }
    }
}

/// The clients the `authorize_request` target knows (their ids appear in the seeds).
pub fn authorize_clients() -> Vec<Client> {
    let client = |id: &str, kind, uris: &[&str], grants: Vec<GrantType>, scopes| Client {
        pk: 1,
        client_id: id.into(),
        secret: SecretHash::None,
        name: id.into(),
        owner_id: None,
        kind,
        redirect_uris: uris.iter().map(|u| u.to_string()).collect(),
        grants,
        scopes,
        profile: "angelcam".into(),
        created_at: 0,
        oidc: Default::default(),
        allow_password_without_mfa: false,
    };
    let code = || vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
    vec![
        client(
            "CLIENT_ID",
            ClientKind::Confidential,
            &["https://yourapp.com/callback"],
            code(),
            ScopeSet::READ_WRITE,
        ),
        client(
            "cameramanager.test",
            ClientKind::Confidential,
            &[
                "https://yourapp.com/callback",
                "http://127.0.0.1:8080/cb?tenant=1",
            ],
            code(),
            ScopeSet::READ_WRITE,
        ),
        client(
            "phone",
            ClientKind::Public,
            &["https://app.example.com/cb"],
            code(),
            ScopeSet::READ,
        ),
        client(
            "nocode",
            ClientKind::Confidential,
            &["https://yourapp.com/callback"],
            vec![GrantType::Password],
            ScopeSet::READ_WRITE,
        ),
        // Imported unchecked: a fragment, which is never redirected to.
        client(
            "broken",
            ClientKind::Confidential,
            &["https://yourapp.com/cb#frag"],
            code(),
            ScopeSet::READ_WRITE,
        ),
    ]
}

/// The authorization endpoint's request parsing and validation, as `GET|POST
/// /oauth/authorize[/]` runs it (`authorize::query_pairs` or `read_params`, then
/// `authorization_client_id`, the client lookup, `validate_authorization_for`), against the
/// fixed clients of [`authorize_clients`]. The properties: nothing ever redirects to a URI
/// that is not byte-identical to a registered, valid one; an accepted request stays within
/// the client's scopes, carries an S256 challenge when the client is public, and a bounded
/// `state`.
///
/// Layout: `METHOD \n QUERY \n CONTENT-TYPE \n BODY…` (`POST`, anything else is GET).
pub fn authorize_request(data: &[u8]) {
    let l = lines(data, 4);
    let (method, query, ctype, body) = (l[0], l[1], l[2], l[3].unwrap_or(&[]));
    let query = query.and_then(|q| std::str::from_utf8(q).ok());
    let pairs = if method == Some(b"POST") {
        let mut headers = HeaderMap::new();
        if let Some(v) = ctype.and_then(|c| HeaderValue::from_bytes(c).ok()) {
            headers.insert(header::CONTENT_TYPE, v);
        }
        match runtime().block_on(read_params(&headers, query, Bytes::copy_from_slice(body))) {
            Ok(p) => p,
            Err(_) => return,
        }
    } else {
        crate::http::authorize::query_pairs(query)
    };
    let clients = authorize_clients();
    let given: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "redirect_uri")
        .map(|(_, v)| v.clone())
        .collect();
    let result =
        authorization_client_id(&pairs).and_then(|id| {
            let client = clients.iter().find(|c| c.client_id == id).cloned().ok_or(
                AuthorizeError::Page {
                    status: 400,
                    message: "Invalid client_id parameter value.".into(),
                },
            )?;
            validate_authorization_for(client, pairs.clone())
        });
    let registered = |uri: &str| {
        clients
            .iter()
            .any(|c| c.redirect_uris.iter().any(|r| r == uri))
            && validate_redirect_uri(uri).is_ok()
    };
    let check_location = |uri: &str, loc: &str| {
        assert!(loc.starts_with(uri), "{loc} does not start with {uri}");
        let (a, b) = (url::Url::parse(uri), url::Url::parse(loc));
        if let (Ok(a), Ok(b)) = (a, b) {
            assert_eq!(a.origin(), b.origin(), "{loc}");
            assert_eq!(a.path(), b.path(), "{loc}");
        }
    };
    match result {
        Ok(v) => {
            assert!(registered(&v.redirect_uri), "{}", v.redirect_uri);
            assert!(v.client.redirect_uris.contains(&v.redirect_uri));
            if v.redirect_uri_given {
                assert_eq!(given, vec![v.redirect_uri.clone()]);
            } else {
                assert!(given.iter().all(|g| g.is_empty()), "{given:?}");
            }
            assert!(v.client.allows_grant(GrantType::AuthorizationCode));
            assert!(v.client.scopes.covers(&v.scope));
            if v.client.kind == ClientKind::Public {
                assert!(v.code_challenge.is_some(), "public client without PKCE");
            }
            if let Some(c) = &v.code_challenge {
                assert_eq!(c.len(), 43);
            }
            assert!(v.state.as_ref().is_none_or(|s| s.len() <= MAX_STATE_LEN));
        }
        Err(AuthorizeError::Redirect(r)) => {
            assert!(registered(&r.redirect_uri), "{}", r.redirect_uri);
            assert!(r.error_code().is_some());
            check_location(&r.redirect_uri, &r.location("https://camgate.example"));
        }
        Err(AuthorizeError::Page { status, .. }) => assert!((400..600).contains(&status)),
    }
}

/// The time and issuer the `jwt` target verifies at.
pub const JWT_NOW: i64 = 1_700_000_000;
pub const JWT_ISS: &str = "https://camgate.example";

/// The fixed key set of the `jwt` target: an Ed25519 key, an ES256 key, and a retired Ed25519
/// key past its `verify_until`.
pub fn jwt_keys() -> Vec<CachedKey> {
    let rec = |kid: &str, alg: &str, byte: u8, verify_until: Option<i64>| SigningKeyRecord {
        kid: kid.into(),
        alg: alg.into(),
        purpose: "access".into(),
        private_key: vec![byte; 32],
        created_at: 0,
        retired_at: verify_until.map(|_| 0),
        verify_until,
    };
    [
        rec("ed-key", "EdDSA", 1, None),
        rec("es-key", "ES256", 2, None),
        rec("old-key", "EdDSA", 3, Some(JWT_NOW - 1)),
    ]
    .iter()
    .filter_map(CachedKey::from_record)
    .collect()
}

/// Verifies `token` as `Core::verify_jwt` does, against [`jwt_keys`].
pub fn verify_with_fixed_keys(
    keys: &[CachedKey],
    token: &str,
    exp: Exp,
) -> Result<AccessClaims, JwtError> {
    let header = parse_jwt_header(token)?;
    let key = keys
        .iter()
        .find(|k| k.kid == header.kid)
        .ok_or(JwtError::Signature)?;
    let claims = check_jwt(token, &header, key, JWT_NOW, Some(JWT_ISS), exp)?;
    // Whatever passed: the key named by kid, of the algorithm the header names, still
    // verifying; our issuer in iss and aud; not expired unless told to ignore it.
    assert_eq!(key.alg, header.alg);
    assert!(key.verify_until.is_none_or(|u| u > JWT_NOW));
    assert_eq!(claims.iss, JWT_ISS);
    if exp == Exp::Check {
        assert!(claims.exp > JWT_NOW);
    }
    Ok(claims)
}

/// Signs `HEADER_JSON \n CLAIMS_JSON \n FLAGS` with the key the header's `kid` names (else the
/// Ed25519 key) and returns the compact token; a non-empty FLAGS line flips a signature bit.
pub fn jwt_sign_layout(keys: &[CachedKey], data: &[u8]) -> (String, bool) {
    let l = lines(data, 3);
    let (h, c, flags) = (l[0].unwrap_or(&[]), l[1].unwrap_or(&[]), l[2]);
    let tamper = flags.is_some_and(|f| !f.is_empty());
    let kid = serde_json::from_slice::<serde_json::Value>(h)
        .ok()
        .and_then(|v| v.get("kid").and_then(|k| k.as_str()).map(str::to_string));
    let key = kid
        .and_then(|kid| keys.iter().find(|k| k.kid == kid))
        .or(keys.first());
    let input = format!("{}.{}", B64.encode(h), B64.encode(c));
    let mut sig = key.map(|k| k.sign(input.as_bytes())).unwrap_or_default();
    if tamper {
        if let Some(b) = sig.first_mut() {
            *b ^= 1;
        }
    }
    (format!("{input}.{}", B64.encode(sig)), tamper)
}

/// JWT parsing and verification (`camgate_core::jwt`), with the fixed keys of [`jwt_keys`].
/// The first byte chooses the input's meaning:
/// - even: an Authorization header value, taken as the resource-route extractor and
///   `Core::authenticate` take it (`JWT <token>` of CAM2API, or `Bearer <token>`), down to the
///   signature and claims checks;
/// - odd: `HEADER_JSON \n CLAIMS_JSON \n FLAGS`, signed here with the key the header names, so
///   the fuzzer reaches the checks past the signature (algorithm confusion, `crit`, `typ`,
///   retired keys, issuer, audience, expiry); a tampered signature must always fail.
pub fn jwt(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let keys = jwt_keys();
    assert_eq!(keys.len(), 3, "fixed keys");
    if mode % 2 == 1 {
        let (token, tampered) = jwt_sign_layout(&keys, rest);
        for exp in [Exp::Check, Exp::Ignore] {
            let r = verify_with_fixed_keys(&keys, &token, exp);
            if tampered {
                assert!(r.is_err(), "a tampered signature verified: {token}");
            }
        }
        return;
    }
    let Ok(v) = HeaderValue::from_bytes(rest) else {
        return;
    };
    let Ok(s) = v.to_str() else {
        return;
    };
    let Some((scheme, token)) = parse_authorization(s) else {
        return;
    };
    if !matches!(Scheme::parse(scheme), Some(Scheme::Jwt | Scheme::Bearer)) {
        return;
    }
    if token.is_empty() || token.len() > 4096 || !looks_like_jwt(token) {
        return;
    }
    for exp in [Exp::Check, Exp::Ignore] {
        let _ = verify_with_fixed_keys(&keys, token, exp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-key"}"#;

    fn claims(exp: i64) -> String {
        format!(
            r#"{{"iss":"{JWT_ISS}","sub":"1","aud":"{JWT_ISS}","exp":{exp},"iat":{JWT_NOW},"jti":"j","client_id":"c","scope":"read","orig_iat":{JWT_NOW},"gty":"client_credentials"}}"#
        )
    }

    #[test]
    fn the_jwt_target_reaches_a_valid_token_and_refuses_variants() {
        let keys = jwt_keys();
        let ok = |h: &str, c: &str| {
            let (t, _) = jwt_sign_layout(&keys, format!("{h}\n{c}").as_bytes());
            verify_with_fixed_keys(&keys, &t, Exp::Check)
        };
        assert!(ok(HEADER, &claims(JWT_NOW + 60)).is_ok());
        let es = r#"{"alg":"ES256","typ":"at+jwt","kid":"es-key"}"#;
        assert!(ok(es, &claims(JWT_NOW + 60)).is_ok());
        assert!(matches!(
            ok(HEADER, &claims(JWT_NOW)),
            Err(JwtError::Expired)
        ));
        // Algorithm confusion: the header names ES256 for the Ed25519 key.
        let confused = r#"{"alg":"ES256","typ":"at+jwt","kid":"ed-key"}"#;
        assert!(matches!(
            ok(confused, &claims(JWT_NOW + 60)),
            Err(JwtError::Algorithm)
        ));
        let old = r#"{"alg":"EdDSA","typ":"at+jwt","kid":"old-key"}"#;
        assert!(matches!(
            ok(old, &claims(JWT_NOW + 60)),
            Err(JwtError::Signature)
        ));
        for h in [
            r#"{"alg":"none","typ":"at+jwt","kid":"ed-key"}"#,
            r#"{"alg":"HS256","typ":"at+jwt","kid":"ed-key"}"#,
            r#"{"alg":"EdDSA","typ":"JWT","kid":"ed-key"}"#,
            r#"{"alg":"EdDSA","typ":"at+jwt","kid":"ed-key","crit":["x"]}"#,
        ] {
            assert!(matches!(
                ok(h, &claims(JWT_NOW + 60)),
                Err(JwtError::Algorithm)
            ));
        }
        let other_iss = claims(JWT_NOW + 60).replace(JWT_ISS, "https://evil.example");
        assert!(matches!(ok(HEADER, &other_iss), Err(JwtError::Issuer)));
        let (t, tampered) = jwt_sign_layout(
            &keys,
            format!("{HEADER}\n{}\nx", claims(JWT_NOW + 60)).as_bytes(),
        );
        assert!(tampered);
        assert!(matches!(
            verify_with_fixed_keys(&keys, &t, Exp::Check),
            Err(JwtError::Signature)
        ));
    }

    #[test]
    fn unknown_targets_are_reported() {
        assert!(!run("nope", b""));
        for t in TARGETS {
            assert!(run(t, b""));
        }
    }
}
