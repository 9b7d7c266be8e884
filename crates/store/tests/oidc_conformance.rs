//! Conformance of the OpenID Connect storage (migration 0009): a code's nonce and sign-in facts,
//! a token family's sign-in facts as refresh sees them, a client's `oidc` settings (one JSON
//! column), a user's `email_verified`, and signing keys with a purpose (one active access key,
//! one active id_token key per algorithm). Every check runs on SQLite (a temp file) and on
//! PostgreSQL (a fresh throwaway database at `CAMGATE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; fails, never skips, when unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use camgate_core::authorize::NewAuthCode;
use camgate_core::dashboard::ClientUpdate;
use camgate_core::jwt::SigningKeyRecord;
use camgate_core::model::*;
use camgate_core::scope::ScopeSet;
use camgate_core::store::{NewGrant, Store};

mod support;
use support::Db;

on_both_backends!(
    auth_code_nonce_and_authn_round_trip,
    family_authn_is_visible_to_refresh,
    client_oidc_settings_round_trip,
    email_verified_round_trips,
    one_active_access_key_and_one_id_key_per_alg,
    rotation_retires_only_its_own_kind,
);

const T0: i64 = 1_700_000_000;

fn new_user(email: &str, verified: bool) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "x".into(),
        first_name: "Ada".into(),
        last_name: "Lovelace".into(),
        phone: "+1 555 0100".into(),
        is_admin: false,
        created_at: T0 - 10_000,
        email_verified: verified,
    }
}

fn new_client(client_id: &str, owner: Option<UserId>, oidc: OidcClient) -> NewClient {
    NewClient {
        client_id: client_id.into(),
        secret: SecretHash::Sha256(vec![0xab; 32]),
        name: format!("client {client_id}"),
        owner_id: owner,
        kind: ClientKind::Confidential,
        redirect_uris: vec!["https://rp.example/cb".into()],
        grants: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        scopes: ScopeSet::READ_WRITE,
        profile: "angelcam".into(),
        created_at: T0 - 9_000,
        oidc,
        allow_password_without_mfa: false,
    }
}

async fn user_and_client(s: &dyn Store) -> (User, Client) {
    let u = s
        .create_user(&new_user("u@example.com", false))
        .await
        .unwrap();
    let c = s
        .create_client(&new_client("c1", None, OidcClient::default()))
        .await
        .unwrap();
    (u, c)
}

fn code(hash: &[u8], cpk: ClientPk, uid: UserId) -> NewAuthCode {
    NewAuthCode {
        hash: hash.to_vec(),
        client_pk: cpk,
        user_id: uid,
        redirect_uri: "https://rp.example/cb".into(),
        redirect_uri_given: true,
        scope: ScopeSet::parse("openid email read").unwrap(),
        code_challenge: None,
        created_at: T0,
        expires_at: T0 + 60,
        nonce: None,
        authn: None,
    }
}

fn access(tag: u8, scope: ScopeSet) -> NewAccessToken {
    NewAccessToken {
        hash: vec![tag; 32],
        scope,
        created_at: T0,
        expires_at: T0 + 3_600,
    }
}

fn refresh(tag: u8, scope: ScopeSet) -> NewRefreshToken {
    NewRefreshToken {
        hash: vec![tag; 32],
        scope,
        created_at: T0,
        expires_at: Some(T0 + 86_400),
    }
}

fn family(uid: UserId, cpk: ClientPk, authn: Option<Authn>) -> NewFamily {
    NewFamily {
        actor_id: None,
        user_id: Some(uid),
        client_pk: cpk,
        grant_type: GrantType::AuthorizationCode,
        created_at: T0,
        authn,
    }
}

fn key(kid: &str, alg: &str, purpose: &str, created_at: i64) -> SigningKeyRecord {
    SigningKeyRecord {
        kid: kid.into(),
        alg: alg.into(),
        purpose: purpose.into(),
        private_key: vec![0x00, 0xff, kid.len() as u8],
        created_at,
        retired_at: None,
        verify_until: None,
    }
}

/// `(kid, purpose, retired)` of every key that verifies at `now`, sorted by kid.
async fn key_states(s: &dyn Store, now: i64) -> Vec<(String, String, bool)> {
    let mut v: Vec<_> = s
        .signing_keys(now)
        .await
        .unwrap()
        .into_iter()
        .map(|k| (k.kid, k.purpose, k.retired_at.is_some()))
        .collect();
    v.sort();
    v
}

