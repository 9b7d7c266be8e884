//! The token-endpoint request parser: query string + urlencoded or multipart body + HTTP Basic
//! client authentication, exactly as `POST /oauth/token` runs it (read_params, split_client,
//! then the scope / grant / hint parsers the grant code applies to the parameters).
//!
//! Input layout (so seeds are readable): `QUERY \n AUTHORIZATION \n CONTENT-TYPE \n BODY…`;
//! a missing line is an absent part.
#![no_main]

use std::sync::OnceLock;

use axum::http::{header, HeaderMap, HeaderValue};
use bytes::Bytes;
use camgate_core::lifecycle::TokenHint;
use camgate_core::model::GrantType;
use camgate_core::scope::ScopeSet;
use camgate_server::http::oauth::{read_params, split_client};
use libfuzzer_sys::fuzz_target;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    })
}

fn split(data: &[u8]) -> (Option<&[u8]>, Option<&[u8]>, Option<&[u8]>, &[u8]) {
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let q = parts.next().filter(|p| !p.is_empty());
    let a = parts.next().filter(|p| !p.is_empty());
    let c = parts.next().filter(|p| !p.is_empty());
    let body = parts.next().unwrap_or(&[]);
    (q, a, c, body)
}

fuzz_target!(|data: &[u8]| {
    let (query, auth, ctype, body) = split(data);
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
            assert!(s.len() <= camgate_core::scope::MAX_SCOPE_LEN);
        }
    }
    if let Some(g) = params.get("grant_type") {
        if let Some(grant) = GrantType::parse(g) {
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
        }
    }
    let _ = TokenHint::parse(params.get("token_type_hint"));
});
