//! Conformance of the webhook storage methods (`WebhookStore`) and of the outbox rows
//! `EventStore` writes for them: subscriptions per user, the claim with its lease (two
//! concurrent claimers never get the same delivery), attempts and their outcomes, failing and
//! disabled webhooks, the delivery log and replays. Every check runs on SQLite (a temp file)
//! and on PostgreSQL (a fresh throwaway database at `CAMGATE_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/postgres`; fails, never skips, when unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::sync::Arc;

use camgate_core::model::*;
use camgate_core::store::{AttemptRecord, DeliveryOutcome, DeliveryState, NewWebhook, Store};

mod support;
use support::Db;

on_both_backends!(
    webhooks_belong_to_their_user_and_are_limited,
    a_claim_leases_due_deliveries_once,
    concurrent_claimers_never_share_a_delivery,
    attempts_record_their_outcome_unless_the_lease_was_lost,
    failing_webhooks_are_marked_recovered_and_disabled,
    the_delivery_log_is_the_owners_newest_first,
    a_replay_is_due_now_and_enables_the_webhook,
    events_write_outbox_rows_only_for_subscribed_enabled_webhooks,
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

fn new_hook(user: UserId, url: &str, events: &[&str]) -> NewWebhook {
    NewWebhook {
        user_id: user,
        url: url.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
        secret_enc: format!("sealed for {url}").into_bytes(),
        created_at: 1000,
    }
}

async fn hook(s: &dyn Store, user: UserId, events: &[&str]) -> i64 {
    s.create_webhook(&new_hook(user, "https://h.example/x", events), 20)
        .await
        .unwrap()
        .unwrap()
        .id
}

fn notice(kind: &'static str, id: &str) -> Notice {
    Notice {
        kind,
        id: id.into(),
        payload: format!(r#"{{"id":"{id}","type":"{kind}"}}"#),
    }
}

/// Queues `n` notices of `kind` for `users` at `now`; the number of outbox rows written.
async fn queue(s: &dyn Store, users: &[UserId], kind: &'static str, n: usize, now: i64) -> u64 {
    let mut rows = 0;
    for i in 0..n {
        rows += s
            .enqueue_notice(users, &notice(kind, &format!("ntc_{kind}_{now}_{i}")), now)
            .await
            .unwrap();
    }
    rows
}

async fn webhooks_belong_to_their_user_and_are_limited(db: &Db) {
    let s = db.store.as_ref();
    let (a, b) = (
        user(s, "a@example.com").await,
        user(s, "b@example.com").await,
    );
    let w = s
        .create_webhook(
            &new_hook(a, "https://h.example/a", &["camera.event", "app.revoked"]),
            20,
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(w.user_id, a);
    assert_eq!(w.url, "https://h.example/a");
    assert_eq!(w.events, vec!["camera.event", "app.revoked"]);
    assert_eq!(w.secret_enc, b"sealed for https://h.example/a");
    assert_eq!(w.created_at, 1000);
    assert_eq!((w.failing_since, w.disabled_at), (None, None));
    assert_eq!(s.webhook(a, w.id).await.unwrap(), Some(w.clone()));
    // Someone else's is not found, not listed, not deleted.
    assert_eq!(s.webhook(b, w.id).await.unwrap(), None);
    assert!(s.webhooks(b).await.unwrap().is_empty());
    assert!(!s.delete_webhook(b, w.id).await.unwrap());
    // The limit per user, in the insert itself.
    for i in 1..3 {
        let url = format!("https://h.example/{i}");
        assert!(s
            .create_webhook(&new_hook(a, &url, &["camera.added"]), 3)
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(
        s.create_webhook(&new_hook(a, "https://h.example/4", &["camera.added"]), 3)
            .await
            .unwrap(),
        None
    );
    assert!(s
        .create_webhook(&new_hook(b, "https://h.example/b", &["camera.added"]), 3)
        .await
        .unwrap()
        .is_some());
    let list = s.webhooks(a).await.unwrap();
    assert_eq!(list.len(), 3);
    assert_eq!(list[0], w, "oldest first");
    assert!(s.delete_webhook(a, w.id).await.unwrap());
    assert!(!s.delete_webhook(a, w.id).await.unwrap());
    assert_eq!(s.webhook(a, w.id).await.unwrap(), None);
    assert_eq!(s.webhooks(a).await.unwrap().len(), 2);
}

async fn a_claim_leases_due_deliveries_once(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "a@example.com").await;
    let w = hook(s, u, &["camera.added"]).await;
    assert!(s.claim_deliveries(5000, 5060, 10).await.unwrap().is_empty());
    assert_eq!(queue(s, &[u], "camera.added", 3, 5000).await, 3);
    // Not due before its time.
    assert!(s.claim_deliveries(4999, 5059, 10).await.unwrap().is_empty());
    let first = s.claim_deliveries(5000, 5060, 2).await.unwrap();
    assert_eq!(first.len(), 2, "at most the limit");
    for c in &first {
        assert_eq!(c.webhook.id, w);
        assert_eq!(c.webhook.url, "https://h.example/x");
        assert_eq!(c.delivery.webhook_id, w);
        assert_eq!(c.delivery.state, DeliveryState::Pending);
        assert_eq!(c.delivery.attempts, 1, "the claim counts the attempt");
        assert_eq!(c.delivery.next_attempt_at, 5060, "leased");
        assert_eq!(c.delivery.created_at, 5000);
        assert_eq!(c.delivery.event_type, "camera.added");
        assert!(c.delivery.payload.contains(&c.delivery.event_id));
    }
    let rest = s.claim_deliveries(5001, 5061, 10).await.unwrap();
    assert_eq!(rest.len(), 1, "leased rows are not claimed again");
    assert!(!first.iter().any(|c| c.delivery.id == rest[0].delivery.id));
    assert!(s.claim_deliveries(5059, 5119, 10).await.unwrap().is_empty());
    // The lease ends: claimed again, a second attempt.
    let again = s.claim_deliveries(5060, 5120, 10).await.unwrap();
    assert_eq!(again.len(), 2);
    assert!(again.iter().all(|c| c.delivery.attempts == 2));
    let ids: HashSet<i64> = again.iter().map(|c| c.delivery.id).collect();
    assert_eq!(ids, first.iter().map(|c| c.delivery.id).collect());
}

async fn concurrent_claimers_never_share_a_delivery(db: &Db) {
    let store: Arc<dyn Store> = db.store.clone();
    let s = store.as_ref();
    let mut users = Vec::new();
    for i in 0..4 {
        let u = user(s, &format!("u{i}@example.com")).await;
        hook(s, u, &["camera.event"]).await;
        users.push(u);
    }
    // 4 webhooks × 50 notices.
    assert_eq!(queue(s, &users, "camera.event", 50, 7000).await, 200);
    let claimers = (0..4).map(|_| {
        let st = store.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = st.claim_deliveries(7000, 7060, 7).await.unwrap();
                if batch.is_empty() {
                    // Nothing is queued meanwhile: once empty, empty for everyone.
                    return got;
                }
                got.extend(batch.into_iter().map(|c| c.delivery.id));
                tokio::task::yield_now().await;
            }
        })
    });
    let mut all = Vec::new();
    let mut busy = 0;
    for c in claimers {
        let got = c.await.unwrap();
        busy += usize::from(!got.is_empty());
        all.extend(got);
    }
    let unique: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "a delivery was claimed twice");
    assert_eq!(all.len(), 200, "every delivery was claimed");
    assert!(busy >= 1);
}

