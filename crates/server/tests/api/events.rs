//! Events, recordings, snapshots, the event stream and signed media URLs, black-box: who may
//! post and read what (owner, each guest level, a paired device's token, another camera's
//! device token, a stranger), the timeline's window and paging, the stream's resume, the media
//! tokens checked by the client crate's offline verifier against the JWKS, the per-camera post
//! limit and retention.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{json, Value};

use crate::common::*;
use crate::device::{pair, signed_in, tv_client};
use camgate_client::media::{self, MediaError};

const OWNER: &str = "owner@example.com";

async fn token_of(app: &TestApp, email: &str) -> String {
    let client = app.public_client("angelcam").await;
    let t = app.password_token(&client, email, PASSWORD).await;
    t["access_token"].as_str().unwrap().to_string()
}

async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> (u16, Value) {
    let r = app
        .http
        .post(app.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(app: &TestApp, path: &str, token: &str) -> (u16, Value) {
    let r = app.get_bearer(path, token).await;
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn camera(app: &TestApp, token: &str, body: Value) -> i64 {
    let (status, v) = post(app, "/v1/cameras/", token, body).await;
    assert_eq!(status, 201, "{v}");
    v["id"].as_i64().unwrap()
}

async fn share(app: &TestApp, token: &str, cam: i64, email: &str, permission: &str) {
    let (status, v) = post(
        app,
        &format!("/v1/cameras/{cam}/shares/"),
        token,
        json!({"email": email, "permission": permission}),
    )
    .await;
    assert_eq!(status, 201, "{v}");
}

fn ids(v: &Value) -> Vec<i64> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn events_are_reported_by_the_camera_or_its_owner_and_read_by_whoever_may_see_it() {
    let app = spawn_app().await;
    let client = tv_client(&app).await;
    let mut b = signed_in(&app, OWNER).await;
    let device = pair(&app, &mut b, &client, "SN-1").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let other_device = pair(&app, &mut b, &client, "SN-2").await["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let owner = token_of(&app, OWNER).await;
    let (_, list) = get(&app, "/v1/cameras/", &owner).await;
    let cam = list["results"][0]["id"].as_i64().unwrap();
    let cam2 = list["results"][1]["id"].as_i64().unwrap();
    app.create_user("guest@example.com", PASSWORD).await;
    app.create_user("stranger@example.com", PASSWORD).await;
    share(&app, &owner, cam, "guest@example.com", "view").await;
    let guest = token_of(&app, "guest@example.com").await;
    let stranger = token_of(&app, "stranger@example.com").await;
    let path = format!("/v1/cameras/{cam}/events/");

    // The camera's own device token, then its owner.
    let (s, e1) = post(
        &app,
        &path,
        &device,
        json!({"type": "motion", "data": {"zone": "door"}}),
    )
    .await;
    assert_eq!(s, 201, "{e1}");
    assert_eq!(e1["type"], "motion");
    assert_eq!(e1["camera_id"], cam);
    assert_eq!(e1["data"], json!({"zone": "door"}));
    assert!(e1["event_id"].as_str().unwrap().starts_with("evt_"));
    let (s, e2) = post(
        &app,
        &path,
        &owner,
        json!({"type": "tamper", "at": 1_700_000_000}),
    )
    .await;
    assert_eq!(s, 201, "{e2}");
    assert_eq!(e2["at"], "2023-11-14T22:13:20Z");

    // Nobody else may report: a guest (403), another camera's device (403), a stranger (404).
    assert_eq!(
        post(&app, &path, &guest, json!({"type": "motion"})).await.0,
        403
    );
    assert_eq!(
        post(&app, &path, &other_device, json!({"type": "motion"}))
            .await
            .0,
        403
    );
    assert_eq!(
        post(&app, &path, &stranger, json!({"type": "motion"}))
            .await
            .0,
        404
    );

    // Bad input is 400 and stores nothing.
    for body in [
        json!({"type": "explosion"}),
        json!({}),
        json!({"type": "custom", "data": [1, 2]}),
        json!({"type": "custom", "data": {"x": "y".repeat(5000)}}),
        json!({"type": "custom", "at": "yesterday"}),
        json!({"type": "custom", "unknown": 1}),
    ] {
        let (s, v) = post(&app, &path, &owner, body.clone()).await;
        assert_eq!(s, 400, "{body} -> {v}");
    }

    // Owner and guest see both events, newest first; a stranger sees none; a device may not list.
    let (s, mine) = get(&app, "/v1/events/", &owner).await;
    assert_eq!(s, 200);
    let want = vec![e2["id"].as_i64().unwrap(), e1["id"].as_i64().unwrap()];
    assert_eq!(ids(&mine), want);
    assert_eq!(ids(&get(&app, "/v1/events/", &guest).await.1), want);
    assert!(ids(&get(&app, "/v1/events/", &stranger).await.1).is_empty());
    assert_eq!(get(&app, "/v1/events/", &device).await.0, 403);

    // Filters and keyset pages.
    let (_, motion) = get(&app, "/v1/events/?type=motion", &owner).await;
    assert_eq!(ids(&motion), want[1..]);
    let (_, other) = get(&app, &format!("/v1/events/?camera={cam2}"), &owner).await;
    assert!(ids(&other).is_empty());
    let (_, since) = get(&app, "/v1/events/?until=2024-01-01T00:00:00Z", &owner).await;
    assert_eq!(ids(&since), want[..1]);
    let (_, p1) = get(&app, "/v1/events/?limit=1", &owner).await;
    assert_eq!(ids(&p1), want[..1]);
    let next = p1["next"].as_str().unwrap().to_string();
    assert!(next.contains(&format!("before={}", want[0])), "{next}");
    let r = app
        .http
        .get(&next)
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    let p2: Value = r.json().await.unwrap();
    assert_eq!(ids(&p2), want[1..]);
    assert_eq!(get(&app, "/v1/events/?type=bogus", &owner).await.0, 400);

    // Ending the share hides the camera's events from the guest at once.
    let (_, shares) = get(&app, &format!("/v1/cameras/{cam}/shares/"), &owner).await;
    let sid = shares[0]["id"].as_i64().unwrap();
    let r = app
        .http
        .delete(app.url(&format!("/v1/cameras/{cam}/shares/{sid}/")))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert!(ids(&get(&app, "/v1/events/", &guest).await.1).is_empty());

    // A heartbeat is a status event.
    let r = app
        .http
        .post(app.url(&format!("/v1/cameras/{cam}/heartbeat/")))
        .bearer_auth(&device)
        .json(&json!({"status": "offline"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, status) = get(&app, "/v1/events/?type=status", &owner).await;
    assert_eq!(status["results"][0]["data"]["status"], "offline");
    assert_eq!(status["results"][0]["data"]["changed"], true);
}

#[tokio::test]
async fn the_recording_timeline_has_a_24_hour_window_pages_and_playback_permission() {
    let app = spawn_app().await;
    let (_, owner) = app.user_with_token(OWNER).await;
    let cam = camera(&app, &owner, json!({"name": "Yard"})).await;
    let path = format!("/v1/cameras/{cam}/recordings/");
    let t0 = 1_800_000_000i64;
    // Five-minute segments every ten minutes for two hours, and one long overlapping one.
    let mut made = Vec::new();
    for i in 0..12 {
        let start = t0 + i * 600;
        let (s, v) = post(
            &app,
            &path,
            &owner,
            json!({"start": start, "end": start + 300, "url": format!("https://media.example.com/rec/{i}.mp4"), "format": "mp4", "size_bytes": 1000 + i}),
        )
        .await;
        assert_eq!(s, 201, "{v}");
        made.push(v["id"].as_i64().unwrap());
    }
    let (s, long) = post(
        &app,
        &path,
        &owner,
        json!({"start": "2027-01-15T07:00:00Z", "end": t0 + 7200, "url": "https://media.example.com/rec/long.mp4", "format": "mp4"}),
    )
    .await;
    assert_eq!(s, 201, "{long}");
    // Invalid segments: 400, nothing stored.
    for body in [
        json!({"start": t0, "end": t0, "url": "https://m.example.com/x", "format": "mp4"}),
        json!({"start": t0, "end": t0 + 90_000, "url": "https://m.example.com/x", "format": "mp4"}),
        json!({"start": t0, "end": t0 + 1, "url": "ftp://m.example.com/x", "format": "mp4"}),
        json!({"start": t0, "end": t0 + 1, "url": "https://m.example.com/x", "format": ""}),
        json!({"start": t0, "end": t0 + 1, "url": "https://m.example.com/x", "format": "mp4", "size_bytes": -1}),
        json!({"end": t0 + 1, "url": "https://m.example.com/x", "format": "mp4"}),
    ] {
        assert_eq!(
            post(&app, &path, &owner, body.clone()).await.0,
            400,
            "{body}"
        );
    }

    // The window [t0 + 650, t0 + 1850) overlaps segments 1, 2, 3 (segment 1 ends at t0 + 900)
    // and the long one (from 07:00 = t0 - 7200 + …): ordered by start.
    let q = |extra: &str| format!("{path}?start={}&end={}{extra}", t0 + 650, t0 + 1850);
    let (s, page) = get(&app, &q(""), &owner).await;
    assert_eq!(s, 200, "{page}");
    let got = ids(&page);
    assert_eq!(
        got,
        vec![long["id"].as_i64().unwrap(), made[1], made[2], made[3]]
    );
    assert!(page["next"].is_null());
    // Pages of two follow `next` to the same list.
    let (_, p1) = get(&app, &q("&limit=2"), &owner).await;
    assert_eq!(ids(&p1), got[..2]);
    let r = app
        .http
        .get(p1["next"].as_str().unwrap())
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    let p2: Value = r.json().await.unwrap();
    assert_eq!(ids(&p2), got[2..]);
    // At most 24 hours per request; both ends required.
    assert_eq!(
        get(
            &app,
            &format!("{path}?start={t0}&end={}", t0 + 86_401),
            &owner
        )
        .await
        .0,
        400
    );
    assert_eq!(
        get(&app, &format!("{path}?start={t0}"), &owner).await.0,
        400
    );
    assert_eq!(
        get(&app, &format!("{path}?start={t0}&end={t0}"), &owner)
            .await
            .0,
        400
    );

    // The recording URL is signed for the caller and verifies against the JWKS.
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = page["results"][1]["url"].as_str().unwrap();
    let claims = media::verify(url, &jwks, app.clock_now()).unwrap();
    assert_eq!((claims.cam, claims.kind.as_str()), (cam, "recording"));
    assert_eq!(
        unsigned(&page["results"][1])["url"],
        "https://media.example.com/rec/1.mp4"
    );

    // Guests: view may not play back (403), playback may; strangers get 404.
    app.create_user("viewer@example.com", PASSWORD).await;
    app.create_user("player@example.com", PASSWORD).await;
    app.create_user("stranger@example.com", PASSWORD).await;
    share(&app, &owner, cam, "viewer@example.com", "view").await;
    share(&app, &owner, cam, "player@example.com", "playback").await;
    let viewer = token_of(&app, "viewer@example.com").await;
    let player = token_of(&app, "player@example.com").await;
    let stranger = token_of(&app, "stranger@example.com").await;
    assert_eq!(get(&app, &q(""), &viewer).await.0, 403);
    let (s, theirs) = get(&app, &q(""), &player).await;
    assert_eq!(s, 200);
    assert_eq!(ids(&theirs), got);
    assert_eq!(get(&app, &q(""), &stranger).await.0, 404);
    // Guests may not report recordings, even with playback.
    let body =
        json!({"start": t0, "end": t0 + 1, "url": "https://m.example.com/x", "format": "mp4"});
    assert_eq!(post(&app, &path, &player, body).await.0, 403);
}

#[tokio::test]
async fn media_urls_are_signed_per_caller_and_refused_tampered_elsewhere_or_late() {
    let app = spawn_app().await;
    let (user, owner) = app.user_with_token(OWNER).await;
    let body = |name: &str| {
        json!({"name": name, "streams": [{"format": "hls", "url": format!("https://media.example.com/{name}/live.m3u8")}],
               "snapshot": {"url": format!("https://media.example.com/{name}/snap.jpg")}})
    };
    let a = camera(&app, &owner, body("a")).await;
    let b = camera(&app, &owner, body("b")).await;
    let jwks: Value = app
        .http
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, ca) = get(&app, &format!("/v1/cameras/{a}/"), &owner).await;
    let (_, cb) = get(&app, &format!("/v1/cameras/{b}/"), &owner).await;
    let stream_a = ca["streams"][0]["url"].as_str().unwrap().to_string();
    let snap_a = ca["snapshot"]["url"].as_str().unwrap().to_string();
    let stream_b = cb["streams"][0]["url"].as_str().unwrap().to_string();
    let now = app.clock_now();

    let c = media::verify(&stream_a, &jwks, now).unwrap();
    assert_eq!(
        (c.cam, c.kind.as_str(), c.sub.clone()),
        (a, "stream", user.id.to_string())
    );
    assert!(c.exp > now && c.exp <= now + 300, "{c:?}");
    assert_eq!(media::verify(&snap_a, &jwks, now).unwrap().kind, "snapshot");
    // The listing hands out the same signed URLs (no raw URL anywhere).
    let (_, list) = get(&app, "/v1/cameras/", &owner).await;
    assert_eq!(list["results"][0]["streams"][0]["url"], stream_a.as_str());
    assert!(!list.to_string().contains("live.m3u8\""), "{list}");

    // Camera a's token on camera b's URL, a tampered payload, a wrong signature, a late check.
    let (_, token_a) = media::split_token(&stream_a).unwrap();
    let (base_b, _) = media::split_token(&stream_b).unwrap();
    let swapped = format!("{base_b}?token={token_a}");
    assert_eq!(
        media::verify(&swapped, &jwks, now),
        Err(MediaError::OtherUrl)
    );
    let parts: Vec<&str> = token_a.split('.').collect();
    let mut claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, parts[1])
            .unwrap(),
    )
    .unwrap();
    claims["cam"] = json!(b);
    let forged_payload = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD,
        serde_json::to_vec(&claims).unwrap(),
    );
    let forged = stream_a.replace(parts[1], &forged_payload);
    assert_eq!(
        media::verify(&forged, &jwks, now),
        Err(MediaError::Signature)
    );
    let mut sig = parts[2].to_string();
    let flipped = if sig.ends_with('A') { 'B' } else { 'A' };
    sig.pop();
    sig.push(flipped);
    let bad_sig = stream_a.replace(parts[2], &sig);
    assert!(media::verify(&bad_sig, &jwks, now).is_err());
    assert_eq!(
        media::verify(&stream_a, &jwks, c.exp),
        Err(MediaError::Expired)
    );
    assert_eq!(
        media::verify("https://media.example.com/a/live.m3u8", &jwks, now),
        Err(MediaError::NoToken)
    );

    // A media token is not an access token.
    let r = app.get_bearer("/v1/me/", token_a).await;
    assert_eq!(r.status(), 401);

    // The server's own check (`camgate media verify`) agrees.
    assert_eq!(app.core.verify_media_url(&stream_a).await.unwrap().cam, a);
    assert!(app.core.verify_media_url(&swapped).await.is_err());

    // Later, a fresh token: not the cached one once less than half its life is left.
    app.clock.advance(200);
    let (_, again) = get(&app, &format!("/v1/cameras/{a}/"), &owner).await;
    let fresh = again["streams"][0]["url"].as_str().unwrap();
    assert_ne!(fresh, stream_a);
    assert!(media::verify(fresh, &jwks, app.clock_now()).is_ok());

    // A guest gets URLs signed for the guest.
    let guest = app.create_user("guest@example.com", PASSWORD).await;
    share(&app, &owner, a, "guest@example.com", "view").await;
    let gt = token_of(&app, "guest@example.com").await;
    let (_, theirs) = get(&app, &format!("/v1/cameras/{a}/"), &gt).await;
    let url = theirs["streams"][0]["url"].as_str().unwrap();
    assert_eq!(
        media::verify(url, &jwks, app.clock_now()).unwrap().sub,
        guest.id.to_string()
    );
}

#[tokio::test]
async fn snapshots_update_the_camera_and_posts_are_limited_per_camera() {
    let app = spawn_app().await;
    let (_, owner) = app.user_with_token(OWNER).await;
    let cam = camera(&app, &owner, json!({"name": "Gate"})).await;
    let other = camera(&app, &owner, json!({"name": "Shed"})).await;
    let path = format!("/v1/cameras/{cam}/snapshot/");
    let (s, v) = post(
        &app,
        &path,
        &owner,
        json!({"url": "https://media.example.com/gate/1.jpg", "taken_at": "2027-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        unsigned(&v["snapshot"])["url"],
        "https://media.example.com/gate/1.jpg"
    );
    assert_eq!(v["snapshot"]["created_at"], "2027-01-01T00:00:00Z");
    let (_, fetched) = get(&app, &format!("/v1/cameras/{cam}/"), &owner).await;
    assert_eq!(
        unsigned(&fetched["snapshot"])["url"],
        "https://media.example.com/gate/1.jpg"
    );
    assert_eq!(
        post(&app, &path, &owner, json!({"url": "javascript:alert(1)"}))
            .await
            .0,
        400
    );
    assert_eq!(post(&app, &path, &owner, json!({})).await.0, 400);
    app.create_user("guest@example.com", PASSWORD).await;
    share(&app, &owner, cam, "guest@example.com", "manage").await;
    let guest = token_of(&app, "guest@example.com").await;
    assert_eq!(
        post(
            &app,
            &path,
            &guest,
            json!({"url": "https://m.example.com/x.jpg"})
        )
        .await
        .0,
        403
    );

    // 120 posts per camera per minute; the next is 429 with Retry-After; another camera is
    // not affected; a new minute starts afresh.
    let events = format!("/v1/cameras/{cam}/events/");
    let mut accepted = 1; // the snapshot above
    loop {
        let (s, _) = post(&app, &events, &owner, json!({"type": "custom"})).await;
        if s == 429 {
            break;
        }
        assert_eq!(s, 201);
        accepted += 1;
        assert!(accepted <= 120, "no limit");
    }
    assert_eq!(accepted, 120);
    let r = app
        .http
        .post(app.url(&events))
        .bearer_auth(&owner)
        .json(&json!({"type": "custom"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().get("retry-after").is_some());
    let other_events = format!("/v1/cameras/{other}/events/");
    assert_eq!(
        post(&app, &other_events, &owner, json!({"type": "custom"}))
            .await
            .0,
        201
    );
    app.clock.advance(60);
    assert_eq!(
        post(&app, &events, &owner, json!({"type": "custom"}))
            .await
            .0,
        201
    );

    // Retention: the sweeper drops events and recordings older than media_retention_secs.
    let (_, before) = get(&app, "/v1/events/?limit=100", &owner).await;
    assert!(!ids(&before).is_empty());
    app.clock.advance(31 * 86_400);
    camgate_server::sweep_once(&app.core, 86_400, 1000)
        .await
        .unwrap();
    let owner = token_of(&app, OWNER).await;
    let (s, after) = get(&app, "/v1/events/", &owner).await;
    assert_eq!(s, 200, "{after}");
    assert!(ids(&after).is_empty(), "{after}");
}

/// Reads SSE frames from a streaming answer until `n` events arrived (10 s at most).
async fn read_events(r: &mut reqwest::Response, n: usize) -> Vec<(i64, String, Value)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("the stream stalled")
            .unwrap()
            .expect("the stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf[..end].to_string();
            buf.drain(..end + 2);
            let (mut id, mut kind, mut data) = (None, String::new(), String::new());
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse::<i64>().ok();
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if let Some(id) = id {
                out.push((id, kind, serde_json::from_str(&data).unwrap()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_event_stream_delivers_new_events_and_resumes_after_last_event_id() {
    let app = spawn_app().await;
    let (_, owner) = app.user_with_token(OWNER).await;
    let cam = camera(&app, &owner, json!({"name": "Door"})).await;
    let path = format!("/v1/cameras/{cam}/events/");
    let mut posted = Vec::new();
    for kind in ["motion", "tamper", "custom"] {
        let (s, v) = post(&app, &path, &owner, json!({"type": kind})).await;
        assert_eq!(s, 201);
        posted.push(v["id"].as_i64().unwrap());
    }
    // Resume after the first: the two that followed come first, in order.
    let mut r = app
        .http
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&owner)
        .header("Last-Event-ID", posted[0].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let got = read_events(&mut r, 2).await;
    assert_eq!(got.iter().map(|e| e.0).collect::<Vec<_>>(), posted[1..]);
    assert_eq!(got[0].1, "tamper");
    assert_eq!(got[0].2["camera_id"], cam);
    // A new event arrives on the open stream.
    let (_, live) = post(
        &app,
        &path,
        &owner,
        json!({"type": "motion", "data": {"n": 4}}),
    )
    .await;
    let next = read_events(&mut r, 1).await;
    assert_eq!(next[0].0, live["id"].as_i64().unwrap());
    assert_eq!(next[0].2["data"]["n"], 4);

    // Without Last-Event-ID the stream starts after the newest event (no replay).
    let mut fresh = app
        .http
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap();
    let (_, later) = post(&app, &path, &owner, json!({"type": "custom"})).await;
    let first = read_events(&mut fresh, 1).await;
    assert_eq!(first[0].0, later["id"].as_i64().unwrap());

    // Another user's stream never carries this camera's events.
    let (_, other) = app.user_with_token("other@example.com").await;
    let mut theirs = app
        .http
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&other)
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    let own_cam = camera(&app, &other, json!({"name": "Mine"})).await;
    let (_, own) = post(
        &app,
        &format!("/v1/cameras/{own_cam}/events/"),
        &other,
        json!({"type": "motion"}),
    )
    .await;
    let seen = read_events(&mut theirs, 1).await;
    assert_eq!(
        seen[0].0,
        own["id"].as_i64().unwrap(),
        "only their own camera's event"
    );

    // A bad Last-Event-ID is a 400; no token is a 401.
    let r = app
        .http
        .get(app.url("/v1/events/stream"))
        .bearer_auth(&owner)
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .http
        .get(app.url("/v1/events/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Camera listings are answered from memory on each node while nothing they show changed:
/// a change made on another node shows at the next request, and a listing served later never
/// hands out a media URL with less than a quarter of its lifetime (300 s here) left.
#[tokio::test]
async fn a_listing_from_memory_is_never_stale_on_any_node() {
    let a = spawn_app().await;
    let b = a.spawn_node().await;
    let (_, owner) = a.user_with_token(OWNER).await;
    let body = |name: &str| json!({"name": name, "streams": [{"format": "hls", "url": format!("https://media.example.com/{name}/live.m3u8")}]});
    let cam = camera(&a, &owner, body("porch")).await;
    let jwks: Value = a
        .http
        .get(a.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let (_, first) = get(&b, "/v1/cameras/", &owner).await;
    let (_, again) = get(&b, "/v1/cameras/", &owner).await;
    assert_eq!(first, again);
    assert_eq!(first["results"][0]["name"], "porch");
    // The CameraManager listing is kept the same way.
    let cm_first = cm(&b, &owner).await;
    assert_eq!(cm(&b, &owner).await, cm_first);
    assert_eq!(cm_first[0]["name"], "porch");

    // Renamed on A: B's next answer has the new name.
    let (st, _) = post_or_put(
        &a,
        "PUT",
        &format!("/v1/cameras/{cam}/"),
        &owner,
        json!({"name": "front"}),
    )
    .await;
    assert_eq!(st, 200);
    let (_, after) = get(&b, "/v1/cameras/", &owner).await;
    assert_eq!(after["results"][0]["name"], "front");
    assert_eq!(cm(&b, &owner).await[0]["name"], "front");
    // A heartbeat's status, a new camera, a deleted one: each shows on B at once.
    let (st, _) = post(
        &a,
        &format!("/v1/cameras/{cam}/heartbeat/"),
        &owner,
        json!({"status": "offline"}),
    )
    .await;
    assert_eq!(st, 200, "heartbeat");
    assert_eq!(
        get(&b, "/v1/cameras/", &owner).await.1["results"][0]["status"],
        "offline"
    );
    let second = camera(&a, &owner, body("yard")).await;
    assert_eq!(get(&b, "/v1/cameras/", &owner).await.1["count"], 2);
    assert_eq!(cm(&b, &owner).await.as_array().map(Vec::len), Some(2));
    let (st, _) = post_or_put(
        &a,
        "DELETE",
        &format!("/v1/cameras/{second}/"),
        &owner,
        Value::Null,
    )
    .await;
    assert_eq!(st, 204);
    assert_eq!(get(&b, "/v1/cameras/", &owner).await.1["count"], 1);
    assert_eq!(cm(&b, &owner).await.as_array().map(Vec::len), Some(1));

    // Over ten minutes of polling, every URL handed out verifies with at least 75 s left.
    for _ in 0..15 {
        a.clock.advance(40);
        let now = a.clock_now();
        let (_, list) = get(&b, "/v1/cameras/", &owner).await;
        let url = list["results"][0]["streams"][0]["url"].as_str().unwrap();
        let c = media::verify(url, &jwks, now).unwrap();
        assert!(c.exp - now >= 75, "{} s left at {now}", c.exp - now);
    }
}

/// The CameraManager listing's body.
async fn cm(app: &TestApp, token: &str) -> Value {
    get(app, "/rest/v2.0/cameras", token).await.1
}

async fn post_or_put(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Value,
) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut r = app.http.request(m, app.url(path)).bearer_auth(token);
    if !body.is_null() {
        r = r.json(&body);
    }
    let r = r.send().await.unwrap();
    let st = r.status().as_u16();
    (st, r.json().await.unwrap_or(Value::Null))
}
