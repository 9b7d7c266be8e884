//! Conformance of the sharing and dealer storage methods (`ShareStore`, `DealerStore`, and the
//! parts of `CameraStore` / `TokenStore` they touch: listings that include shared cameras, the
//! `actor_id` of a token-exchange family): every check runs on SQLite (a temp file) and on
//! PostgreSQL (a fresh throwaway database at `CAMGATE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; fails, never skips, when unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use camgate_core::error::StoreError;
use camgate_core::model::*;
use camgate_core::scope::ScopeSet;
use camgate_core::store::Store;

mod support;
use support::Db;

on_both_backends!(
    shares_apply_at_once_or_wait_for_the_account,
    one_share_per_address_and_only_the_owners_camera,
    shares_change_and_end_by_camera_and_id,
    visible_camera_tells_own_shared_and_hidden_apart,
    listings_include_shared_cameras_in_id_order,
    shares_go_with_their_camera_or_their_guest,
    dealers_are_marked_and_unmarked,
    a_customer_is_created_with_its_link_in_one_step,
    a_link_is_lowered_then_revoked_once,
    an_exchange_family_keeps_its_actor,
    the_listing_version_moves_with_every_change_a_listing_shows,
);

const T0: i64 = 1_700_000_000;

fn new_user(email: &str, first: &str, last: &str) -> NewUser {
    NewUser {
        email: email.into(),
        password_hash: "x".into(),
        first_name: first.into(),
        last_name: last.into(),
        phone: String::new(),
        is_admin: false,
        created_at: T0,
        email_verified: false,
    }
}

async fn user(s: &dyn Store, email: &str) -> User {
    s.create_user(&new_user(email, "", "")).await.unwrap()
}

async fn camera(s: &dyn Store, owner: UserId, name: &str) -> CameraId {
    s.create_camera(owner, &CameraFields::named(name), T0)
        .await
        .unwrap()
        .id
}

async fn share(
    s: &dyn Store,
    owner: UserId,
    cam: CameraId,
    email: &str,
    p: SharePermission,
) -> Share {
    s.create_share(owner, cam, email, p, T0)
        .await
        .unwrap()
        .expect("the owner's camera")
}

async fn shares_apply_at_once_or_wait_for_the_account(db: &Db) {
    let s = db.store.as_ref();
    let owner = s
        .create_user(&new_user("owner@example.com", "Olga", "Owner"))
        .await
        .unwrap();
    let guest = user(s, "guest@example.com").await;
    let cam = camera(s, owner.id, "Porch").await;

    let now = share(s, owner.id, cam, "guest@example.com", SharePermission::View).await;
    assert_eq!(now.camera_id, cam);
    assert_eq!(now.email, "guest@example.com");
    assert_eq!(now.user_id, Some(guest.id), "an existing account at once");
    assert_eq!(now.permission, SharePermission::View);
    assert_eq!((now.created_at, now.updated_at), (T0, T0));

    let later = share(
        s,
        owner.id,
        cam,
        "later@example.com",
        SharePermission::Playback,
    )
    .await;
    assert_eq!(later.user_id, None, "no account yet");
    assert!(later.id > now.id);
    assert_eq!(
        s.shares(cam).await.unwrap(),
        vec![now.clone(), later.clone()]
    );

    // The account is created (its address in another case): the share is its own.
    let l = user(s, "Later@Example.com").await;
    let listed = s.shares(cam).await.unwrap();
    assert_eq!(listed[1].id, later.id);
    assert_eq!(listed[1].user_id, Some(l.id));
    assert_eq!(listed[1].permission, SharePermission::Playback);
    let with = s.shared_with(l.id).await.unwrap();
    assert_eq!(
        with,
        vec![(
            cam,
            SharedAs {
                permission: SharePermission::Playback,
                owner_name: "Olga Owner".into(),
            }
        )]
    );
    // Unrelated accounts claim nothing.
    let other = user(s, "other@example.com").await;
    assert!(s.shared_with(other.id).await.unwrap().is_empty());
    assert_eq!(s.shares(cam).await.unwrap().len(), 2);
}

