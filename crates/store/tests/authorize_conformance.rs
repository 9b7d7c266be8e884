//! Conformance of the browser-flow storage methods (codes, consents, parked requests, sessions,
//! login throttle): every check runs on SQLite (a temp file) and on PostgreSQL (a fresh
//! throwaway database at `CAMGATE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; fails, never skips, when unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use camgate_core::authorize::{NewAuthCode, ParkedRequest};
use camgate_core::model::*;
use camgate_core::scope::ScopeSet;
use camgate_core::sessions::NewSession;
use camgate_core::store::Store;

mod support;
use support::Db;

on_both_backends!(
    codes_claim_once_and_replays_meet_the_family,
    attach_without_replay_is_clean,
    consents_parked_requests_and_sessions,
    throttle_windows_count_and_restart,
);

async fn user_and_client(s: &dyn Store) -> (UserId, ClientPk) {
    let u = s
        .create_user(&NewUser {
            email: "u@example.com".into(),
            password_hash: "x".into(),
            first_name: String::new(),
            last_name: String::new(),
            phone: String::new(),
            is_admin: false,
            created_at: 1000,
            email_verified: false,
        })
        .await
        .unwrap();
    let c = s
        .create_client(&NewClient {
            client_id: "c1".into(),
            secret: SecretHash::None,
            name: "c".into(),
            owner_id: None,
            kind: ClientKind::Public,
            redirect_uris: vec!["https://a.example/cb".into()],
            grants: vec![GrantType::AuthorizationCode],
            scopes: ScopeSet::READ_WRITE,
            profile: "angelcam".into(),
            created_at: 1000,
            oidc: Default::default(),
            allow_password_without_mfa: false,
        })
        .await
        .unwrap();
    (u.id, c.pk)
}

async fn codes_claim_once_and_replays_meet_the_family(db: &Db) {
    let s = db.store.as_ref();
    let (uid, cpk) = user_and_client(s).await;
    let hash = vec![7u8; 32];
    s.create_auth_code(&NewAuthCode {
        hash: hash.clone(),
        client_pk: cpk,
        user_id: uid,
        redirect_uri: "https://a.example/cb".into(),
        redirect_uri_given: true,
        scope: ScopeSet::READ,
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        created_at: 1000,
        expires_at: 1060,
        authn: None,
        nonce: None,
    })
    .await
    .unwrap();
    let c = s.auth_code(&hash).await.unwrap().unwrap();
    assert_eq!(c.scope, ScopeSet::READ);
    assert!(c.redirect_uri_given);
    assert_eq!(c.used_at, None);
    assert!(s.auth_code(&[0u8; 32]).await.unwrap().is_none());

    assert!(s.claim_auth_code(&hash, 1001).await.unwrap());
    assert!(!s.claim_auth_code(&hash, 1002).await.unwrap());
    assert_eq!(
        s.auth_code(&hash).await.unwrap().unwrap().used_at,
        Some(1001)
    );

    // A replay before the family is attached: the attach then reports it.
    assert_eq!(s.mark_auth_code_replayed(&hash, 1003).await.unwrap(), None);
    let fam = s
        .create_family(
            &NewFamily {
                actor_id: None,
                user_id: Some(uid),
                client_pk: cpk,
                grant_type: GrantType::AuthorizationCode,
                created_at: 1001,
                authn: None,
            },
            &NewAccessToken {
                hash: vec![1u8; 32],
                scope: ScopeSet::READ,
                created_at: 1001,
                expires_at: 5000,
            },
            None,
        )
        .await
        .unwrap();
    assert!(s.attach_auth_code_family(&hash, fam).await.unwrap());
    // Later replays see the family; the first replay time is kept.
    assert_eq!(
        s.mark_auth_code_replayed(&hash, 1004).await.unwrap(),
        Some(fam)
    );
    let c = s.auth_code(&hash).await.unwrap().unwrap();
    assert_eq!((c.replayed_at, c.family_id), (Some(1003), Some(fam)));
}

