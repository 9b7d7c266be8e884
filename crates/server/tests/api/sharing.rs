//! Black-box tests of camera sharing: an owner shares a camera with an e-mail address at one of
//! three permissions (`view` < `playback` < `manage`) through `/v1/cameras/{id}/shares/`; what
//! each permission allows on every camera route; how the three listing dialects mark a camera
//! shared with the caller (`shared`, `permission`, `owner_name` / `ownerName`) and leave the
//! owner's own unmarked; that a stranger learns nothing (404); validation; shares waiting for an
//! account; changes and ends taking effect at the next request, on another node too; scopes
//! still binding a guest; and counts that include shared cameras. Runs on SQLite, or on
//! PostgreSQL with `CAMGATE_TEST_DATABASE=postgres`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::*;

use camgate_core::model::{CameraFields, ClientKind, GrantType, User};
use camgate_core::scope::ScopeSet;
use camgate_core::users::UserInput;
use reqwest::header::HeaderMap;
use reqwest::Method;
use serde_json::{json, Value};

type Got = (u16, HeaderMap, Value);

/// Sends `method path` with a bearer token and an optional JSON body; the body back as JSON
/// (`Null` when empty).
async fn call(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Got {
    let mut r = app.http.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("status {status}: body is not JSON ({e}): {text:?}"))
    };
    (status, headers, body)
}

async fn get(app: &TestApp, path: &str, token: &str) -> Got {
    call(app, Method::GET, path, token, None).await
}

/// Asserts an Angelcam error answer `{status, title, detail}`.
#[track_caller]
fn assert_angel_error(got: &Got, status: u16, title: &str) {
    let (s, _, body) = got;
    assert_eq!(*s, status, "body: {body}");
    assert_eq!(body["status"], status, "body: {body}");
    assert_eq!(body["title"], title, "body: {body}");
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "detail missing: {body}"
    );
}

/// A 403 because of the share's permission (not a missing scope: no RFC 6750 challenge).
#[track_caller]
fn assert_guest_refused(got: &Got, what: &str) {
    assert_eq!(got.0, 403, "{what}: {}", got.2);
    assert_angel_error(got, 403, "permission_denied");
    assert!(
        !got.1.contains_key("www-authenticate"),
        "{what}: a permission refusal is not a scope challenge"
    );
}

/// A 404 `not_found` answer.
#[track_caller]
fn assert_not_found(got: &Got, what: &str) {
    assert_eq!(got.0, 404, "{what}: {}", got.2);
    assert_angel_error(got, 404, "not_found");
}

/// A user with names (their display name is what guests see as `owner_name`).
async fn named_user(app: &TestApp, email: &str, first: &str, last: &str) -> User {
    app.core
        .create_user(UserInput {
            email: email.into(),
            password: PASSWORD.into(),
            first_name: first.into(),
            last_name: last.into(),
            phone: String::new(),
            is_admin: false,
            email_verified: false,
        })
        .await
        .unwrap()
}

/// A fresh read-write access token of an existing user (public angelcam client).
async fn token_of(app: &TestApp, email: &str) -> String {
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, email, PASSWORD).await;
    t["access_token"].as_str().unwrap().to_string()
}

async fn camera(app: &TestApp, owner: &User, name: &str) -> i64 {
    app.core
        .create_camera(owner.id, CameraFields::named(name))
        .await
        .unwrap()
        .id
}

/// The owner shares camera `cam`; panics unless 201. Returns the share.
async fn share(app: &TestApp, owner_token: &str, cam: i64, email: &str, permission: &str) -> Value {
    let got = call(
        app,
        Method::POST,
        &format!("/v1/cameras/{cam}/shares/"),
        owner_token,
        Some(json!({"email": email, "permission": permission})),
    )
    .await;
    assert_eq!(got.0, 201, "share failed: {}", got.2);
    got.2
}

/// The camera's shares as its owner lists them.
async fn shares_of(app: &TestApp, owner_token: &str, cam: i64) -> Vec<Value> {
    let got = get(app, &format!("/v1/cameras/{cam}/shares/"), owner_token).await;
    assert_eq!(got.0, 200, "{}", got.2);
    got.2.as_array().unwrap().clone()
}

fn ids_of(list: &[Value], key: &str) -> Vec<i64> {
    list.iter().map(|c| c[key].as_i64().unwrap()).collect()
}