async fn one_share_per_address_and_only_the_owners_camera(db: &Db) {
    let s = db.store.as_ref();
    let owner = user(s, "owner@example.com").await;
    let other = user(s, "other@example.com").await;
    let cam = camera(s, owner.id, "Porch").await;
    let first = share(s, owner.id, cam, "guest@example.com", SharePermission::View).await;

    let again = s
        .create_share(
            owner.id,
            cam,
            "guest@example.com",
            SharePermission::Manage,
            T0 + 1,
        )
        .await;
    assert!(
        matches!(again, Err(StoreError::Conflict(_))),
        "a second share to one address: {again:?}"
    );
    // Not the caller's camera, or no such camera: nothing.
    assert_eq!(
        s.create_share(other.id, cam, "x@example.com", SharePermission::View, T0)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.create_share(
            owner.id,
            cam + 1000,
            "x@example.com",
            SharePermission::View,
            T0
        )
        .await
        .unwrap(),
        None
    );
    assert_eq!(s.shares(cam).await.unwrap(), vec![first]);
    // The same address on another camera is fine.
    let cam2 = camera(s, owner.id, "Yard").await;
    share(
        s,
        owner.id,
        cam2,
        "guest@example.com",
        SharePermission::Manage,
    )
    .await;
    assert_eq!(s.shares(cam2).await.unwrap().len(), 1);
}

async fn shares_change_and_end_by_camera_and_id(db: &Db) {
    let s = db.store.as_ref();
    let owner = user(s, "owner@example.com").await;
    let guest = user(s, "guest@example.com").await;
    let cam = camera(s, owner.id, "Porch").await;
    let other_cam = camera(s, owner.id, "Yard").await;
    let sh = share(s, owner.id, cam, "guest@example.com", SharePermission::View).await;

    let up = s
        .update_share(cam, sh.id, SharePermission::Manage, T0 + 50)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(up.permission, SharePermission::Manage);
    assert_eq!(up.created_at, T0);
    assert_eq!(up.updated_at, T0 + 50);
    assert_eq!(up.user_id, Some(guest.id));
    assert_eq!(s.shares(cam).await.unwrap(), vec![up.clone()]);
    assert_eq!(
        s.shared_with(guest.id).await.unwrap()[0].1.permission,
        SharePermission::Manage
    );
    // Under another camera's id, or an unknown id: nothing changes.
    assert_eq!(
        s.update_share(other_cam, sh.id, SharePermission::View, T0 + 60)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        s.update_share(cam, sh.id + 99, SharePermission::View, T0 + 60)
            .await
            .unwrap(),
        None
    );
    assert!(!s.delete_share(other_cam, sh.id).await.unwrap());
    assert_eq!(s.shares(cam).await.unwrap(), vec![up]);

    assert!(s.delete_share(cam, sh.id).await.unwrap());
    assert!(!s.delete_share(cam, sh.id).await.unwrap(), "once");
    assert!(s.shares(cam).await.unwrap().is_empty());
    assert!(s.shared_with(guest.id).await.unwrap().is_empty());
    assert_eq!(s.visible_camera(guest.id, cam).await.unwrap(), None);
}

async fn visible_camera_tells_own_shared_and_hidden_apart(db: &Db) {
    let s = db.store.as_ref();
    let owner = s
        .create_user(&new_user("owner@example.com", "Olga", ""))
        .await
        .unwrap();
    let guest = user(s, "guest@example.com").await;
    let stranger = user(s, "stranger@example.com").await;
    let cam = camera(s, owner.id, "Porch").await;
    share(
        s,
        owner.id,
        cam,
        "guest@example.com",
        SharePermission::Playback,
    )
    .await;

    let own = s.visible_camera(owner.id, cam).await.unwrap().unwrap();
    assert_eq!(own.id, cam);
    assert_eq!(own.owner_id, owner.id);
    assert_eq!(own.shared, None);
    assert_eq!(own.fields.name, "Porch");

    let seen = s.visible_camera(guest.id, cam).await.unwrap().unwrap();
    assert_eq!(seen.id, cam);
    assert_eq!(seen.owner_id, owner.id);
    assert_eq!(seen.fields, own.fields);
    assert_eq!(
        seen.shared,
        Some(SharedAs {
            permission: SharePermission::Playback,
            owner_name: "Olga".into(),
        })
    );
    assert_eq!(s.visible_camera(stranger.id, cam).await.unwrap(), None);
    assert_eq!(s.visible_camera(owner.id, cam + 1000).await.unwrap(), None);
    // `camera` stays the owner's only.
    assert_eq!(s.camera(guest.id, cam).await.unwrap(), None);
}