fn st(kid: &str, purpose: &str, retired: bool) -> (String, String, bool) {
    (kid.into(), purpose.into(), retired)
}

// ---------------------------------------------------------------------------------------------

async fn auth_code_nonce_and_authn_round_trip(db: &Db) {
    let s = db.store.as_ref();
    let (u, c) = user_and_client(s).await;
    let long_nonce = "n".repeat(511) + "é";
    let cases = [
        (
            vec![1u8; 32],
            Some("n-0S6_WzA2Mj".to_string()),
            Some(Authn {
                auth_time: T0 - 42,
                amr: "pwd".into(),
            }),
        ),
        (
            vec![2u8; 32],
            Some(long_nonce),
            Some(Authn {
                auth_time: T0 - 1,
                amr: "pwd otp".into(),
            }),
        ),
        // A code of a request without openid: neither.
        (vec![3u8; 32], None, None),
        // A nonce without sign-in facts (not made by the core, but stored as given).
        (vec![4u8; 32], Some("only-nonce".to_string()), None),
    ];
    for (hash, nonce, authn) in &cases {
        let mut nc = code(hash, c.pk, u.id);
        nc.nonce = nonce.clone();
        nc.authn = authn.clone();
        s.create_auth_code(&nc).await.unwrap();
    }
    for (hash, nonce, authn) in &cases {
        let got = s.auth_code(hash).await.unwrap().unwrap();
        assert_eq!(&got.nonce, nonce, "nonce of code {}", hash[0]);
        assert_eq!(&got.authn, authn, "authn of code {}", hash[0]);
        assert_eq!(got.scope, ScopeSet::parse("openid email read").unwrap());
        assert_eq!(got.user_id, u.id);
    }
    // Claiming the code keeps what the id_token needs.
    assert!(s.claim_auth_code(&cases[0].0, T0 + 1).await.unwrap());
    let got = s.auth_code(&cases[0].0).await.unwrap().unwrap();
    assert_eq!(got.used_at, Some(T0 + 1));
    assert_eq!(got.nonce.as_deref(), Some("n-0S6_WzA2Mj"));
    assert_eq!(got.authn.map(|a| a.auth_time), Some(T0 - 42));
}

async fn family_authn_is_visible_to_refresh(db: &Db) {
    let s = db.store.as_ref();
    let (u, c) = user_and_client(s).await;
    let openid = ScopeSet::parse("openid profile read").unwrap();
    let authn = Authn {
        auth_time: T0 - 300,
        amr: "pwd".into(),
    };
    // create_family.
    let f1 = s
        .create_family(
            &family(u.id, c.pk, Some(authn.clone())),
            &access(10, openid),
            Some(&refresh(11, openid)),
        )
        .await
        .unwrap();
    let r = s.refresh_token(&[11u8; 32]).await.unwrap().unwrap();
    assert_eq!(r.family_id, f1);
    assert_eq!(r.authn, Some(authn.clone()));
    assert_eq!(r.scope, openid);
    // create_family_audited (the token endpoint's path), with two factors.
    let mfa = Authn {
        auth_time: T0 - 5,
        amr: "pwd otp".into(),
    };
    s.create_family_audited(
        &family(u.id, c.pk, Some(mfa.clone())),
        &access(12, openid),
        Some(&refresh(13, openid)),
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        s.refresh_token(&[13u8; 32]).await.unwrap().unwrap().authn,
        Some(mfa)
    );
    // create_grant.
    let fam = family(u.id, c.pk, Some(authn.clone()));
    let (a, rt) = (access(14, openid), refresh(15, openid));
    s.create_grant(
        &NewGrant {
            family: &fam,
            access: &a,
            refresh: Some(&rt),
        },
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        s.refresh_token(&[15u8; 32]).await.unwrap().unwrap().authn,
        Some(authn.clone())
    );
    // A family without sign-in facts (not an OIDC login).
    s.create_family(
        &family(u.id, c.pk, None),
        &access(16, ScopeSet::READ),
        Some(&refresh(17, ScopeSet::READ)),
    )
    .await
    .unwrap();
    assert_eq!(
        s.refresh_token(&[17u8; 32]).await.unwrap().unwrap().authn,
        None
    );
    // The facts belong to the family: the successor of a rotation sees them too.
    assert!(s
        .rotate_refresh(
            f1,
            &[11u8; 32],
            T0 + 10,
            &access(18, openid),
            &refresh(19, openid)
        )
        .await
        .unwrap());
    let next = s.refresh_token(&[19u8; 32]).await.unwrap().unwrap();
    assert_eq!(next.family_id, f1);
    assert_eq!(next.authn, Some(authn));
    assert_eq!(
        s.refresh_token(&[11u8; 32]).await.unwrap().unwrap().used_at,
        Some(T0 + 10)
    );
}