fn find<'a>(list: &'a [Value], key: &str, id: i64) -> &'a Value {
    list.iter()
        .find(|c| c[key] == id)
        .unwrap_or_else(|| panic!("camera {id} not in {list:?}"))
}

/// No sharing marks: the owner's view keeps the dialect's shape.
#[track_caller]
fn assert_unmarked(c: &Value) {
    for k in ["shared", "permission", "owner_name", "ownerName"] {
        assert!(c.get(k).is_none(), "`{k}` on an unshared camera: {c}");
    }
}

#[track_caller]
fn assert_marked(c: &Value, permission: &str, owner_key: &str, owner_name: &str) {
    assert_eq!(c["shared"], true, "{c}");
    assert_eq!(c["permission"], permission, "{c}");
    assert_eq!(c[owner_key], owner_name, "{c}");
}

// ---------------------------------------------------------------- permissions

#[tokio::test]
async fn each_permission_allows_exactly_what_it_names() {
    let app = spawn_app().await;
    let owner = named_user(&app, "owner@example.com", "Olga", "Owner").await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let cam = camera(&app, &owner, "Porch").await;
    let path = format!("/v1/cameras/{cam}/");
    let recordings = format!("/v1/cameras/{cam}/recordings/?start=0&end=3600");
    let heartbeat = format!("/v1/cameras/{cam}/heartbeat/");
    let shares = format!("/v1/cameras/{cam}/shares/");

    for perm in ["view", "playback", "manage"] {
        let email = format!("guest-{perm}@example.com");
        app.create_user(&email, PASSWORD).await;
        let t = token_of(&app, &email).await;
        let s = share(&app, &owner_t, cam, &email, perm).await;
        assert_eq!(s["permission"], perm);
        assert_eq!(s["pending"], false, "{s}");
        assert_eq!(s["camera_id"], cam);
        let share_path = format!("{shares}{}/", s["id"]);

        // View: every permission.
        let got = get(&app, &path, &t).await;
        assert_eq!(got.0, 200, "{perm}: {}", got.2);
        assert_eq!(got.2["id"], cam);
        assert_eq!(got.2["name"], "Porch");
        assert_marked(&got.2, perm, "owner_name", "Olga Owner");

        // Playback: recordings.
        let got = get(&app, &recordings, &t).await;
        if perm == "view" {
            assert_guest_refused(&got, "view guest reads recordings");
        } else {
            assert_eq!(got.0, 200, "{perm} recordings: {}", got.2);
        }

        // Manage: edit the camera.
        let desc = format!("set by {perm}");
        let got = call(
            &app,
            Method::PUT,
            &path,
            &t,
            Some(json!({"description": desc})),
        )
        .await;
        let stored = app.core.camera(owner.id, cam).await.unwrap();
        if perm == "manage" {
            assert_eq!(got.0, 200, "manage edits: {}", got.2);
            assert_eq!(got.2["description"], desc.as_str());
            assert_marked(&got.2, "manage", "owner_name", "Olga Owner");
            assert_eq!(stored.fields.description.as_deref(), Some(desc.as_str()));
        } else {
            assert_guest_refused(&got, "edit below manage");
            assert_ne!(stored.fields.description.as_deref(), Some(desc.as_str()));
        }

        // The shares: listed to a manage guest only.
        let got = get(&app, &shares, &t).await;
        let one = get(&app, &share_path, &t).await;
        if perm == "manage" {
            assert_eq!(got.0, 200, "{}", got.2);
            assert!(got.2.as_array().unwrap().iter().any(|x| x["id"] == s["id"]));
            assert_eq!(one.0, 200, "{}", one.2);
            assert_eq!(one.2["email"], email.as_str());
        } else {
            assert_guest_refused(&got, "list shares below manage");
            assert_guest_refused(&one, "read a share below manage");
        }

        // Never a guest's: delete, report, share again, change or end a share.
        let before = shares_of(&app, &owner_t, cam).await;
        assert_guest_refused(
            &call(&app, Method::DELETE, &path, &t, None).await,
            "guest deletes",
        );
        assert_guest_refused(
            &call(&app, Method::POST, &heartbeat, &t, Some(json!({}))).await,
            "guest heartbeat",
        );
        assert_guest_refused(
            &call(
                &app,
                Method::POST,
                &shares,
                &t,
                Some(json!({"email": "friend@example.com", "permission": "view"})),
            )
            .await,
            "guest re-shares",
        );
        assert_guest_refused(
            &call(
                &app,
                Method::PUT,
                &share_path,
                &t,
                Some(json!({"permission": "manage"})),
            )
            .await,
            "guest raises own share",
        );
        assert_guest_refused(
            &call(&app, Method::DELETE, &share_path, &t, None).await,
            "guest ends a share",
        );
        assert_eq!(shares_of(&app, &owner_t, cam).await, before);
        assert!(app.core.camera(owner.id, cam).await.is_ok());
        assert_eq!(get(&app, &path, &t).await.2["permission"], perm);
    }

    // The owner may do all of it, and sees the camera unmarked.
    let got = get(&app, &path, &owner_t).await;
    assert_eq!(got.0, 200);
    assert_unmarked(&got.2);
    assert_eq!(get(&app, &recordings, &owner_t).await.0, 200);
    let got = call(&app, Method::POST, &heartbeat, &owner_t, None).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["status"], "online");
    assert_unmarked(&got.2);
    let list = shares_of(&app, &owner_t, cam).await;
    let emails: Vec<&str> = list.iter().map(|s| s["email"].as_str().unwrap()).collect();
    assert_eq!(
        emails,
        [
            "guest-view@example.com",
            "guest-playback@example.com",
            "guest-manage@example.com"
        ]
    );
    let got = call(&app, Method::DELETE, &path, &owner_t, None).await;
    assert_eq!(got.0, 204, "{}", got.2);
    // The camera is gone for its guests too.
    let t = token_of(&app, "guest-manage@example.com").await;
    assert_not_found(&get(&app, &path, &t).await, "deleted camera");
    assert_eq!(get(&app, "/v1/cameras/", &t).await.2["count"], 0);
}