async fn listings_include_shared_cameras_in_id_order(db: &Db) {
    let s = db.store.as_ref();
    let owner = user(s, "owner@example.com").await;
    let guest = user(s, "guest@example.com").await;
    // Ids: shared a, own b, shared c, unshared d, own e.
    let a = camera(s, owner.id, "a").await;
    let b = camera(s, guest.id, "b").await;
    let c = camera(s, owner.id, "c").await;
    let d = camera(s, owner.id, "d").await;
    let e = camera(s, guest.id, "e").await;
    share(s, owner.id, a, "guest@example.com", SharePermission::View).await;
    share(s, owner.id, c, "guest@example.com", SharePermission::Manage).await;

    let (n, page) = s.list_cameras(guest.id, 10, 0, None).await.unwrap();
    assert_eq!(n, 4);
    let ids: Vec<CameraId> = page.iter().map(|x| x.id).collect();
    assert_eq!(ids, [a, b, c, e]);
    let marks: Vec<Option<SharePermission>> = page
        .iter()
        .map(|x| x.shared.as_ref().map(|s| s.permission))
        .collect();
    assert_eq!(
        marks,
        [
            Some(SharePermission::View),
            None,
            Some(SharePermission::Manage),
            None
        ]
    );
    assert_eq!(
        page[0].shared.as_ref().unwrap().owner_name,
        "owner@example.com",
        "no names: the address"
    );
    // By offset and by keyset.
    let (n, page) = s.list_cameras(guest.id, 2, 1, None).await.unwrap();
    assert_eq!(n, 4);
    assert_eq!(page.iter().map(|x| x.id).collect::<Vec<_>>(), [b, c]);
    let (_, page) = s.list_cameras(guest.id, 2, 0, Some(b)).await.unwrap();
    assert_eq!(page.iter().map(|x| x.id).collect::<Vec<_>>(), [c, e]);
    let (_, page) = s.list_cameras(guest.id, 2, 0, Some(e)).await.unwrap();
    assert!(page.is_empty());

    // The owner's listing: their own, unmarked.
    let (n, page) = s.list_cameras(owner.id, 10, 0, None).await.unwrap();
    assert_eq!(n, 3);
    assert_eq!(page.iter().map(|x| x.id).collect::<Vec<_>>(), [a, c, d]);
    assert!(page.iter().all(|x| x.shared.is_none()));

    // The shared ones alone, and what the markers read.
    let shared = s.shared_cameras(guest.id, 10).await.unwrap();
    assert_eq!(shared.iter().map(|x| x.id).collect::<Vec<_>>(), [a, c]);
    assert!(shared.iter().all(|x| x.shared.is_some()));
    assert_eq!(s.shared_cameras(guest.id, 1).await.unwrap().len(), 1);
    let with: Vec<CameraId> = s
        .shared_with(guest.id)
        .await
        .unwrap()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(with, [a, c]);

    // A pending share counts for no one.
    share(s, owner.id, d, "nobody@example.com", SharePermission::View).await;
    assert_eq!(s.list_cameras(guest.id, 10, 0, None).await.unwrap().0, 4);
}

async fn shares_go_with_their_camera_or_their_guest(db: &Db) {
    let s = db.store.as_ref();
    let owner = user(s, "owner@example.com").await;
    let guest = user(s, "guest@example.com").await;
    let g2 = user(s, "g2@example.com").await;
    let cam = camera(s, owner.id, "Porch").await;
    let keep = camera(s, owner.id, "Yard").await;
    share(s, owner.id, cam, "guest@example.com", SharePermission::View).await;
    share(
        s,
        owner.id,
        keep,
        "guest@example.com",
        SharePermission::View,
    )
    .await;
    share(s, owner.id, keep, "g2@example.com", SharePermission::View).await;

    assert!(s.delete_camera(owner.id, cam).await.unwrap());
    assert!(s.shares(cam).await.unwrap().is_empty());
    assert_eq!(s.shared_with(guest.id).await.unwrap().len(), 1);
    assert_eq!(s.list_cameras(guest.id, 10, 0, None).await.unwrap().0, 1);

    assert!(s.delete_user(guest.id).await.unwrap());
    let left = s.shares(keep).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].user_id, Some(g2.id));
}