async fn client_oidc_settings_round_trip(db: &Db) {
    let s = db.store.as_ref();
    let owner = s
        .create_user(&new_user("dev@example.com", false))
        .await
        .unwrap();
    let full = OidcClient {
        post_logout_redirect_uris: vec![
            "https://rp.example/bye".into(),
            "https://rp.example/bye?x=1&y=%20\"q\"".into(),
        ],
        subject_type: SubjectType::Pairwise,
        sector_identifier: Some("sector.example".into()),
        id_token_alg: IdTokenAlg(JwtAlg::Es256),
    };
    // A default client: the defaults come back (RS256, public, nothing registered).
    let plain = s
        .create_client(&new_client("plain", Some(owner.id), OidcClient::default()))
        .await
        .unwrap();
    assert_eq!(plain.oidc, OidcClient::default());
    assert_eq!(plain.oidc.id_token_alg, IdTokenAlg(JwtAlg::Rs256));
    assert_eq!(
        s.client_by_client_id("plain").await.unwrap().unwrap().oidc,
        OidcClient::default()
    );

    let c = s
        .create_client(&new_client("rp", Some(owner.id), full.clone()))
        .await
        .unwrap();
    assert_eq!(c.oidc, full, "create_client returns the settings");
    assert_eq!(
        s.client_by_client_id("rp").await.unwrap().unwrap().oidc,
        full
    );
    assert_eq!(s.client_by_pk(c.pk).await.unwrap().unwrap().oidc, full);
    let mine = s.clients_by_owner(owner.id).await.unwrap();
    assert_eq!(
        mine.iter().map(|c| c.oidc.clone()).collect::<Vec<_>>(),
        vec![OidcClient::default(), full.clone()]
    );

    // update_client (the dashboard's edit) replaces them.
    let edited = OidcClient {
        post_logout_redirect_uris: vec!["https://rp.example/out".into()],
        subject_type: SubjectType::Public,
        sector_identifier: None,
        id_token_alg: IdTokenAlg(JwtAlg::EdDsa),
    };
    assert!(s
        .update_client(
            c.pk,
            owner.id,
            &ClientUpdate {
                name: "RP".into(),
                redirect_uris: vec!["https://rp.example/cb".into()],
                grants: vec![GrantType::AuthorizationCode],
                scopes: ScopeSet::READ,
                profile: "angelcam".into(),
                oidc: edited.clone(),
            },
        )
        .await
        .unwrap());
    let got = s.client_by_client_id("rp").await.unwrap().unwrap();
    assert_eq!(got.oidc, edited);
    assert_eq!(got.name, "RP");
    assert_eq!(s.client_by_pk(c.pk).await.unwrap().unwrap().oidc, edited);

    // set_client_oidc (the CLI's update) replaces them and nothing else.
    assert!(s.set_client_oidc(c.pk, &full).await.unwrap());
    let got = s.client_by_client_id("rp").await.unwrap().unwrap();
    assert_eq!(got.oidc, full);
    assert_eq!(got.name, "RP");
    assert_eq!(got.scopes, ScopeSet::READ);
    assert_eq!(s.client_by_pk(c.pk).await.unwrap().unwrap().oidc, full);
    // The other client is untouched; an unknown pk changes nothing.
    assert_eq!(
        s.client_by_client_id("plain").await.unwrap().unwrap().oidc,
        OidcClient::default()
    );
    assert!(!s.set_client_oidc(c.pk + 1_000, &full).await.unwrap());
    // Back to the defaults.
    assert!(s
        .set_client_oidc(c.pk, &OidcClient::default())
        .await
        .unwrap());
    assert_eq!(
        s.client_by_client_id("rp").await.unwrap().unwrap().oidc,
        OidcClient::default()
    );
}