async fn attempts_record_their_outcome_unless_the_lease_was_lost(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "a@example.com").await;
    let w = hook(s, u, &["camera.added"]).await;
    queue(s, &[u], "camera.added", 3, 100).await;
    let c = s.claim_deliveries(100, 160, 3).await.unwrap();
    let (d1, d2, d3) = (&c[0].delivery, &c[1].delivery, &c[2].delivery);
    let rec = |d: i64, n: i64, status: Option<i64>, error: Option<&str>, outcome| AttemptRecord {
        delivery_id: d,
        claimed_attempts: n,
        at: 101,
        status,
        error: error.map(String::from),
        duration_ms: 42,
        outcome,
    };
    // Delivered.
    assert!(s
        .record_attempt(&rec(d1.id, 1, Some(204), None, DeliveryOutcome::Delivered))
        .await
        .unwrap());
    // A retry, due later.
    assert!(s
        .record_attempt(&rec(
            d2.id,
            1,
            Some(500),
            Some("HTTP 500"),
            DeliveryOutcome::Retry(102)
        ))
        .await
        .unwrap());
    // Given up.
    assert!(s
        .record_attempt(&rec(
            d3.id,
            1,
            None,
            Some("connection refused"),
            DeliveryOutcome::Failed
        ))
        .await
        .unwrap());
    let log = s.delivery_log(u, w, None, 10).await.unwrap();
    let find = |id: i64| log.iter().find(|(d, _)| d.id == id).unwrap().clone();
    let (a, at) = find(d1.id);
    assert_eq!(a.state, DeliveryState::Delivered);
    assert_eq!(
        (a.delivered_at, a.last_status, a.last_error),
        (Some(101), Some(204), None)
    );
    assert_eq!(at.len(), 1);
    assert_eq!(
        (at[0].at, at[0].status, at[0].duration_ms, at[0].delivery_id),
        (101, Some(204), 42, d1.id)
    );
    let (b, _) = find(d2.id);
    assert_eq!(b.state, DeliveryState::Pending);
    assert_eq!(b.next_attempt_at, 102);
    assert_eq!(b.last_status, Some(500));
    assert_eq!(b.last_error.as_deref(), Some("HTTP 500"));
    let (c3, ct) = find(d3.id);
    assert_eq!(c3.state, DeliveryState::Failed);
    assert_eq!(c3.last_status, None);
    assert_eq!(ct[0].error.as_deref(), Some("connection refused"));
    // Finished deliveries are not claimed again; the retry is, when due.
    assert!(s.claim_deliveries(101, 161, 10).await.unwrap().is_empty());
    let again = s.claim_deliveries(102, 162, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, d2.id);
    assert_eq!(again[0].delivery.attempts, 2);
    // A holder whose lease was taken over (it claimed attempt 1) records its attempt but not
    // its outcome; the current holder's outcome counts.
    assert!(!s
        .record_attempt(&rec(d2.id, 1, Some(200), None, DeliveryOutcome::Delivered))
        .await
        .unwrap());
    let (b, bt) = find_in(s, u, w, d2.id).await;
    assert_eq!(b.state, DeliveryState::Pending);
    assert_eq!(bt.len(), 2, "both attempts are in the log");
    assert!(s
        .record_attempt(&rec(d2.id, 2, Some(200), None, DeliveryOutcome::Delivered))
        .await
        .unwrap());
    let (b, bt) = find_in(s, u, w, d2.id).await;
    assert_eq!(b.state, DeliveryState::Delivered);
    assert_eq!(b.last_error, None);
    assert_eq!(bt.len(), 3);
    // A delivery gone with its webhook: nothing recorded, no error.
    assert!(s.delete_webhook(u, w).await.unwrap());
    assert!(!s
        .record_attempt(&rec(d2.id, 2, Some(200), None, DeliveryOutcome::Delivered))
        .await
        .unwrap());
}