async fn dealers_are_marked_and_unmarked(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "dealer@example.com").await;
    assert!(!u.is_dealer);
    assert!(s.set_dealer(u.id, true).await.unwrap());
    assert!(s.user_by_id(u.id).await.unwrap().unwrap().is_dealer);
    assert!(
        s.user_by_email("dealer@example.com")
            .await
            .unwrap()
            .unwrap()
            .is_dealer
    );
    assert!(s.set_dealer(u.id, false).await.unwrap());
    assert!(!s.user_by_id(u.id).await.unwrap().unwrap().is_dealer);
    assert!(!s.set_dealer(u.id + 1000, true).await.unwrap());
}

async fn a_customer_is_created_with_its_link_in_one_step(db: &Db) {
    let s = db.store.as_ref();
    let dealer = user(s, "dealer@example.com").await;
    s.set_dealer(dealer.id, true).await.unwrap();
    let other = user(s, "other@example.com").await;
    s.set_dealer(other.id, true).await.unwrap();
    // A share waiting for the customer's address.
    let owner = user(s, "owner@example.com").await;
    let cam = camera(s, owner.id, "Shop").await;
    share(s, owner.id, cam, "c1@example.com", SharePermission::View).await;

    let c1 = s
        .create_customer(
            dealer.id,
            &new_user("c1@example.com", "Cora", "C"),
            DealerLevel::Full,
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(c1.email, "c1@example.com");
    assert!(!c1.is_dealer);
    assert_eq!(s.shared_with(c1.id).await.unwrap()[0].0, cam, "claimed");
    let c2 = s
        .create_customer(
            dealer.id,
            &new_user("c2@example.com", "", ""),
            DealerLevel::Limited,
            T0 + 2,
        )
        .await
        .unwrap();

    let (link, d) = s.dealer_of(c1.id).await.unwrap().unwrap();
    assert_eq!(d.id, dealer.id);
    assert!(d.is_dealer);
    assert_eq!(
        link,
        DealerLink {
            dealer_id: dealer.id,
            customer_id: c1.id,
            level: DealerLevel::Full,
            created_at: T0 + 1,
            updated_at: T0 + 1,
            revoked_at: None,
        }
    );
    assert_eq!(
        s.dealer_of(c2.id).await.unwrap().unwrap().0.level,
        DealerLevel::Limited
    );
    assert_eq!(s.dealer_of(dealer.id).await.unwrap(), None);
    assert_eq!(s.dealer_of(owner.id).await.unwrap(), None);

    let list = s.customers(dealer.id).await.unwrap();
    let ids: Vec<UserId> = list.iter().map(|(u, _)| u.id).collect();
    assert_eq!(ids, [c1.id, c2.id], "oldest first");
    assert_eq!(list[0].0.first_name, "Cora");
    assert_eq!(list[1].1.level, DealerLevel::Limited);
    assert!(s.customers(other.id).await.unwrap().is_empty());

    // A taken address: a conflict, and no account or link half-made.
    for email in ["c1@example.com", "owner@example.com"] {
        let r = s
            .create_customer(
                other.id,
                &new_user(email, "", ""),
                DealerLevel::Full,
                T0 + 3,
            )
            .await;
        assert!(matches!(r, Err(StoreError::Conflict(_))), "{email}: {r:?}");
    }
    assert!(s.customers(other.id).await.unwrap().is_empty());
    assert_eq!(s.dealer_of(owner.id).await.unwrap(), None);
    assert_eq!(s.dealer_of(c1.id).await.unwrap().unwrap().1.id, dealer.id);
}

async fn a_link_is_lowered_then_revoked_once(db: &Db) {
    let s = db.store.as_ref();
    let dealer = user(s, "dealer@example.com").await;
    s.set_dealer(dealer.id, true).await.unwrap();
    let c = s
        .create_customer(
            dealer.id,
            &new_user("c@example.com", "", ""),
            DealerLevel::Full,
            T0,
        )
        .await
        .unwrap();
    let plain = user(s, "plain@example.com").await;

    assert!(s
        .set_dealer_access(c.id, Some(DealerLevel::Limited), T0 + 10)
        .await
        .unwrap());
    let (l, _) = s.dealer_of(c.id).await.unwrap().unwrap();
    assert_eq!(l.level, DealerLevel::Limited);
    assert_eq!(
        (l.created_at, l.updated_at, l.revoked_at),
        (T0, T0 + 10, None)
    );

    assert!(s.set_dealer_access(c.id, None, T0 + 20).await.unwrap());
    let (l, _) = s.dealer_of(c.id).await.unwrap().unwrap();
    assert_eq!(l.revoked_at, Some(T0 + 20));
    assert_eq!(l.updated_at, T0 + 20);
    assert_eq!(l.level, DealerLevel::Limited, "the level is kept");
    assert_eq!(l.status(), "revoked");
    assert_eq!(s.customers(dealer.id).await.unwrap()[0].1, l);

    // A revoked link changes no more; a non-customer has none to change.
    assert!(!s.set_dealer_access(c.id, None, T0 + 30).await.unwrap());
    assert!(!s
        .set_dealer_access(c.id, Some(DealerLevel::Full), T0 + 30)
        .await
        .unwrap());
    assert_eq!(
        s.dealer_of(c.id).await.unwrap().unwrap().0.revoked_at,
        Some(T0 + 20)
    );
    assert!(!s
        .set_dealer_access(plain.id, Some(DealerLevel::Limited), T0)
        .await
        .unwrap());
    assert!(!s.set_dealer_access(plain.id, None, T0).await.unwrap());
}

async fn an_exchange_family_keeps_its_actor(db: &Db) {
    let s = db.store.as_ref();
    let dealer = user(s, "dealer@example.com").await;
    s.set_dealer(dealer.id, true).await.unwrap();
    let c = s
        .create_customer(
            dealer.id,
            &new_user("c@example.com", "", ""),
            DealerLevel::Full,
            T0,
        )
        .await
        .unwrap();
    let client = s
        .create_client(&NewClient {
            client_id: "dealer-tool".into(),
            secret: SecretHash::Sha256(vec![0xab; 32]),
            name: "Dealer tool".into(),
            owner_id: None,
            kind: ClientKind::Confidential,
            redirect_uris: vec![],
            grants: vec![GrantType::TokenExchange],
            scopes: ScopeSet::READ_WRITE,
            profile: "angelcam".into(),
            created_at: T0,
            oidc: Default::default(),
            allow_password_without_mfa: false,
        })
        .await
        .unwrap();
    let family = |actor: Option<UserId>| NewFamily {
        user_id: Some(c.id),
        client_pk: client.pk,
        grant_type: GrantType::TokenExchange,
        created_at: T0,
        authn: None,
        actor_id: actor,
    };
    let token = |tag: &str| NewAccessToken {
        hash: tag.as_bytes().to_vec(),
        scope: ScopeSet::READ,
        created_at: T0,
        expires_at: T0 + 600,
    };
    s.create_family(&family(Some(dealer.id)), &token("acting"), None)
        .await
        .unwrap();
    s.create_family(&family(None), &token("own"), None)
        .await
        .unwrap();
    let a = s.access_token(b"acting").await.unwrap().unwrap();
    assert_eq!(a.actor_id, Some(dealer.id));
    assert_eq!(a.user.as_ref().unwrap().id, c.id);
    assert_eq!(a.scope, ScopeSet::READ);
    assert_eq!(a.expires_at, T0 + 600);
    assert_eq!(
        s.access_token(b"own").await.unwrap().unwrap().actor_id,
        None
    );

    // The dealer's account deleted: its link and its acting tokens go with it.
    assert!(s.delete_user(dealer.id).await.unwrap());
    assert_eq!(s.dealer_of(c.id).await.unwrap(), None);
    assert!(s.access_token(b"acting").await.unwrap().is_none());
    assert!(s.access_token(b"own").await.unwrap().is_some());
}

/// `camera_listing_version` (what lets a node answer a listing from memory) moves for every
/// user whose listing a change affects, and for nobody else.
async fn the_listing_version_moves_with_every_change_a_listing_shows(db: &Db) {
    let s = db.store.as_ref();
    let owner = user(s, "owner@example.com").await;
    let guest = user(s, "guest@example.com").await;
    let bystander = user(s, "bystander@example.com").await;
    let other_cam = camera(s, bystander.id, "Elsewhere").await;
    let v = |u: UserId| async move { s.camera_listing_version(u).await.unwrap() };
    let quiet = v(bystander.id).await;
    assert_eq!(v(owner.id).await, 0, "no cameras, no shares: 0");

    // The owner's own changes.
    let mut last = v(owner.id).await;
    let cam = camera(s, owner.id, "Porch").await;
    let moved = |before: i64, now: i64, what: &str| {
        assert_ne!(before, now, "{what} did not move the version");
        now
    };
    last = moved(last, v(owner.id).await, "a new camera");
    let mut c = s.camera(owner.id, cam).await.unwrap().unwrap();
    c.fields.name = "Front porch".into();
    assert!(s.update_camera(&c).await.unwrap());
    last = moved(last, v(owner.id).await, "a renamed camera");
    assert!(s
        .camera_heartbeat(owner.id, cam, CameraStatus::Offline, T0 + 5)
        .await
        .unwrap());
    last = moved(last, v(owner.id).await, "a heartbeat");

    // The guest's listing follows the share and the shared camera.
    let mut g = v(guest.id).await;
    let sh = share(s, owner.id, cam, "guest@example.com", SharePermission::View).await;
    g = moved(g, v(guest.id).await, "a new share");
    s.update_share(cam, sh.id, SharePermission::Manage, T0 + 6)
        .await
        .unwrap()
        .unwrap();
    g = moved(g, v(guest.id).await, "a changed permission");
    let mut c = s.camera(owner.id, cam).await.unwrap().unwrap();
    c.fields.name = "Porch again".into();
    assert!(s.update_camera(&c).await.unwrap());
    g = moved(g, v(guest.id).await, "the shared camera renamed");
    last = moved(last, v(owner.id).await, "a renamed camera");
    assert!(s.delete_share(cam, sh.id).await.unwrap());
    g = moved(g, v(guest.id).await, "an ended share");

    // A share waiting for its account applies with the account.
    share(s, owner.id, cam, "later@example.com", SharePermission::View).await;
    let later = user(s, "later@example.com").await;
    assert_ne!(v(later.id).await, 0, "a share claimed at sign-up");

    // Deleting the camera moves its owner's and its guests' listings.
    share(s, owner.id, cam, "guest@example.com", SharePermission::View).await;
    g = moved(g, v(guest.id).await, "a new share");
    assert!(s.delete_camera(owner.id, cam).await.unwrap());
    moved(g, v(guest.id).await, "the shared camera deleted");
    moved(last, v(owner.id).await, "a deleted camera");

    assert_eq!(v(bystander.id).await, quiet, "someone else's changes");

    // The search version moves with any camera or share, whoever's.
    let sv = || async { s.camera_search_version().await.unwrap() };
    let mut last = sv().await;
    let cam = camera(s, owner.id, "Back").await;
    last = moved(last, sv().await, "a new camera (search)");
    let sh = share(s, owner.id, cam, "guest@example.com", SharePermission::View).await;
    last = moved(last, sv().await, "a new share (search)");
    assert!(s.delete_share(cam, sh.id).await.unwrap());
    last = moved(last, sv().await, "an ended share (search)");
    let mut c = s.camera(owner.id, cam).await.unwrap().unwrap();
    c.fields.name = "Back door".into();
    assert!(s.update_camera(&c).await.unwrap());
    last = moved(last, sv().await, "a renamed camera (search)");
    assert!(s.delete_camera(owner.id, cam).await.unwrap());
    moved(last, sv().await, "a deleted camera (search)");
    assert!(s.camera(bystander.id, other_cam).await.unwrap().is_some());
}