async fn email_verified_round_trips(db: &Db) {
    let s = db.store.as_ref();
    let yes = s
        .create_user(&new_user("yes@example.com", true))
        .await
        .unwrap();
    let no = s
        .create_user(&new_user("no@example.com", false))
        .await
        .unwrap();
    assert!(yes.email_verified);
    assert!(!no.email_verified);
    assert!(s.user_by_id(yes.id).await.unwrap().unwrap().email_verified);
    assert!(!s.user_by_id(no.id).await.unwrap().unwrap().email_verified);
    assert!(
        s.user_by_email("yes@example.com")
            .await
            .unwrap()
            .unwrap()
            .email_verified
    );
    // The user joined to an access token (what userinfo reads).
    let c = s
        .create_client(&new_client("c", None, OidcClient::default()))
        .await
        .unwrap();
    for (u, tag) in [(&yes, 30u8), (&no, 31u8)] {
        s.create_family(
            &family(u.id, c.pk, None),
            &access(tag, ScopeSet::parse("openid email").unwrap()),
            None,
        )
        .await
        .unwrap();
        let a = s.access_token(&[tag; 32]).await.unwrap().unwrap();
        let joined = a.user.unwrap();
        assert_eq!(joined.id, u.id);
        assert_eq!(joined.email_verified, u.email_verified, "user {}", u.email);
    }
}

async fn one_active_access_key_and_one_id_key_per_alg(db: &Db) {
    let s = db.store.as_ref();
    assert_eq!(s.active_signing_kid().await.unwrap(), None);
    assert_eq!(s.active_id_signing_kid("RS256").await.unwrap(), None);

    // An id key alone is no access key.
    assert!(s
        .insert_signing_key_if_none(&key("id-rs", "RS256", "id", T0 - 90))
        .await
        .unwrap());
    assert_eq!(s.active_signing_kid().await.unwrap(), None);
    assert_eq!(
        s.active_id_signing_kid("RS256").await.unwrap().as_deref(),
        Some("id-rs")
    );

    // One access key, whatever its algorithm.
    assert!(s
        .insert_signing_key_if_none(&key("acc-ed", "EdDSA", "access", T0 - 100))
        .await
        .unwrap());
    assert!(!s
        .insert_signing_key_if_none(&key("acc-es", "ES256", "access", T0 - 80))
        .await
        .unwrap());
    assert!(!s
        .insert_signing_key_if_none(&key("acc-ed2", "EdDSA", "access", T0 - 80))
        .await
        .unwrap());
    assert_eq!(
        s.active_signing_kid().await.unwrap().as_deref(),
        Some("acc-ed")
    );
    // An EdDSA access key is no EdDSA id key.
    assert_eq!(s.active_id_signing_kid("EdDSA").await.unwrap(), None);

    // One id key per algorithm, beside the access key; newer id keys do not become the
    // access key.
    assert!(!s
        .insert_signing_key_if_none(&key("id-rs2", "RS256", "id", T0 - 10))
        .await
        .unwrap());
    assert!(s
        .insert_signing_key_if_none(&key("id-es", "ES256", "id", T0 - 9))
        .await
        .unwrap());
    assert!(s
        .insert_signing_key_if_none(&key("id-ed", "EdDSA", "id", T0 - 8))
        .await
        .unwrap());
    assert!(!s
        .insert_signing_key_if_none(&key("id-es2", "ES256", "id", T0 - 7))
        .await
        .unwrap());
    assert_eq!(
        s.active_signing_kid().await.unwrap().as_deref(),
        Some("acc-ed")
    );
    for (alg, kid) in [("RS256", "id-rs"), ("ES256", "id-es"), ("EdDSA", "id-ed")] {
        assert_eq!(
            s.active_id_signing_kid(alg).await.unwrap().as_deref(),
            Some(kid),
            "{alg}"
        );
    }
    assert_eq!(s.active_id_signing_kid("HS256").await.unwrap(), None);

    // Everything is listed with its purpose and stored bytes.
    let keys = s.signing_keys(T0).await.unwrap();
    assert_eq!(keys.len(), 4);
    let rs = keys.iter().find(|k| k.kid == "id-rs").unwrap();
    assert_eq!(rs, &key("id-rs", "RS256", "id", T0 - 90));
    let acc = keys.iter().find(|k| k.kid == "acc-ed").unwrap();
    assert_eq!(acc, &key("acc-ed", "EdDSA", "access", T0 - 100));
    assert_eq!(
        key_states(s, T0).await,
        vec![
            st("acc-ed", "access", false),
            st("id-ed", "id", false),
            st("id-es", "id", false),
            st("id-rs", "id", false),
        ]
    );
}