async fn find_in(
    s: &dyn Store,
    u: UserId,
    w: i64,
    id: i64,
) -> (
    camgate_core::store::Delivery,
    Vec<camgate_core::store::DeliveryAttempt>,
) {
    s.delivery_log(u, w, None, 100)
        .await
        .unwrap()
        .into_iter()
        .find(|(d, _)| d.id == id)
        .unwrap()
}

async fn failing_webhooks_are_marked_recovered_and_disabled(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "a@example.com").await;
    let w = hook(s, u, &["camera.added"]).await;
    assert_eq!(s.webhook_failing(w, 100).await.unwrap(), Some(100));
    assert_eq!(
        s.webhook_failing(w, 200).await.unwrap(),
        Some(100),
        "the first failure counts"
    );
    assert_eq!(
        s.webhook(u, w).await.unwrap().unwrap().failing_since,
        Some(100)
    );
    s.webhook_recovered(w).await.unwrap();
    assert_eq!(s.webhook(u, w).await.unwrap().unwrap().failing_since, None);
    assert_eq!(s.webhook_failing(w, 300).await.unwrap(), Some(300));
    // Disabling fails its pending deliveries; nothing new is queued or claimed for it.
    queue(s, &[u], "camera.added", 2, 300).await;
    assert!(s.disable_webhook(w, 400).await.unwrap());
    assert!(!s.disable_webhook(w, 500).await.unwrap(), "once");
    let hk = s.webhook(u, w).await.unwrap().unwrap();
    assert_eq!(hk.disabled_at, Some(400));
    let log = s.delivery_log(u, w, None, 10).await.unwrap();
    assert_eq!(log.len(), 2);
    assert!(log.iter().all(|(d, _)| d.state == DeliveryState::Failed));
    assert!(log.iter().all(|(d, _)| d.last_error.is_some()));
    assert_eq!(queue(s, &[u], "camera.added", 1, 500).await, 0);
    assert!(s
        .claim_deliveries(10_000, 10_060, 10)
        .await
        .unwrap()
        .is_empty());
    // Unknown webhooks: nothing.
    assert_eq!(s.webhook_failing(w + 1000, 1).await.unwrap(), None);
    assert!(!s.disable_webhook(w + 1000, 1).await.unwrap());
}