#[tokio::test]
async fn a_stranger_learns_nothing_about_a_shared_camera() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let cam = camera(&app, &owner, "Porch").await;
    let other = camera(&app, &owner, "Garage").await;
    app.create_user("guest@example.com", PASSWORD).await;
    let s = share(&app, &owner_t, cam, "guest@example.com", "manage").await;
    let (_, stranger) = app.user_with_token("stranger@example.com").await;
    let sid = s["id"].as_i64().unwrap();

    let body = || Some(json!({"permission": "view"}));
    for (method, path, b) in [
        (Method::GET, format!("/v1/cameras/{cam}/"), None),
        (
            Method::PUT,
            format!("/v1/cameras/{cam}/"),
            Some(json!({"name": "Mine"})),
        ),
        (Method::DELETE, format!("/v1/cameras/{cam}/"), None),
        (Method::POST, format!("/v1/cameras/{cam}/heartbeat/"), None),
        (
            Method::GET,
            format!("/v1/cameras/{cam}/recordings/?start=0&end=60"),
            None,
        ),
        (Method::GET, format!("/v1/cameras/{cam}/shares/"), None),
        (
            Method::POST,
            format!("/v1/cameras/{cam}/shares/"),
            Some(json!({"email": "stranger@example.com", "permission": "manage"})),
        ),
        (
            Method::GET,
            format!("/v1/cameras/{cam}/shares/{sid}/"),
            None,
        ),
        (
            Method::PUT,
            format!("/v1/cameras/{cam}/shares/{sid}/"),
            body(),
        ),
        (
            Method::DELETE,
            format!("/v1/cameras/{cam}/shares/{sid}/"),
            None,
        ),
        (
            Method::GET,
            "/v1/cameras/nonsense/shares/".to_string(),
            None,
        ),
    ] {
        let what = format!("stranger {method} {path}");
        assert_not_found(&call(&app, method, &path, &stranger, b).await, &what);
    }
    // The stranger's listings do not show it.
    assert_eq!(get(&app, "/v1/cameras/", &stranger).await.2["count"], 0);
    assert_eq!(
        get(&app, "/rest/v2.0/cameras", &stranger).await.2,
        json!([])
    );
    // Nothing changed.
    let list = shares_of(&app, &owner_t, cam).await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["permission"], "manage");
    assert_eq!(
        app.core.camera(owner.id, cam).await.unwrap().fields.name,
        "Porch"
    );

    // A guest of one camera is a stranger to the owner's others, and a share id does not
    // carry over to another camera's path.
    let guest = token_of(&app, "guest@example.com").await;
    assert_not_found(
        &get(&app, &format!("/v1/cameras/{other}/"), &guest).await,
        "guest reads an unshared camera",
    );
    assert_not_found(
        &get(&app, &format!("/v1/cameras/{other}/shares/"), &guest).await,
        "guest lists an unshared camera's shares",
    );
    assert_not_found(
        &get(
            &app,
            &format!("/v1/cameras/{other}/shares/{sid}/"),
            &owner_t,
        )
        .await,
        "a share under another camera",
    );
    assert_not_found(
        &call(
            &app,
            Method::DELETE,
            &format!("/v1/cameras/{other}/shares/{sid}/"),
            &owner_t,
            None,
        )
        .await,
        "end a share under another camera",
    );
    assert_eq!(shares_of(&app, &owner_t, cam).await.len(), 1);
}