async fn attach_without_replay_is_clean(db: &Db) {
    let s = db.store.as_ref();
    let (uid, cpk) = user_and_client(s).await;
    let hash = vec![8u8; 32];
    s.create_auth_code(&NewAuthCode {
        hash: hash.clone(),
        client_pk: cpk,
        user_id: uid,
        redirect_uri: "https://a.example/cb".into(),
        redirect_uri_given: false,
        scope: ScopeSet::READ_WRITE,
        code_challenge: None,
        created_at: 1000,
        expires_at: 1060,
        authn: None,
        nonce: None,
    })
    .await
    .unwrap();
    let fam = s
        .create_family(
            &NewFamily {
                actor_id: None,
                user_id: Some(uid),
                client_pk: cpk,
                grant_type: GrantType::AuthorizationCode,
                created_at: 1001,
                authn: None,
            },
            &NewAccessToken {
                hash: vec![2u8; 32],
                scope: ScopeSet::READ,
                created_at: 1001,
                expires_at: 5000,
            },
            None,
        )
        .await
        .unwrap();
    assert!(s.claim_auth_code(&hash, 1001).await.unwrap());
    assert!(!s.attach_auth_code_family(&hash, fam).await.unwrap());
    // Purge: gone once expired before the cutoff.
    assert_eq!(s.purge_authorize(1060, 100).await.unwrap(), 0);
    assert_eq!(s.purge_authorize(1061, 100).await.unwrap(), 1);
    assert!(s.auth_code(&hash).await.unwrap().is_none());
}

async fn consents_parked_requests_and_sessions(db: &Db) {
    let s = db.store.as_ref();
    let (uid, cpk) = user_and_client(s).await;
    assert_eq!(s.consent(uid, cpk).await.unwrap(), None);
    s.put_consent(uid, cpk, ScopeSet::READ, 1000).await.unwrap();
    s.put_consent(uid, cpk, ScopeSet::READ_WRITE, 1001)
        .await
        .unwrap();
    assert_eq!(
        s.consent(uid, cpk).await.unwrap(),
        Some(ScopeSet::READ_WRITE)
    );

    let p = ParkedRequest {
        client_pk: cpk,
        request: "{\"x\":1}".into(),
        created_at: 1000,
        expires_at: 2800,
    };
    s.park_authz_request(&[3u8; 32], &p).await.unwrap();
    assert_eq!(
        s.parked_authz_request(&[3u8; 32]).await.unwrap(),
        Some(p.clone())
    );
    assert_eq!(s.take_authz_request(&[3u8; 32]).await.unwrap(), Some(p));
    assert_eq!(s.take_authz_request(&[3u8; 32]).await.unwrap(), None);

    let h = vec![4u8; 32];
    s.create_session(&NewSession {
        hash: h.clone(),
        user_id: uid,
        created_at: 1000,
        expires_at: 9000,
        amr: "pwd".into(),
    })
    .await
    .unwrap();
    let r = s.session(&h).await.unwrap().unwrap();
    assert_eq!((r.user_id, r.last_seen_at, r.expires_at), (uid, 1000, 9000));
    // Touch at most once per interval.
    s.touch_session(&h, 1030, 60).await.unwrap();
    assert_eq!(s.session(&h).await.unwrap().unwrap().last_seen_at, 1000);
    s.touch_session(&h, 1060, 60).await.unwrap();
    assert_eq!(s.session(&h).await.unwrap().unwrap().last_seen_at, 1060);
    s.delete_session(&h).await.unwrap();
    assert!(s.session(&h).await.unwrap().is_none());
    // Deleting the user removes consents and sessions with it.
    s.create_session(&NewSession {
        hash: h.clone(),
        user_id: uid,
        created_at: 1000,
        expires_at: 9000,
        amr: "pwd".into(),
    })
    .await
    .unwrap();
    assert!(s.delete_user(uid).await.unwrap());
    assert!(s.session(&h).await.unwrap().is_none());
    assert_eq!(s.consent(uid, cpk).await.unwrap(), None);
}

async fn throttle_windows_count_and_restart(db: &Db) {
    let s = db.store.as_ref();
    let k = b"key".to_vec();
    assert_eq!(s.throttle_failures(&k, 0).await.unwrap(), None);
    // Window 3600 s starting at the first failure (t = 10000).
    for (i, now) in [10_000, 10_100, 13_599].into_iter().enumerate() {
        let got = s
            .throttle_record_failure(&k, now, now - 3600)
            .await
            .unwrap();
        assert_eq!(got, (10_000, i as i64 + 1));
    }
    assert_eq!(
        s.throttle_failures(&k, 13_599 - 3600).await.unwrap(),
        Some((10_000, 3))
    );
    // At t = 13600 the window is over: nothing counts, and the next failure restarts it.
    assert_eq!(s.throttle_failures(&k, 13_600 - 3600).await.unwrap(), None);
    assert_eq!(
        s.throttle_record_failure(&k, 13_600, 13_600 - 3600)
            .await
            .unwrap(),
        (13_600, 1)
    );
    // Concurrent failures are all counted.
    let k2 = b"k2".to_vec();
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let st = db.store.clone();
        let k2 = k2.clone();
        tasks.push(tokio::spawn(async move {
            st.throttle_record_failure(&k2, 20_000, 20_000 - 3600)
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        s.throttle_failures(&k2, 16_000).await.unwrap(),
        Some((20_000, 20))
    );
}
