//! Resource-route query strings and registered redirect URIs: `limit`/`offset` pagination
//! (parse and link arithmetic with any count) and the redirect-URI registration rules.
//! Input: a query string; the redirect rules get the same bytes as a URI.
#![no_main]

use camgate_core::cameras::Page;
use camgate_core::clients::validate_redirect_uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut limit = None;
    let mut offset = None;
    let mut count = 0i64;
    for (k, v) in url_pairs(data) {
        match k.as_str() {
            "limit" => limit = Some(v),
            "offset" => offset = Some(v),
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
});

fn url_pairs(data: &[u8]) -> Vec<(String, String)> {
    // The same decoder axum's Query uses underneath.
    url::form_urlencoded::parse(data)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}