// ---------------------------------------------------------------- listings

#[tokio::test]
async fn every_listing_dialect_marks_shared_cameras_and_only_those() {
    let app = spawn_app().await;
    let olga = named_user(&app, "olga@example.com", "Olga", "Owner").await;
    let olga_t = token_of(&app, "olga@example.com").await;
    // No names: guests see the address.
    let nameless = app
        .core
        .create_user(UserInput {
            email: "nameless@example.com".into(),
            password: PASSWORD.into(),
            ..Default::default()
        })
        .await
        .unwrap();
    let nameless_t = token_of(&app, "nameless@example.com").await;
    let guest = app.create_user("guest@example.com", PASSWORD).await;
    let guest_t = token_of(&app, "guest@example.com").await;

    let a = camera(&app, &olga, "Olga's porch").await;
    let own = camera(&app, &guest, "Guest's own").await;
    let b = camera(&app, &nameless, "Nameless yard").await;
    let unshared = camera(&app, &olga, "Olga's private").await;
    // A public camera of someone else: CAM2 lists it, unmarked.
    let stranger = app.create_user("stranger@example.com", PASSWORD).await;
    let mut f = CameraFields::named("Town square");
    f.is_public = true;
    let public = app.core.create_camera(stranger.id, f).await.unwrap().id;

    share(&app, &olga_t, a, "guest@example.com", "view").await;
    share(&app, &nameless_t, b, "Guest@Example.com", "manage").await;

    // Angelcam.
    let got = get(&app, "/v1/cameras/", &guest_t).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["count"], 3);
    let list = got.2["results"].as_array().unwrap().clone();
    assert_eq!(ids_of(&list, "id"), [a, own, b]);
    assert_marked(find(&list, "id", a), "view", "owner_name", "Olga Owner");
    assert_marked(
        find(&list, "id", b),
        "manage",
        "owner_name",
        "nameless@example.com",
    );
    assert_unmarked(find(&list, "id", own));
    assert_eq!(find(&list, "id", a)["name"], "Olga's porch");

    // CameraManager.
    let got = get(&app, "/rest/v2.0/cameras", &guest_t).await;
    assert_eq!(got.0, 200, "{}", got.2);
    let list = got.2.as_array().unwrap().clone();
    assert_eq!(ids_of(&list, "cameraId"), [a, own, b]);
    assert_marked(
        find(&list, "cameraId", a),
        "view",
        "ownerName",
        "Olga Owner",
    );
    assert_marked(
        find(&list, "cameraId", b),
        "manage",
        "ownerName",
        "nameless@example.com",
    );
    assert!(find(&list, "cameraId", a).get("owner_name").is_none());
    assert_unmarked(find(&list, "cameraId", own));

    // CAM2 (both spellings of the route).
    for route in ["/cameras.json", "/cameras/"] {
        let got = get(&app, route, &guest_t).await;
        assert_eq!(got.0, 200, "{route}: {}", got.2);
        let list = got.2.as_array().unwrap().clone();
        assert_eq!(ids_of(&list, "camera_id"), [a, own, b, public], "{route}");
        assert_marked(
            find(&list, "camera_id", a),
            "view",
            "owner_name",
            "Olga Owner",
        );
        assert_marked(
            find(&list, "camera_id", b),
            "manage",
            "owner_name",
            "nameless@example.com",
        );
        assert_unmarked(find(&list, "camera_id", own));
        assert_unmarked(find(&list, "camera_id", public));
    }

    // The owners see their own cameras, unmarked, and not the guest's.
    let got = get(&app, "/v1/cameras/", &olga_t).await;
    assert_eq!(got.2["count"], 2);
    let list = got.2["results"].as_array().unwrap().clone();
    assert_eq!(ids_of(&list, "id"), [a, unshared]);
    list.iter().for_each(assert_unmarked);
    let list = get(&app, "/rest/v2.0/cameras", &olga_t).await.2;
    let list = list.as_array().unwrap().clone();
    assert_eq!(ids_of(&list, "cameraId"), [a, unshared]);
    list.iter().for_each(assert_unmarked);
    let list = get(&app, "/cameras.json", &nameless_t).await.2;
    let list = list.as_array().unwrap().clone();
    assert_eq!(ids_of(&list, "camera_id"), [b, public]);
    list.iter().for_each(assert_unmarked);
}

