//! The resource-route Authorization parser (`Bearer`, `PersonalAccessToken`, `JWT`):
//! `parse_authorization` then the scheme lookup, as the extractor runs them.
#![no_main]

use axum::http::HeaderValue;
use camgate_core::resource::Scheme;
use camgate_server::http::auth::parse_authorization;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
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
});
