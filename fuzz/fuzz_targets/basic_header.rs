//! HTTP Basic client authentication (RFC 6749 §2.3.1): base64, then `id:secret`, each
//! form-urldecoded. Any byte string as the Authorization header value.
#![no_main]

use axum::http::{header, HeaderMap, HeaderValue};
use camgate_server::http::oauth::basic_credentials;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