#[tokio::test]
async fn counts_and_pages_include_shared_cameras() {
    let app = spawn_app().await;
    let owner = named_user(&app, "owner@example.com", "Olga", "Owner").await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let guest = app.create_user("guest@example.com", PASSWORD).await;
    let guest_t = token_of(&app, "guest@example.com").await;
    // Interleaved ids: shared, own, shared, own, shared.
    let mut all = Vec::new();
    let mut shared = Vec::new();
    for i in 0..5 {
        if i % 2 == 0 {
            let c = camera(&app, &owner, &format!("shared {i}")).await;
            share(&app, &owner_t, c, "guest@example.com", "playback").await;
            shared.push(c);
            all.push(c);
        } else {
            all.push(camera(&app, &guest, &format!("own {i}")).await);
        }
    }
    // One the owner keeps to themself.
    camera(&app, &owner, "private").await;

    let got = get(&app, "/v1/cameras/?limit=2", &guest_t).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["count"], 5);
    let mut seen = Vec::new();
    let mut page = got.2;
    let mut pages = 0;
    loop {
        pages += 1;
        assert!(pages <= 5, "too many pages");
        assert_eq!(page["count"], 5, "the count is the same on every page");
        for c in page["results"].as_array().unwrap() {
            let id = c["id"].as_i64().unwrap();
            if shared.contains(&id) {
                assert_marked(c, "playback", "owner_name", "Olga Owner");
            } else {
                assert_unmarked(c);
            }
            seen.push(id);
        }
        let Some(next) = page["next"].as_str() else {
            break;
        };
        let r = app
            .http
            .get(next)
            .bearer_auth(&guest_t)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        page = r.json().await.unwrap();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, all);

    // By offset, in both dialects.
    let got = get(&app, "/v1/cameras/?limit=2&offset=3", &guest_t).await;
    assert_eq!(got.2["count"], 5);
    assert_eq!(
        ids_of(got.2["results"].as_array().unwrap(), "id"),
        &all[3..]
    );
    let got = get(&app, "/rest/v2.0/cameras?limit=3&offset=1", &guest_t).await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(ids_of(got.2.as_array().unwrap(), "cameraId"), &all[1..4]);

    // Ending a share lowers the count at once.
    let sid = shares_of(&app, &owner_t, shared[0]).await[0]["id"].clone();
    let got = call(
        &app,
        Method::DELETE,
        &format!("/v1/cameras/{}/shares/{sid}/", shared[0]),
        &owner_t,
        None,
    )
    .await;
    assert_eq!(got.0, 204);
    let got = get(&app, "/v1/cameras/?limit=2", &guest_t).await;
    assert_eq!(got.2["count"], 4);
    assert_eq!(
        ids_of(got.2["results"].as_array().unwrap(), "id"),
        &all[1..3]
    );
}

// ---------------------------------------------------------------- validation