async fn the_delivery_log_is_the_owners_newest_first(db: &Db) {
    let s = db.store.as_ref();
    let (a, b) = (
        user(s, "a@example.com").await,
        user(s, "b@example.com").await,
    );
    let w = hook(s, a, &["camera.added"]).await;
    let other = hook(s, a, &["camera.added"]).await;
    queue(s, &[a], "camera.added", 5, 100).await;
    let log = s.delivery_log(a, w, None, 3).await.unwrap();
    assert_eq!(log.len(), 3, "bounded");
    let ids: Vec<i64> = log.iter().map(|(d, _)| d.id).collect();
    assert!(ids.windows(2).all(|p| p[0] > p[1]), "newest first: {ids:?}");
    assert!(log.iter().all(|(d, a)| d.webhook_id == w && a.is_empty()));
    let older = s.delivery_log(a, w, Some(ids[2]), 10).await.unwrap();
    assert_eq!(older.len(), 2);
    assert!(older.iter().all(|(d, _)| d.id < ids[2]));
    assert_eq!(s.delivery_log(a, other, None, 10).await.unwrap().len(), 5);
    // Another user's: nothing, whatever the ids.
    assert!(s.delivery_log(b, w, None, 10).await.unwrap().is_empty());
}

async fn a_replay_is_due_now_and_enables_the_webhook(db: &Db) {
    let s = db.store.as_ref();
    let (a, b) = (
        user(s, "a@example.com").await,
        user(s, "b@example.com").await,
    );
    let w = hook(s, a, &["camera.added"]).await;
    let wb = hook(s, b, &["camera.added"]).await;
    queue(s, &[a], "camera.added", 1, 100).await;
    let c = s.claim_deliveries(100, 160, 1).await.unwrap().remove(0);
    let d = c.delivery.id;
    assert!(s
        .record_attempt(&AttemptRecord {
            delivery_id: d,
            claimed_attempts: 1,
            at: 100,
            status: Some(200),
            error: None,
            duration_ms: 1,
            outcome: DeliveryOutcome::Delivered,
        })
        .await
        .unwrap());
    // Not someone else's, not under another webhook.
    assert_eq!(s.replay_delivery(b, w, d, 200).await.unwrap(), None);
    assert_eq!(s.replay_delivery(b, wb, d, 200).await.unwrap(), None);
    assert_eq!(s.replay_delivery(a, w, d + 1000, 200).await.unwrap(), None);
    let r = s.replay_delivery(a, w, d, 200).await.unwrap().unwrap();
    assert_eq!(r.state, DeliveryState::Pending);
    assert_eq!(r.next_attempt_at, 200);
    assert_eq!(r.event_id, c.delivery.event_id, "the same idempotency id");
    assert_eq!(r.payload, c.delivery.payload);
    let again = s.claim_deliveries(200, 260, 10).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery.id, d);
    // A disabled webhook is enabled again by a replay.
    assert!(s.disable_webhook(w, 300).await.unwrap());
    let r = s.replay_delivery(a, w, d, 400).await.unwrap().unwrap();
    assert_eq!(r.state, DeliveryState::Pending);
    let hk = s.webhook(a, w).await.unwrap().unwrap();
    assert_eq!((hk.disabled_at, hk.failing_since), (None, None));
    assert_eq!(s.claim_deliveries(400, 460, 10).await.unwrap().len(), 1);
}

async fn events_write_outbox_rows_only_for_subscribed_enabled_webhooks(db: &Db) {
    let s = db.store.as_ref();
    let (a, b) = (
        user(s, "a@example.com").await,
        user(s, "b@example.com").await,
    );
    let events = hook(s, a, &["camera.event"]).await;
    let added = hook(s, a, &["camera.added", "camera.removed"]).await;
    let off = hook(s, a, &["camera.event"]).await;
    assert!(s.disable_webhook(off, 1).await.unwrap());
    let theirs = hook(s, b, &["camera.event"]).await;
    let cam = s
        .create_camera(a, &CameraFields::named("cam"), 100)
        .await
        .unwrap();
    let n = notice("camera.event", "evt_one");
    s.record_event(cam.id, a, "evt_one", "motion", 100, "{}", &n, 100)
        .await
        .unwrap();
    let count = |w: i64| async move { s.delivery_log(a, w, None, 10).await.unwrap().len() };
    assert_eq!(count(events).await, 1);
    assert_eq!(count(added).await, 0, "not subscribed to camera.event");
    assert_eq!(count(off).await, 0, "disabled");
    assert!(
        s.delivery_log(b, theirs, None, 10)
            .await
            .unwrap()
            .is_empty(),
        "not b's camera"
    );
    let log = s.delivery_log(a, events, None, 10).await.unwrap();
    assert_eq!(log[0].0.event_id, "evt_one");
    assert_eq!(log[0].0.payload, n.payload);
    assert_eq!(
        s.enqueue_notice(&[a, b], &notice("camera.removed", "ntc_x"), 100)
            .await
            .unwrap(),
        1
    );
    assert_eq!(count(added).await, 1);
}