async fn rotation_retires_only_its_own_kind(db: &Db) {
    let s = db.store.as_ref();
    for k in [
        key("acc-ed", "EdDSA", "access", T0 - 100),
        key("id-rs", "RS256", "id", T0 - 90),
        key("id-es", "ES256", "id", T0 - 80),
        key("id-ed", "EdDSA", "id", T0 - 70),
    ] {
        assert!(s.insert_signing_key_if_none(&k).await.unwrap(), "{}", k.kid);
    }

    // Rotating the RS256 id key retires that key alone.
    s.rotate_signing_key(&key("id-rs2", "RS256", "id", T0), T0, T0 + 500)
        .await
        .unwrap();
    assert_eq!(
        s.active_id_signing_kid("RS256").await.unwrap().as_deref(),
        Some("id-rs2")
    );
    assert_eq!(
        s.active_signing_kid().await.unwrap().as_deref(),
        Some("acc-ed")
    );
    assert_eq!(
        s.active_id_signing_kid("ES256").await.unwrap().as_deref(),
        Some("id-es")
    );
    assert_eq!(
        s.active_id_signing_kid("EdDSA").await.unwrap().as_deref(),
        Some("id-ed")
    );
    assert_eq!(
        key_states(s, T0).await,
        vec![
            st("acc-ed", "access", false),
            st("id-ed", "id", false),
            st("id-es", "id", false),
            st("id-rs", "id", true),
            st("id-rs2", "id", false),
        ]
    );
    let old = s
        .signing_keys(T0)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == "id-rs")
        .unwrap();
    assert_eq!(
        (old.retired_at, old.verify_until),
        (Some(T0), Some(T0 + 500))
    );

    // Rotating the access key (to another algorithm) retires the access key alone: the EdDSA
    // id key stays active.
    s.rotate_signing_key(
        &key("acc-es", "ES256", "access", T0 + 10),
        T0 + 10,
        T0 + 1_000,
    )
    .await
    .unwrap();
    assert_eq!(
        s.active_signing_kid().await.unwrap().as_deref(),
        Some("acc-es")
    );
    for (alg, kid) in [("RS256", "id-rs2"), ("ES256", "id-es"), ("EdDSA", "id-ed")] {
        assert_eq!(
            s.active_id_signing_kid(alg).await.unwrap().as_deref(),
            Some(kid),
            "{alg}"
        );
    }
    assert_eq!(
        key_states(s, T0 + 10).await,
        vec![
            st("acc-ed", "access", true),
            st("acc-es", "access", false),
            st("id-ed", "id", false),
            st("id-es", "id", false),
            st("id-rs", "id", true),
            st("id-rs2", "id", false),
        ]
    );

    // Rotating the EdDSA id key leaves the (retired) EdDSA access key as it was.
    s.rotate_signing_key(&key("id-ed2", "EdDSA", "id", T0 + 20), T0 + 20, T0 + 700)
        .await
        .unwrap();
    let acc = s
        .signing_keys(T0 + 20)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.kid == "acc-ed")
        .unwrap();
    assert_eq!(acc.verify_until, Some(T0 + 1_000), "not re-retired");
    assert_eq!(
        s.active_id_signing_kid("EdDSA").await.unwrap().as_deref(),
        Some("id-ed2")
    );
    assert_eq!(
        s.active_signing_kid().await.unwrap().as_deref(),
        Some("acc-es")
    );

    // Past their verify_until the retired keys drop out of the list; active ones stay.
    assert_eq!(
        key_states(s, T0 + 1_000).await,
        vec![
            st("acc-es", "access", false),
            st("id-ed2", "id", false),
            st("id-es", "id", false),
            st("id-rs2", "id", false),
        ]
    );
}