#[tokio::test]
async fn invalid_shares_are_400_and_change_nothing() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let cam = camera(&app, &owner, "Porch").await;
    let first = share(&app, &owner_t, cam, "friend@example.com", "view").await;
    let path = format!("/v1/cameras/{cam}/shares/");

    let bad = [
        json!({"email": "not-an-email", "permission": "view"}),
        json!({"email": "friend@", "permission": "view"}),
        json!({"email": "@example.com", "permission": "view"}),
        json!({"email": "two words@example.com", "permission": "view"}),
        json!({"email": "x@localhost", "permission": "view"}),
        json!({"email": "", "permission": "view"}),
        json!({"email": "new@example.com", "permission": "admin"}),
        json!({"email": "new@example.com", "permission": "VIEW"}),
        json!({"email": "new@example.com", "permission": ""}),
        json!({"email": "new@example.com"}),
        json!({"permission": "view"}),
        json!({"email": "new@example.com", "permission": "view", "extra": 1}),
        // The owner's own address, in any case.
        json!({"email": "owner@example.com", "permission": "view"}),
        json!({"email": " Owner@EXAMPLE.com ", "permission": "manage"}),
        // A second share to one address (normalised).
        json!({"email": "friend@example.com", "permission": "manage"}),
        json!({"email": "FRIEND@example.com", "permission": "view"}),
    ];
    for b in bad {
        let got = call(&app, Method::POST, &path, &owner_t, Some(b.clone())).await;
        assert_angel_error(&got, 400, "invalid");
        let list = shares_of(&app, &owner_t, cam).await;
        assert_eq!(list, vec![first.clone()], "after {b}");
    }
    // Not JSON at all.
    let r = app
        .http
        .post(app.url(&path))
        .bearer_auth(&owner_t)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // A bad change is refused too, and the share stays as it was.
    let sp = format!("{path}{}/", first["id"]);
    for b in [
        json!({"permission": "owner"}),
        json!({}),
        json!({"permission": "view", "email": "x@example.com"}),
    ] {
        let got = call(&app, Method::PUT, &sp, &owner_t, Some(b.clone())).await;
        assert_angel_error(&got, 400, "invalid");
    }
    assert_eq!(shares_of(&app, &owner_t, cam).await, vec![first.clone()]);
    // No such share.
    let got = call(
        &app,
        Method::PUT,
        &format!("{path}999999/"),
        &owner_t,
        Some(json!({"permission": "view"})),
    )
    .await;
    assert_not_found(&got, "change a missing share");
    assert_not_found(
        &call(
            &app,
            Method::DELETE,
            &format!("{path}nope/"),
            &owner_t,
            None,
        )
        .await,
        "end a share by a bad id",
    );
    // No account was created by any of it, and none claimed the rejected addresses.
    assert!(app
        .core
        .user_by_email("new@example.com")
        .await
        .unwrap()
        .is_none());
}

// ---------------------------------------------------------------- pending

#[tokio::test]
async fn a_share_to_an_address_without_an_account_waits_for_it() {
    let app = spawn_app().await;
    let owner = named_user(&app, "owner@example.com", "Olga", "Owner").await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let cam = camera(&app, &owner, "Porch").await;
    let s = share(&app, &owner_t, cam, " NewBie@Example.COM ", "playback").await;
    assert_eq!(s["pending"], true, "{s}");
    assert_eq!(
        s["email"], "newbie@example.com",
        "the address is normalised"
    );
    assert_eq!(s["permission"], "playback");
    assert!(
        s["created_at"].is_string() && s["updated_at"].is_string(),
        "{s}"
    );
    let listed = shares_of(&app, &owner_t, cam).await;
    assert_eq!(listed, vec![s.clone()]);

    // The account is created later (with the address in another case).
    app.create_user("Newbie@example.com", PASSWORD).await;
    let t = token_of(&app, "newbie@example.com").await;
    let got = get(&app, "/v1/cameras/", &t).await;
    assert_eq!(got.2["count"], 1, "{}", got.2);
    let c = &got.2["results"][0];
    assert_eq!(c["id"], cam);
    assert_marked(c, "playback", "owner_name", "Olga Owner");
    let got = get(&app, &format!("/v1/cameras/{cam}/"), &t).await;
    assert_eq!(got.0, 200);
    assert_eq!(
        get(
            &app,
            &format!("/v1/cameras/{cam}/recordings/?start=0&end=60"),
            &t
        )
        .await
        .0,
        200
    );
    let listed = shares_of(&app, &owner_t, cam).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], s["id"]);
    assert_eq!(listed[0]["pending"], false, "{}", listed[0]);

    // A share to an existing account is not pending.
    app.create_user("there@example.com", PASSWORD).await;
    let s = share(&app, &owner_t, cam, "there@example.com", "view").await;
    assert_eq!(s["pending"], false);
}

// ---------------------------------------------------------------- changes

