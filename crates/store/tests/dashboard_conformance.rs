//! Conformance of the dashboard storage methods (the dashboard: clients by owner, edits, secret
//! rotation, deletion; PAT lists; authorized apps and their revocation; sessions of a user; the
//! user list): every check runs on SQLite (a temp file) and on PostgreSQL (a fresh
//! throwaway database at `CAMGATE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; fails, never skips, when unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use camgate_core::authorize::NewAuthCode;
use camgate_core::dashboard::ClientUpdate;
use camgate_core::model::*;
use camgate_core::scope::ScopeSet;
use camgate_core::sessions::NewSession;
use camgate_core::store::Store;

mod support;
use support::Db;

on_both_backends!(
    clients_of_an_owner_are_listed_edited_rotated_and_deleted,
    pats_by_user_lists_live_tokens_newest_first,
    authorized_apps_and_their_revocation,
    sessions_of_a_user_and_the_user_list,
);

async fn user(s: &dyn Store, email: &str) -> UserId {
    s.create_user(&NewUser {
        email: email.into(),
        password_hash: "x".into(),
        first_name: String::new(),
        last_name: String::new(),
        phone: String::new(),
        is_admin: false,
        created_at: 1000,
        email_verified: false,
    })
    .await
    .unwrap()
    .id
}

async fn client(
    s: &dyn Store,
    id: &str,
    name: &str,
    owner: Option<UserId>,
    secret: SecretHash,
) -> Client {
    s.create_client(&NewClient {
        client_id: id.into(),
        kind: if secret == SecretHash::None {
            ClientKind::Public
        } else {
            ClientKind::Confidential
        },
        secret,
        name: name.into(),
        owner_id: owner,
        redirect_uris: vec!["https://a.example/cb".into()],
        grants: vec![GrantType::AuthorizationCode, GrantType::Password],
        scopes: ScopeSet::READ_WRITE,
        profile: "angelcam".into(),
        created_at: 1000,
        oidc: Default::default(),
        allow_password_without_mfa: false,
    })
    .await
    .unwrap()
}

/// A family for (user, client) with one access and one refresh token; returns the family id.
async fn family(
    s: &dyn Store,
    user: UserId,
    client: ClientPk,
    tag: &str,
    created: i64,
    expires: i64,
    scope: ScopeSet,
) -> FamilyId {
    s.create_family(
        &NewFamily {
            actor_id: None,
            user_id: Some(user),
            client_pk: client,
            grant_type: GrantType::Password,
            created_at: created,
            authn: None,
        },
        &NewAccessToken {
            hash: format!("a-{tag}").into_bytes(),
            scope,
            created_at: created,
            expires_at: expires,
        },
        Some(&NewRefreshToken {
            hash: format!("r-{tag}").into_bytes(),
            scope,
            created_at: created,
            expires_at: Some(expires),
        }),
    )
    .await
    .unwrap()
}

