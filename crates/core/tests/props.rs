//! Property tests: token formats and lengths, scope parsing and set rules,
//! pagination arithmetic, redirect-URI registration rules, parameter and client-credential
//! rules; exact redirect-URI *matching* at /oauth/authorize (the pure validator the endpoint
//! runs, against generated registered sets and mutated candidates); authorization-code, PKCE
//! challenge, session, CSRF and client-credential formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use camgate_core::authorize::{
    authorization_client_id, code_format, s256_challenge, validate_authorization_for,
    AuthorizeError, MISMATCHING_REDIRECT_URI,
};
use camgate_core::cameras::Page;
use camgate_core::clients::validate_redirect_uri;
use camgate_core::model::{Client, ClientKind, GrantType, SecretHash};
use camgate_core::oauth::{ClientCredentials, Params};
use camgate_core::profile::{Profiles, TokenStyle};
use camgate_core::scope::{Need, ScopeSet, MAX_SCOPE_LEN};
use camgate_core::secret::{self, TokenFormat, CLIENT_ID_LEN};
use camgate_core::sessions::csrf_token;
use proptest::prelude::*;

const PREFIXES: &[&str] = &["cgat_", "cgrt_", "cgpat_", "cgac_"];
const SCOPE_WORDS: &[&str] = &[
    "read",
    "write",
    "user_access",
    "camera_access",
    "camera_manage",
    "camera_create",
    "camera_delete",
];
const ALL_SETS: [ScopeSet; 4] = [
    ScopeSet::NONE,
    ScopeSet::READ,
    ScopeSet::WRITE,
    ScopeSet::READ_WRITE,
];

fn format_strategy() -> impl Strategy<Value = TokenFormat> {
    prop_oneof![
        Just(TokenFormat::Alnum30),
        proptest::sample::select(PREFIXES).prop_map(TokenFormat::Prefixed),
    ]
}