#[tokio::test]
async fn changing_and_ending_a_share_take_effect_at_the_next_request() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let cam = camera(&app, &owner, "Porch").await;
    app.create_user("guest@example.com", PASSWORD).await;
    let t = token_of(&app, "guest@example.com").await;
    let s = share(&app, &owner_t, cam, "guest@example.com", "view").await;
    let path = format!("/v1/cameras/{cam}/");
    let sp = format!("/v1/cameras/{cam}/shares/{}/", s["id"]);
    let edit = || Some(json!({"name": "Renamed"}));

    assert_guest_refused(&call(&app, Method::PUT, &path, &t, edit()).await, "view");

    app.clock.advance(60);
    let got = call(
        &app,
        Method::PUT,
        &sp,
        &owner_t,
        Some(json!({"permission": "manage"})),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
    assert_eq!(got.2["permission"], "manage");
    assert_eq!(got.2["id"], s["id"]);
    assert_eq!(got.2["email"], "guest@example.com");
    assert_eq!(got.2["created_at"], s["created_at"]);
    assert_ne!(got.2["updated_at"], s["updated_at"], "updated_at moves");
    assert_eq!(get(&app, &sp, &owner_t).await.2, got.2);

    let got = call(&app, Method::PUT, &path, &t, edit()).await;
    assert_eq!(got.0, 200, "manage may edit now: {}", got.2);
    assert_eq!(got.2["name"], "Renamed");
    assert_eq!(get(&app, &path, &t).await.2["permission"], "manage");

    // Lowered again: refused at once.
    let got = call(
        &app,
        Method::PUT,
        &sp,
        &owner_t,
        Some(json!({"permission": "view"})),
    )
    .await;
    assert_eq!(got.0, 200);
    assert_guest_refused(&call(&app, Method::PUT, &path, &t, edit()).await, "lowered");
    assert_eq!(
        get(&app, "/v1/cameras/", &t).await.2["results"][0]["permission"],
        "view"
    );

    // Ended: the guest's next request is 404, the listing is empty.
    let got = call(&app, Method::DELETE, &sp, &owner_t, None).await;
    assert_eq!(got.0, 204, "{}", got.2);
    assert_not_found(&get(&app, &path, &t).await, "ended share");
    let got = get(&app, "/v1/cameras/", &t).await;
    assert_eq!(got.2["count"], 0);
    assert_eq!(get(&app, "/rest/v2.0/cameras", &t).await.2, json!([]));
    assert_eq!(get(&app, "/cameras.json", &t).await.2, json!([]));
    assert!(shares_of(&app, &owner_t, cam).await.is_empty());
    // Ending or changing it again: gone.
    assert_not_found(
        &call(&app, Method::DELETE, &sp, &owner_t, None).await,
        "end twice",
    );
    assert_not_found(
        &call(
            &app,
            Method::PUT,
            &sp,
            &owner_t,
            Some(json!({"permission": "view"})),
        )
        .await,
        "change an ended share",
    );
    // It can be shared again.
    let again = share(&app, &owner_t, cam, "guest@example.com", "view").await;
    assert_ne!(again["id"], s["id"]);
    assert_eq!(get(&app, &path, &t).await.0, 200);
}

#[tokio::test]
async fn a_share_ended_on_one_node_ends_on_the_other_at_once() {
    let a = spawn_app().await;
    let b = a.spawn_node().await;
    let owner = a.create_user("owner@example.com", PASSWORD).await;
    let owner_t = token_of(&a, "owner@example.com").await;
    let cam = camera(&a, &owner, "Porch").await;
    a.create_user("guest@example.com", PASSWORD).await;
    let t = token_of(&a, "guest@example.com").await;
    let path = format!("/v1/cameras/{cam}/");

    // Created on A, seen on B.
    let s = share(&a, &owner_t, cam, "guest@example.com", "view").await;
    let sp = format!("/v1/cameras/{cam}/shares/{}/", s["id"]);
    assert_eq!(get(&b, &path, &t).await.0, 200);
    assert_eq!(get(&b, "/v1/cameras/", &t).await.2["count"], 1);

    // Raised on B, honoured on A.
    let got = call(
        &b,
        Method::PUT,
        &sp,
        &owner_t,
        Some(json!({"permission": "manage"})),
    )
    .await;
    assert_eq!(got.0, 200);
    let got = call(&a, Method::PUT, &path, &t, Some(json!({"name": "From A"}))).await;
    assert_eq!(got.0, 200, "{}", got.2);

    // Ended on A, gone on B at its next request.
    assert_eq!(call(&a, Method::DELETE, &sp, &owner_t, None).await.0, 204);
    assert_not_found(&get(&b, &path, &t).await, "ended on the other node");
    assert_not_found(
        &call(&b, Method::PUT, &path, &t, Some(json!({"name": "From B"}))).await,
        "edit after the end on the other node",
    );
    assert_eq!(get(&b, "/v1/cameras/", &t).await.2["count"], 0);
    assert_eq!(get(&b, "/rest/v2.0/cameras", &t).await.2, json!([]));
    assert_eq!(
        a.core.camera(owner.id, cam).await.unwrap().fields.name,
        "From A"
    );
}