async fn clients_of_an_owner_are_listed_edited_rotated_and_deleted(db: &Db) {
    let s = db.store.as_ref();
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "bob@example.com").await;
    let conf = client(
        s,
        "conf",
        "Conf",
        Some(alice),
        SecretHash::Sha256(b"old".to_vec()),
    )
    .await;
    let public = client(s, "pub", "Pub", Some(alice), SecretHash::None).await;
    let imported = client(
        s,
        "imp",
        "Imp",
        Some(alice),
        SecretHash::Argon2("$argon2id$x".into()),
    )
    .await;
    client(s, "ops", "Ops", None, SecretHash::None).await;
    let ids: Vec<String> = s
        .clients_by_owner(alice)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, vec!["conf", "pub", "imp"]);
    assert!(s.clients_by_owner(bob).await.unwrap().is_empty());

    // Edits: only by the owner.
    let u = ClientUpdate {
        name: "Renamed".into(),
        redirect_uris: vec!["https://b.example/cb".into(), "http://127.0.0.1/cb".into()],
        grants: vec![GrantType::RefreshToken],
        scopes: ScopeSet::READ,
        profile: "cameramanager".into(),
        oidc: Default::default(),
    };
    assert!(!s.update_client(conf.pk, bob, &u).await.unwrap());
    assert_eq!(s.client_by_pk(conf.pk).await.unwrap().unwrap().name, "Conf");
    assert!(s.update_client(conf.pk, alice, &u).await.unwrap());
    let c = s.client_by_pk(conf.pk).await.unwrap().unwrap();
    assert_eq!(c.name, "Renamed");
    assert_eq!(c.redirect_uris, u.redirect_uris);
    assert_eq!(c.grants, vec![GrantType::RefreshToken]);
    assert_eq!(c.scopes, ScopeSet::READ);
    assert_eq!(c.profile, "cameramanager");
    assert_eq!(c.secret, SecretHash::Sha256(b"old".to_vec()));

    // Rotation: owner only, confidential only; the replaced secret is kept until the given time.
    assert_eq!(s.client_previous_secret(conf.pk).await.unwrap(), None);
    assert!(!s
        .rotate_client_secret(conf.pk, bob, b"new", Some(5000))
        .await
        .unwrap());
    assert!(!s
        .rotate_client_secret(public.pk, alice, b"new", Some(5000))
        .await
        .unwrap());
    assert_eq!(
        s.client_by_pk(public.pk).await.unwrap().unwrap().secret,
        SecretHash::None
    );
    assert!(s
        .rotate_client_secret(conf.pk, alice, b"new", Some(5000))
        .await
        .unwrap());
    assert_eq!(
        s.client_by_pk(conf.pk).await.unwrap().unwrap().secret,
        SecretHash::Sha256(b"new".to_vec())
    );
    assert_eq!(
        s.client_previous_secret(conf.pk).await.unwrap(),
        Some((SecretHash::Sha256(b"old".to_vec()), 5000))
    );
    // Rotating again without overlap forgets the previous secret.
    assert!(s
        .rotate_client_secret(conf.pk, alice, b"newer", None)
        .await
        .unwrap());
    assert_eq!(s.client_previous_secret(conf.pk).await.unwrap(), None);
    // An imported (argon2id) secret is kept as such, and replaced by a digest.
    assert!(s
        .rotate_client_secret(imported.pk, alice, b"gen", Some(6000))
        .await
        .unwrap());
    assert_eq!(
        s.client_by_pk(imported.pk).await.unwrap().unwrap().secret,
        SecretHash::Sha256(b"gen".to_vec())
    );
    assert_eq!(
        s.client_previous_secret(imported.pk).await.unwrap(),
        Some((SecretHash::Argon2("$argon2id$x".into()), 6000))
    );

    // Deletion: owner only; the client's families, tokens, consents and codes go with it.
    family(s, bob, conf.pk, "x", 1000, 9000, ScopeSet::READ).await;
    s.put_consent(bob, conf.pk, ScopeSet::READ, 1000)
        .await
        .unwrap();
    s.create_auth_code(&NewAuthCode {
        hash: b"code".to_vec(),
        client_pk: conf.pk,
        user_id: bob,
        redirect_uri: "https://a.example/cb".into(),
        redirect_uri_given: true,
        scope: ScopeSet::READ,
        code_challenge: None,
        created_at: 1000,
        expires_at: 1060,
        authn: None,
        nonce: None,
    })
    .await
    .unwrap();
    assert!(!s.delete_client(conf.pk, bob).await.unwrap());
    assert!(s.access_token(b"a-x").await.unwrap().is_some());
    assert!(s.delete_client(conf.pk, alice).await.unwrap());
    assert!(!s.delete_client(conf.pk, alice).await.unwrap());
    assert!(s.client_by_pk(conf.pk).await.unwrap().is_none());
    assert!(s.access_token(b"a-x").await.unwrap().is_none());
    assert!(s.refresh_token(b"r-x").await.unwrap().is_none());
    assert!(s.consent(bob, conf.pk).await.unwrap().is_none());
    assert!(s.auth_code(b"code").await.unwrap().is_none());
}

async fn pats_by_user_lists_live_tokens_newest_first(db: &Db) {
    let s = db.store.as_ref();
    let alice = user(s, "alice@example.com").await;
    let bob = user(s, "bob@example.com").await;
    let mut ids = Vec::new();
    for (i, who) in [(1, alice), (2, alice), (3, bob), (4, alice)] {
        let p = s
            .create_pat(&NewPat {
                user_id: who,
                name: format!("t{i}"),
                hash: format!("h{i}").into_bytes(),
                prefix: format!("cgpat_{i}"),
                scope: ScopeSet::READ,
                created_at: 1000 + i,
                expires_at: (i == 2).then_some(1500),
            })
            .await
            .unwrap();
        ids.push(p.id);
    }
    assert!(s.revoke_pat(ids[0], alice, 2000).await.unwrap());
    let names: Vec<String> = s
        .pats_by_user(alice)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    // Revoked ones are gone; expired ones stay (shown as expired); newest first.
    assert_eq!(names, vec!["t4", "t2"]);
    let bobs = s.pats_by_user(bob).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].prefix, "cgpat_3");
    assert_eq!(bobs[0].created_at, 1003);
}