fn check_format(t: &str, f: TokenFormat) -> Result<(), TestCaseError> {
    match f {
        TokenFormat::Alnum30 => {
            prop_assert_eq!(t.len(), 30);
            prop_assert!(t.bytes().all(|b| b.is_ascii_alphanumeric()), "{}", t);
        }
        TokenFormat::Prefixed(p) => {
            prop_assert!(t.starts_with(p), "{}", t);
            let rest = &t[p.len()..];
            prop_assert_eq!(rest.len(), 32);
            prop_assert!(rest.bytes().all(|b| b.is_ascii_alphanumeric()), "{}", t);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // ------------------------------------------------------------------ tokens and secrets

    #[test]
    fn generated_tokens_have_their_format(f in format_strategy()) {
        let a = secret::generate(f);
        check_format(&a, f)?;
        // 30 alphanumerics ≈ 178 bits; a collision in a test run means a broken generator.
        prop_assert_ne!(a, secret::generate(f));
    }

    #[test]
    fn derived_tokens_have_their_format_and_are_deterministic(
        key in proptest::collection::vec(any::<u8>(), 0..64),
        label in "[a-z]{1,10}",
        input in ".{0,200}",
        other in ".{0,200}",
        f in format_strategy(),
    ) {
        let a = secret::derive(&key, &label, &input, f);
        check_format(&a, f)?;
        prop_assert_eq!(&a, &secret::derive(&key, &label, &input, f));
        if other != input {
            prop_assert_ne!(&a, &secret::derive(&key, &label, &other, f));
        }
        // Label-separated: the access and refresh successors never coincide.
        prop_assert_ne!(&a, &secret::derive(&key, &format!("{label}x"), &input, f));
    }

    #[test]
    fn digests_are_32_bytes_and_injective_in_practice(a in ".{0,100}", b in ".{0,100}") {
        let (da, db) = (secret::digest(&a), secret::digest(&b));
        prop_assert_eq!(da.len(), 32);
        prop_assert_eq!(a == b, da == db);
        prop_assert_eq!(secret::ct_eq(&da, &db), da == db);
    }

    // ------------------------------------------------------------------ scopes

    #[test]
    fn scope_parsing_never_panics_and_errors_name_no_more_than_40_chars(s in ".{0,300}") {
        match ScopeSet::parse(&s) {
            Ok(set) => {
                // Only known words (and spaces) parse.
                for w in s.split(' ').filter(|w| !w.is_empty()) {
                    prop_assert!(SCOPE_WORDS.contains(&w), "{}", w);
                }
                // The canonical form parses back to the same set.
                prop_assert_eq!(ScopeSet::parse(&set.to_scope_string()).unwrap(), set);
            }
            Err(e) => prop_assert!(e.chars().count() < 80, "{}", e),
        }
    }

    #[test]
    fn scope_words_combine_by_union_in_any_order(
        words in proptest::collection::vec(proptest::sample::select(SCOPE_WORDS), 0..8),
        seps in proptest::collection::vec(1usize..4, 8),
    ) {
        let mut joined = String::new();
        for (i, w) in words.iter().enumerate() {
            joined.push_str(w);
            joined.push_str(&" ".repeat(seps[i]));
        }
        let whole = ScopeSet::parse(&joined).unwrap();
        let by_union = words
            .iter()
            .map(|w| ScopeSet::parse(w).unwrap())
            .fold(ScopeSet::default(), |a, b| a.union(&b));
        prop_assert_eq!(whole, by_union);
        let mut rev = words.clone();
        rev.reverse();
        prop_assert_eq!(ScopeSet::parse(&rev.join(" ")).unwrap(), whole);
        // The token endpoint refuses an empty request.
        prop_assert_eq!(ScopeSet::parse_requested(&joined).is_err(), whole.is_empty());
    }

    #[test]
    fn unknown_words_are_refused(
        words in proptest::collection::vec(proptest::sample::select(SCOPE_WORDS), 0..4),
        unknown in "[a-zA-Z_:.]{1,20}",
        at in 0usize..5,
    ) {
        prop_assume!(!SCOPE_WORDS.contains(&unknown.as_str()));
        let mut v: Vec<&str> = words.clone();
        v.insert(at.min(v.len()), &unknown);
        prop_assert!(ScopeSet::parse(&v.join(" ")).is_err());
    }

    #[test]
    fn over_long_scopes_are_refused(n in (MAX_SCOPE_LEN / 5 + 1)..2000usize) {
        let s = "read ".repeat(n);
        prop_assert!(s.len() > MAX_SCOPE_LEN);
        prop_assert!(ScopeSet::parse(&s).is_err());
    }

    // ------------------------------------------------------------------ pagination

    #[test]
    fn page_parse_accepts_exactly_valid_numbers(
        limit in any::<i64>(),
        offset in any::<i64>(),
        max in 1i64..2000,
    ) {
        let r = Page::parse(Some(&limit.to_string()), Some(&offset.to_string()), max);
        if limit >= 1 && offset >= 0 {
            let p = r.unwrap();
            prop_assert_eq!(p.limit, limit.min(max));
            prop_assert_eq!(p.offset, offset);
        } else {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn page_parse_never_panics(limit in ".{0,30}", offset in ".{0,30}", max in 1i64..2000) {
        if let Ok(p) = Page::parse(Some(&limit), Some(&offset), max) {
            prop_assert!(p.limit >= 1 && p.limit <= max && p.offset >= 0);
        }
    }

    #[test]
    fn next_and_previous_links_are_consistent(
        limit in 1i64..=100,
        offset in 0i64..=i64::MAX,
        count in 0i64..=i64::MAX,
    ) {
        let p = Page { limit, offset, after: None };
        match p.next(count) {
            Some(n) => {
                prop_assert_eq!(n, offset + limit);
                prop_assert!(n < count);
            }
            None => prop_assert!(offset.saturating_add(limit) >= count),
        }
        match p.previous() {
            Some(prev) => {
                prop_assert!(offset > 0);
                prop_assert!(prev >= 0 && prev < offset);
                prop_assert_eq!(prev, (offset - limit).max(0));
            }
            None => prop_assert_eq!(offset, 0),
        }
    }

    #[test]
    fn following_next_visits_every_item_once(limit in 1i64..=100, count in 0i64..2000) {
        let mut p = Page { limit, offset: 0, after: None };
        let mut seen = 0i64;
        let mut pages = 0;
        loop {
            seen += (count - p.offset).clamp(0, limit);
            pages += 1;
            match p.next(count) {
                Some(n) => p.offset = n,
                None => break,
            }
        }
        prop_assert_eq!(seen, count);
        prop_assert_eq!(pages, ((count + limit - 1) / limit).max(1));
    }

    // ------------------------------------------------------------------ redirect URIs

    #[test]
    fn registered_redirect_uris_are_https_or_loopback_http(s in ".{0,120}") {
        check_redirect(&s)?;
    }

    #[test]
    fn url_shaped_redirect_uris_follow_the_rules(
        scheme in prop_oneof![Just("https"), Just("http"), Just("HTTPS"), Just("javascript"), Just("ftp")],
        userinfo in prop_oneof![Just(""), Just("user@"), Just("u:p@"), Just("@")],
        host in prop_oneof![
            Just("app.example.com"), Just("localhost"), Just("127.0.0.1"), Just("[::1]"),
            Just("evil.com"), Just("app.example.com."), Just("127.0.0.1.evil.com"),
            Just("localhost.evil.com"), Just("10.0.0.1")
        ],
        port in prop_oneof![Just(""), Just(":8080")],
        path in "(/[a-zA-Z0-9%._~-]{0,8}){0,3}",
        query in prop_oneof![Just(""), Just("?a=b"), Just("?next=https://evil.com")],
        fragment in prop_oneof![Just(""), Just("#"), Just("#frag")],
    ) {
        let uri = format!("{scheme}://{userinfo}{host}{port}{path}{query}{fragment}");
        check_redirect(&uri)?;
        let ok = validate_redirect_uri(&uri).is_ok();
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        let expect = userinfo.is_empty()
            && fragment.is_empty()
            && (scheme.eq_ignore_ascii_case("https")
                || (scheme.eq_ignore_ascii_case("http") && loopback));
        prop_assert_eq!(ok, expect, "{}", uri);
    }

    // ------------------------------------------------------------------ parameters

    #[test]
    fn a_parameter_given_twice_is_always_refused(
        pairs in proptest::collection::vec(("[a-c]{1,2}", ".{0,5}"), 0..10),
    ) {
        let mut names: Vec<&String> = pairs.iter().map(|(k, _)| k).collect();
        names.sort();
        let dup = names.windows(2).any(|w| w[0] == w[1]);
        let r = Params::from_pairs(pairs.clone());
        prop_assert_eq!(r.is_err(), dup);
        if let Ok(p) = r {
            for (k, v) in &pairs {
                prop_assert_eq!(p.get(k), if v.is_empty() { None } else { Some(v.as_str()) });
            }
        }
    }

    #[test]
    fn one_client_authentication_method_per_request(
        basic in proptest::option::of(("[a-z]{1,5}", "[a-z]{0,5}")),
        body_id in proptest::option::of("[a-z]{1,5}"),
        body_secret in proptest::option::of("[a-z]{1,5}"),
    ) {
        match ClientCredentials::resolve(basic.clone(), body_id.clone(), body_secret.clone()) {
            Ok(Some(c)) => {
                prop_assert_eq!(c.via_basic, basic.is_some());
                if let Some((id, _)) = &basic {
                    prop_assert!(body_secret.is_none());
                    prop_assert_eq!(&c.client_id, id);
                    prop_assert!(body_id.as_ref().is_none_or(|b| b == id));
                } else {
                    prop_assert_eq!(Some(&c.client_id), body_id.as_ref());
                    prop_assert_eq!(&c.secret, &body_secret);
                }
            }
            Ok(None) => prop_assert!(basic.is_none() && body_id.is_none() && body_secret.is_none()),
            Err(_) => prop_assert!(
                (basic.is_some() && (body_secret.is_some() || body_id.as_ref().is_some_and(|b| Some(b) != basic.as_ref().map(|x| &x.0))))
                    || (basic.is_none() && body_id.is_none() && body_secret.is_some())
            ),
        }
    }
}

fn check_redirect(s: &str) -> Result<(), TestCaseError> {
    if validate_redirect_uri(s).is_ok() {
        let u = url::Url::parse(s).unwrap();
        prop_assert!(u.username().is_empty() && u.password().is_none(), "{}", s);
        prop_assert!(u.fragment().is_none() && !s.contains('#'), "{}", s);
        match u.scheme() {
            "https" => {}
            "http" => prop_assert!(
                matches!(u.host(), Some(url::Host::Domain("localhost")))
                    || matches!(u.host(), Some(url::Host::Ipv4(ip)) if ip.is_loopback())
                    || matches!(u.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback()),
                "{}",
                s
            ),
            other => prop_assert!(false, "scheme {} accepted: {}", other, s),
        }
    }
    Ok(())
}

#[test]
fn scope_set_rules_hold_for_every_pair_and_triple() {
    for a in ALL_SETS {
        assert!(a.covers(&a), "reflexive");
        assert!(ScopeSet::WRITE.covers(&a), "write covers everything");
        for b in ALL_SETS {
            let u = a.union(&b);
            assert!(u.covers(&a) && u.covers(&b), "union covers both");
            assert_eq!(u, b.union(&a), "union commutes");
            for need in [Need::Read, Need::Write] {
                assert_eq!(u.allows(need), a.allows(need) || b.allows(need));
                if a.covers(&b) && b.allows(need) {
                    assert!(a.allows(need), "covering grants every permission");
                }
            }
            for c in ALL_SETS {
                if a.covers(&b) && b.covers(&c) {
                    assert!(a.covers(&c), "transitive");
                }
            }
        }
        // write implies read; read never implies write.
        assert_eq!(a.allows(Need::Read), a.read || a.write);
        assert_eq!(a.allows(Need::Write), a.write);
    }
}

// ---------------------------------------------------------------------- redirect-URI matching

/// A registrable redirect URI built from parts (https anywhere, http on loopback).
fn registered_uri() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            Just("https://app.example.com"),
            Just("https://yourapp.com"),
            Just("https://a.b.example"),
            Just("http://127.0.0.1"),
            Just("http://localhost"),
            Just("http://[::1]"),
            Just("https://xn--bcher-kva.example"),
        ],
        prop_oneof![Just(""), Just(":8443"), Just(":443")],
        "(/[a-z0-9_.~-]{1,6}){0,3}/?",
        prop_oneof![Just(""), Just("?tenant=1"), Just("?a=b&c=%2F")],
    )
        .prop_map(|(base, port, path, query)| format!("{base}{port}{path}{query}"))
        .prop_filter("registrable", |u| validate_redirect_uri(u).is_ok())
}

/// The open-redirect tricks of RFC 9700 §4.1 applied to `uri` at position `at`.
fn mutate(uri: &str, kind: u8, at: usize) -> String {
    let (scheme, rest) = uri.split_once("://").unwrap();
    let host_end = rest.find(['/', '?', ':']).unwrap_or(rest.len());
    let (host, tail) = rest.split_at(host_end);
    let i = if uri.is_empty() { 0 } else { at % uri.len() };
    let i = (0..=i)
        .rev()
        .find(|j| uri.is_char_boundary(*j))
        .unwrap_or(0);
    match kind % 16 {
        0 => uri.to_ascii_uppercase(),
        1 => format!("{}{}", &uri[..i], uri[i..].to_ascii_uppercase()),
        2 => format!("{scheme}://{host}.{tail}"), // trailing dot
        3 => format!("{scheme}://user@{host}{tail}"), // userinfo
        4 => format!("{scheme}://evil.example@{host}{tail}"), // userinfo, attacker host
        5 => format!("{scheme}://{host}@evil.example{tail}"), // real host as userinfo
        6 => format!("{scheme}://{host}\\@evil.example{tail}"), // backslash
        7 => uri.replacen('/', "\\", 3),          // backslashes for slashes
        8 => {
            // percent-encode one character
            let c = uri[i..].chars().next().unwrap_or('a');
            let mut b = [0u8; 4];
            let enc: String = c
                .encode_utf8(&mut b)
                .bytes()
                .map(|x| format!("%{x:02X}"))
                .collect();
            format!("{}{enc}{}", &uri[..i], &uri[i + c.len_utf8()..])
        }
        9 => format!("{uri}/extra"),
        10 => format!("{uri}{}x=1", if uri.contains('?') { "&" } else { "?" }),
        11 => format!("{uri}#frag"),
        12 => format!("{uri}/"),
        13 => format!("{scheme}://{host}:443{tail}"),
        14 => format!("{scheme}://{host}.evil.example{tail}"),
        _ => format!("{}{}", &uri[..i], &uri[i..].replacen('.', "%2E", 1)),
    }
}

fn code_client(kind: ClientKind, redirect_uris: Vec<String>) -> Client {
    Client {
        pk: 1,
        client_id: "the-client".into(),
        secret: SecretHash::None,
        name: "n".into(),
        owner_id: None,
        kind,
        redirect_uris,
        grants: vec![GrantType::AuthorizationCode],
        scopes: ScopeSet::READ_WRITE,
        profile: "angelcam".into(),
        created_at: 0,
        oidc: Default::default(),
        allow_password_without_mfa: false,
    }
}

/// Runs the authorization endpoint's validation for `redirect_uri` and checks the one rule:
/// accepted (and then used as given) exactly when byte-identical to a registered URI; every
/// other candidate is the error page, never a redirect.
fn check_matching(registered: &[String], candidate: &str) -> Result<(), TestCaseError> {
    let pairs: Vec<(String, String)> = [
        ("response_type", "code"),
        ("client_id", "the-client"),
        ("redirect_uri", candidate),
        ("state", "s"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    prop_assert_eq!(authorization_client_id(&pairs).unwrap(), "the-client");
    let client = code_client(ClientKind::Confidential, registered.to_vec());
    let is_registered = registered.iter().any(|r| r == candidate);
    match validate_authorization_for(client, pairs) {
        Ok(v) => {
            prop_assert!(is_registered, "accepted unregistered {}", candidate);
            prop_assert_eq!(v.redirect_uri.as_str(), candidate);
        }
        Err(AuthorizeError::Redirect(r)) => {
            prop_assert!(
                is_registered,
                "redirected to unregistered {}",
                r.redirect_uri
            );
            prop_assert_eq!(r.redirect_uri.as_str(), candidate);
        }
        Err(AuthorizeError::Page { message, .. }) => {
            prop_assert!(
                !is_registered,
                "registered {} refused: {}",
                candidate,
                message
            );
            prop_assert_eq!(message.as_str(), MISMATCHING_REDIRECT_URI);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn redirect_uri_matching_never_accepts_a_mutated_registered_uri(
        registered in proptest::collection::vec(registered_uri(), 1..4),
        pick in any::<usize>(),
        kind in any::<u8>(),
        at in any::<usize>(),
    ) {
        let base = &registered[pick % registered.len()];
        check_matching(&registered, base)?;
        let candidate = mutate(base, kind, at);
        check_matching(&registered, &candidate)?;
    }

    #[test]
    fn redirect_uri_matching_of_any_string(
        registered in proptest::collection::vec(registered_uri(), 1..3),
        candidate in ".{1,80}",
    ) {
        check_matching(&registered, &candidate)?;
    }

    #[test]
    fn an_omitted_redirect_uri_means_the_only_registered_one(
        registered in proptest::collection::vec(registered_uri(), 1..3),
    ) {
        let pairs = vec![
            ("response_type".to_string(), "code".to_string()),
            ("client_id".to_string(), "the-client".to_string()),
        ];
        let client = code_client(ClientKind::Confidential, registered.clone());
        match validate_authorization_for(client, pairs) {
            Ok(v) => {
                prop_assert_eq!(registered.len(), 1);
                prop_assert_eq!(&v.redirect_uri, &registered[0]);
                prop_assert!(!v.redirect_uri_given);
            }
            Err(AuthorizeError::Page { .. }) => prop_assert!(registered.len() > 1),
            Err(AuthorizeError::Redirect(r)) => prop_assert!(false, "redirect {:?}", r),
        }
    }

    // ------------------------------------------------------------------ codes and PKCE

    #[test]
    fn authorization_codes_have_their_format(
        style in prop_oneof![Just(None), Just(Some(TokenStyle::Alnum30)), Just(Some(TokenStyle::Prefixed))],
    ) {
        let f = code_format(style);
        match style {
            Some(TokenStyle::Alnum30) => prop_assert_eq!(f, TokenFormat::Alnum30),
            _ => prop_assert_eq!(f, TokenFormat::Prefixed("cgac_")),
        }
        let c = secret::generate(f);
        check_format(&c, f)?;
        prop_assert_ne!(c, secret::generate(f));
    }

    #[test]
    fn every_profile_issues_tokens_of_its_format(pick in any::<usize>()) {
        let profiles = Profiles::builtin();
        let names: Vec<&str> = profiles.names().collect();
        let p = profiles.get(names[pick % names.len()]).unwrap();
        for f in [p.access_format(), p.refresh_format()] {
            check_format(&secret::generate(f), f)?;
        }
        // Access and refresh tokens of one profile are told apart by their prefix.
        if let (TokenFormat::Prefixed(a), TokenFormat::Prefixed(r)) = (p.access_format(), p.refresh_format()) {
            prop_assert_ne!(a, r);
        }
    }

    #[test]
    fn s256_challenges_are_43_base64url_characters(v in "[A-Za-z0-9._~-]{43,128}", w in "[A-Za-z0-9._~-]{43,128}") {
        let c = s256_challenge(&v);
        prop_assert_eq!(c.len(), 43);
        prop_assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{}", c);
        prop_assert_eq!(v == w, c == s256_challenge(&w));
    }

    #[test]
    fn client_ids_secrets_and_csrf_tokens_have_their_format(session in "cgs_[A-Za-z0-9]{32}") {
        let id = secret::generate_client_id();
        prop_assert_eq!(id.len(), CLIENT_ID_LEN);
        prop_assert!(id.bytes().all(|b| b.is_ascii_alphanumeric()));
        let s = secret::generate_client_secret();
        prop_assert!(s.starts_with("cgs_") && s.len() == 44, "{}", s);
        prop_assert!(s[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
        // CSRF: BASE64URL(HMAC-SHA256) = 43 characters, bound to the session id.
        let t = csrf_token(&session);
        prop_assert_eq!(t.len(), 43);
        prop_assert_eq!(&t, &csrf_token(&session));
        prop_assert_ne!(&t, &csrf_token(&format!("{session}x")));
    }
}