// ---------------------------------------------------------------- scopes

#[tokio::test]
async fn a_read_only_app_cannot_write_through_a_manage_share() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let cam = camera(&app, &owner, "Porch").await;
    app.create_user("guest@example.com", PASSWORD).await;
    share(&app, &owner_t, cam, "guest@example.com", "manage").await;

    // A third-party application registered for `read` only, signed in by the guest.
    let mut input = client_input("Viewer app", ClientKind::Public, "angelcam");
    input.grants = vec![GrantType::Password];
    input.scopes = Some(ScopeSet::READ);
    let viewer = app.register(input).await.client.client_id;
    let t = app
        .password_token(&viewer, "guest@example.com", PASSWORD)
        .await;
    assert_eq!(t["scope"], "read");
    let ro = t["access_token"].as_str().unwrap();
    let path = format!("/v1/cameras/{cam}/");

    let got = get(&app, &path, ro).await;
    assert_eq!(got.0, 200);
    assert_eq!(got.2["permission"], "manage");
    // Listing the shares is a read: allowed.
    assert_eq!(get(&app, &format!("{path}shares/"), ro).await.0, 200);
    // Writes: the scope refuses them, whatever the share allows.
    for (method, p, b) in [
        (Method::PUT, path.clone(), Some(json!({"name": "Hijacked"}))),
        (Method::DELETE, path.clone(), None),
        (
            Method::POST,
            format!("{path}shares/"),
            Some(json!({"email": "x@example.com", "permission": "view"})),
        ),
    ] {
        let got = call(&app, method.clone(), &p, ro, b).await;
        assert_angel_error(&got, 403, "permission_denied");
        assert_eq!(
            got.1["www-authenticate"],
            r#"Bearer realm="api", error="insufficient_scope", scope="write""#,
            "{method} {p}"
        );
    }
    let stored = app.core.camera(owner.id, cam).await.unwrap();
    assert_eq!(stored.fields.name, "Porch");
    assert_eq!(shares_of(&app, &owner_t, cam).await.len(), 1);

    // The same guest with a read-write token may edit.
    let rw = token_of(&app, "guest@example.com").await;
    let got = call(
        &app,
        Method::PUT,
        &path,
        &rw,
        Some(json!({"name": "Edited"})),
    )
    .await;
    assert_eq!(got.0, 200, "{}", got.2);
}

#[tokio::test]
async fn a_camera_is_shared_with_at_most_a_hundred_addresses() {
    let app = spawn_app().await;
    let owner = app.create_user("owner@example.com", PASSWORD).await;
    let owner_t = token_of(&app, "owner@example.com").await;
    let cam = camera(&app, &owner, "Porch").await;
    for i in 0..100 {
        share(&app, &owner_t, cam, &format!("g{i}@example.com"), "view").await;
    }
    let got = call(
        &app,
        Method::POST,
        &format!("/v1/cameras/{cam}/shares/"),
        &owner_t,
        Some(json!({"email": "one-more@example.com", "permission": "view"})),
    )
    .await;
    assert_angel_error(&got, 400, "invalid");
    let list = shares_of(&app, &owner_t, cam).await;
    assert_eq!(list.len(), 100);
    assert!(list.iter().all(|s| s["email"] != "one-more@example.com"));
    // Ending one makes room again.
    let sp = format!("/v1/cameras/{cam}/shares/{}/", list[0]["id"]);
    assert_eq!(call(&app, Method::DELETE, &sp, &owner_t, None).await.0, 204);
    share(&app, &owner_t, cam, "one-more@example.com", "view").await;
}