async fn authorized_apps_and_their_revocation(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "u@example.com").await;
    let other = user(s, "o@example.com").await;
    let a = client(s, "a", "Alpha", None, SecretHash::None).await;
    let b = client(s, "b", "Beta", None, SecretHash::None).await;
    let c = client(s, "c", "Gamma", None, SecretHash::None).await;
    let d = client(s, "d", "Delta", None, SecretHash::None).await;
    let now = 10_000;
    // Alpha: approved (consent), no tokens. Beta: live tokens, no consent. Gamma: only an
    // expired family. Delta: only a revoked family. The other user's family at Alpha counts
    // for them only.
    s.put_consent(u, a.pk, ScopeSet::READ, 1500).await.unwrap();
    family(s, u, b.pk, "b1", 2000, 20_000, ScopeSet::READ).await;
    family(s, u, b.pk, "b2", 3000, 20_000, ScopeSet::READ_WRITE).await;
    family(s, u, c.pk, "c1", 1000, 5000, ScopeSet::READ).await;
    let fd = family(s, u, d.pk, "d1", 1000, 20_000, ScopeSet::READ).await;
    s.revoke_family(fd, 4000).await.unwrap();
    family(s, other, a.pk, "o1", 2500, 20_000, ScopeSet::READ).await;
    let apps = s.authorized_apps(u, now).await.unwrap();
    let names: Vec<&str> = apps.iter().map(|x| x.name.as_str()).collect();
    assert_eq!(names, vec!["Alpha", "Beta"]);
    assert_eq!(apps[0].client_id, "a");
    assert_eq!(apps[0].scope, ScopeSet::READ);
    assert_eq!(apps[0].approved_at, Some(1500));
    assert_eq!(apps[0].last_used_at, None);
    assert_eq!(
        apps[1].scope,
        ScopeSet::READ_WRITE,
        "the latest token's scope"
    );
    assert_eq!(apps[1].approved_at, None);
    assert_eq!(apps[1].last_used_at, Some(3000));
    let theirs = s.authorized_apps(other, now).await.unwrap();
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].last_used_at, Some(2500));

    // Revoking Beta revokes its tokens for this user; Alpha's consent and the other user's
    // tokens are untouched.
    s.create_auth_code(&NewAuthCode {
        hash: b"code-b".to_vec(),
        client_pk: b.pk,
        user_id: u,
        redirect_uri: "https://a.example/cb".into(),
        redirect_uri_given: true,
        scope: ScopeSet::READ,
        code_challenge: None,
        created_at: now,
        expires_at: now + 60,
        authn: None,
        nonce: None,
    })
    .await
    .unwrap();
    assert!(s.revoke_client_for_user(u, b.pk, now).await.unwrap());
    for h in ["a-b1", "a-b2"] {
        assert!(s.access_token(h.as_bytes()).await.unwrap().unwrap().revoked);
    }
    assert!(s.refresh_token(b"r-b2").await.unwrap().unwrap().revoked);
    let code = s.auth_code(b"code-b").await.unwrap().unwrap();
    assert_eq!((code.used_at, code.replayed_at), (Some(now), Some(now)));
    assert!(!s.claim_auth_code(b"code-b", now).await.unwrap());
    let names: Vec<String> = s
        .authorized_apps(u, now)
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.name)
        .collect();
    assert_eq!(names, vec!["Alpha"]);
    assert!(!s.access_token(b"a-o1").await.unwrap().unwrap().revoked);
    // Revoking Alpha forgets the consent.
    assert!(s.revoke_client_for_user(u, a.pk, now).await.unwrap());
    assert!(s.consent(u, a.pk).await.unwrap().is_none());
    assert!(s.authorized_apps(u, now).await.unwrap().is_empty());
    assert!(!s.access_token(b"a-o1").await.unwrap().unwrap().revoked);
    // Nothing live left at Gamma (expired) or Delta (revoked): false, but Gamma's family is
    // closed anyway; a second revocation of Beta is false too.
    assert!(!s.revoke_client_for_user(u, c.pk, now).await.unwrap());
    assert!(s.refresh_token(b"r-c1").await.unwrap().unwrap().revoked);
    assert!(!s.revoke_client_for_user(u, d.pk, now).await.unwrap());
    assert!(!s.revoke_client_for_user(u, b.pk, now).await.unwrap());
}

async fn sessions_of_a_user_and_the_user_list(db: &Db) {
    let s = db.store.as_ref();
    let a = user(s, "a@example.com").await;
    let b = user(s, "b@example.com").await;
    user(s, "c@example.com").await;
    for (h, u) in [("s1", a), ("s2", a), ("s3", b)] {
        s.create_session(&NewSession {
            hash: h.as_bytes().to_vec(),
            user_id: u,
            created_at: 1000,
            expires_at: 9000,
            amr: "pwd".into(),
        })
        .await
        .unwrap();
    }
    assert_eq!(s.delete_user_sessions(a).await.unwrap(), 2);
    assert_eq!(s.delete_user_sessions(a).await.unwrap(), 0);
    assert!(s.session(b"s1").await.unwrap().is_none());
    assert!(s.session(b"s2").await.unwrap().is_none());
    assert!(s.session(b"s3").await.unwrap().is_some());
    let (count, page) = s.list_users(2, 0).await.unwrap();
    assert_eq!(count, 3);
    let emails: Vec<String> = page.into_iter().map(|u| u.email).collect();
    assert_eq!(emails, vec!["a@example.com", "b@example.com"]);
    let (count, page) = s.list_users(2, 2).await.unwrap();
    assert_eq!(count, 3);
    assert_eq!(page.len(), 1);
    assert_eq!(page[0].email, "c@example.com");
}
