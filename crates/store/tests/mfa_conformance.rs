//! Conformance of the second-factor storage methods (`MfaStore`: TOTP authenticators, their
//! replay guard, recovery codes) and of the factors a browser session records (`amr`): every
//! check runs on SQLite (a temp file) and on PostgreSQL (a fresh throwaway database at
//! `CAMGATE_TEST_POSTGRES_URL`, default `postgres://postgres@127.0.0.1:5432/postgres`; fails,
//! never skips, when unreachable).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use camgate_core::model::*;
use camgate_core::sessions::NewSession;
use camgate_core::store::Store;

mod support;
use support::Db;

on_both_backends!(
    pending_totp_is_confirmed_once_with_its_recovery_codes,
    pending_totp_is_replaced_until_confirmed_then_refused,
    accepted_totp_steps_strictly_increase,
    recovery_codes_work_once_each,
    second_factors_are_deleted_together,
    sessions_round_trip_their_amr,
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

/// Ten distinct recovery-code digests tagged with `tag`.
fn hashes(tag: &str) -> Vec<Vec<u8>> {
    (0..10)
        .map(|i| format!("{tag}-recovery-{i:02}").into_bytes())
        .collect()
}

/// A user with a confirmed authenticator (first code at step 100) and ten recovery codes.
async fn enrolled(s: &dyn Store, email: &str) -> UserId {
    let u = user(s, email).await;
    assert!(s.put_pending_totp(u, b"sealed key", 1000).await.unwrap());
    assert!(s.confirm_totp(u, 100, 1010, &hashes(email)).await.unwrap());
    u
}

async fn pending_totp_is_confirmed_once_with_its_recovery_codes(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "a@example.com").await;
    assert_eq!(s.totp(u).await.unwrap(), None);
    // Nothing to confirm yet.
    assert!(!s.confirm_totp(u, 5, 1000, &hashes("x")).await.unwrap());
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 0);

    assert!(s.put_pending_totp(u, b"sealed one", 1000).await.unwrap());
    let t = s.totp(u).await.unwrap().unwrap();
    assert_eq!(t.secret_enc, b"sealed one");
    assert_eq!(t.created_at, 1000);
    assert_eq!(t.confirmed_at, None);
    assert_eq!(t.last_step, None);
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 0);

    assert!(s.confirm_totp(u, 77, 1005, &hashes("first")).await.unwrap());
    let t = s.totp(u).await.unwrap().unwrap();
    assert_eq!(t.secret_enc, b"sealed one");
    assert_eq!(t.confirmed_at, Some(1005));
    assert_eq!(
        t.last_step,
        Some(77),
        "the confirming code's step is used up"
    );
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 10);

    // A second confirmation finds nothing pending and changes nothing (the codes stay).
    assert!(!s
        .confirm_totp(u, 90, 2000, &hashes("second"))
        .await
        .unwrap());
    let t = s.totp(u).await.unwrap().unwrap();
    assert_eq!((t.confirmed_at, t.last_step), (Some(1005), Some(77)));
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 10);
    assert!(s
        .use_recovery_code(u, b"first-recovery-03", 2001)
        .await
        .unwrap());
    assert!(!s
        .use_recovery_code(u, b"second-recovery-03", 2001)
        .await
        .unwrap());

    // Another user's state is separate.
    let other = user(s, "b@example.com").await;
    assert_eq!(s.totp(other).await.unwrap(), None);
    assert_eq!(s.recovery_codes_left(other).await.unwrap(), 0);
}

async fn pending_totp_is_replaced_until_confirmed_then_refused(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "a@example.com").await;
    assert!(s.put_pending_totp(u, b"first", 1000).await.unwrap());
    // Restarting the set-up replaces the unconfirmed key.
    assert!(s.put_pending_totp(u, b"second", 1100).await.unwrap());
    let t = s.totp(u).await.unwrap().unwrap();
    assert_eq!(
        (t.secret_enc.as_slice(), t.created_at, t.confirmed_at),
        (&b"second"[..], 1100, None)
    );
    assert!(s.confirm_totp(u, 40, 1200, &hashes("a")).await.unwrap());

    // Once confirmed, a new pending key is refused and nothing changes.
    assert!(!s.put_pending_totp(u, b"third", 1300).await.unwrap());
    let t = s.totp(u).await.unwrap().unwrap();
    assert_eq!(t.secret_enc, b"second");
    assert_eq!(t.created_at, 1100);
    assert_eq!(t.confirmed_at, Some(1200));
    assert_eq!(t.last_step, Some(40));
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 10);
}

async fn accepted_totp_steps_strictly_increase(db: &Db) {
    let s = db.store.as_ref();
    // A pending (unconfirmed) authenticator accepts no step.
    let p = user(s, "pending@example.com").await;
    assert!(s.put_pending_totp(p, b"k", 1000).await.unwrap());
    assert!(!s.accept_totp_step(p, 500).await.unwrap());
    assert_eq!(s.totp(p).await.unwrap().unwrap().last_step, None);
    // Nor does a user without one.
    let none = user(s, "none@example.com").await;
    assert!(!s.accept_totp_step(none, 500).await.unwrap());

    let u = enrolled(s, "a@example.com").await; // last_step 100
    assert!(
        !s.accept_totp_step(u, 100).await.unwrap(),
        "the confirming step"
    );
    assert!(!s.accept_totp_step(u, 99).await.unwrap(), "an earlier step");
    assert!(s.accept_totp_step(u, 101).await.unwrap());
    assert!(
        !s.accept_totp_step(u, 101).await.unwrap(),
        "the same step twice"
    );
    assert!(!s.accept_totp_step(u, 100).await.unwrap(), "a lower step");
    assert!(s.accept_totp_step(u, 105).await.unwrap(), "steps may skip");
    assert!(!s.accept_totp_step(u, 104).await.unwrap());
    assert_eq!(s.totp(u).await.unwrap().unwrap().last_step, Some(105));

    // Concurrent uses of one step: exactly one wins.
    let (a, b) = tokio::join!(s.accept_totp_step(u, 106), s.accept_totp_step(u, 106));
    assert_eq!(
        [a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(),
        1,
        "one of two concurrent uses of a step"
    );
    assert_eq!(s.totp(u).await.unwrap().unwrap().last_step, Some(106));

    // Steps are per user.
    let v = enrolled(s, "b@example.com").await;
    assert!(s.accept_totp_step(v, 101).await.unwrap());
}

async fn recovery_codes_work_once_each(db: &Db) {
    let s = db.store.as_ref();
    let u = enrolled(s, "a@example.com").await;
    let v = enrolled(s, "b@example.com").await;
    let code = b"a@example.com-recovery-04";
    // Another user's code is not this user's.
    assert!(!s.use_recovery_code(v, code, 2000).await.unwrap());
    assert!(!s.use_recovery_code(u, b"unknown", 2000).await.unwrap());
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 10);

    assert!(s.use_recovery_code(u, code, 2000).await.unwrap());
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 9);
    assert!(!s.use_recovery_code(u, code, 2001).await.unwrap(), "reused");
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 9);
    assert_eq!(s.recovery_codes_left(v).await.unwrap(), 10);

    for i in 0..10 {
        let h = format!("a@example.com-recovery-{i:02}");
        let fresh = i != 4;
        assert_eq!(
            s.use_recovery_code(u, h.as_bytes(), 3000).await.unwrap(),
            fresh,
            "code {i}"
        );
    }
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 0);

    // Concurrent uses of one code: exactly one wins.
    let c = b"b@example.com-recovery-07";
    let (a, b) = tokio::join!(
        s.use_recovery_code(v, c, 4000),
        s.use_recovery_code(v, c, 4000)
    );
    assert_eq!([a.unwrap(), b.unwrap()].iter().filter(|x| **x).count(), 1);
    assert_eq!(s.recovery_codes_left(v).await.unwrap(), 9);
}

async fn second_factors_are_deleted_together(db: &Db) {
    let s = db.store.as_ref();
    let u = enrolled(s, "a@example.com").await;
    let v = enrolled(s, "b@example.com").await;
    assert!(s.delete_second_factors(u).await.unwrap());
    assert_eq!(s.totp(u).await.unwrap(), None);
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 0);
    assert!(!s
        .use_recovery_code(u, b"a@example.com-recovery-00", 5000)
        .await
        .unwrap());
    assert!(!s.accept_totp_step(u, 1000).await.unwrap());
    // Nothing left: false.
    assert!(!s.delete_second_factors(u).await.unwrap());
    // The other user keeps theirs.
    assert!(s.totp(v).await.unwrap().unwrap().confirmed_at.is_some());
    assert_eq!(s.recovery_codes_left(v).await.unwrap(), 10);

    // Turning the authenticator off keeps the passkeys; a full reset removes them too.
    let p = user(s, "p@example.com").await;
    assert!(s.put_pending_totp(p, b"k", 1000).await.unwrap());
    assert!(s.confirm_totp(p, 30, 1001, &hashes("p")).await.unwrap());
    s.add_passkey(p, b"cred-p", "laptop", "{}", 1002)
        .await
        .unwrap();
    assert!(s.delete_totp(p).await.unwrap());
    assert_eq!(s.totp(p).await.unwrap(), None);
    assert_eq!(s.recovery_codes_left(p).await.unwrap(), 0);
    assert_eq!(s.passkeys_of(p).await.unwrap().len(), 1);
    assert!(!s.delete_totp(p).await.unwrap());
    assert!(s.delete_second_factors(p).await.unwrap());
    assert!(s.passkeys_of(p).await.unwrap().is_empty());

    // A pending enrolment alone is a second factor's row too.
    let w = user(s, "c@example.com").await;
    assert!(s.put_pending_totp(w, b"k", 1000).await.unwrap());
    assert!(s.delete_second_factors(w).await.unwrap());
    assert_eq!(s.totp(w).await.unwrap(), None);

    // After a reset the user can enrol again, with new codes only.
    assert!(s.put_pending_totp(u, b"again", 6000).await.unwrap());
    assert!(s.confirm_totp(u, 300, 6001, &hashes("new")).await.unwrap());
    let t = s.totp(u).await.unwrap().unwrap();
    assert_eq!(
        (t.secret_enc.as_slice(), t.last_step),
        (&b"again"[..], Some(300))
    );
    assert_eq!(s.recovery_codes_left(u).await.unwrap(), 10);
    assert!(!s
        .use_recovery_code(u, b"a@example.com-recovery-01", 6002)
        .await
        .unwrap());
    assert!(s
        .use_recovery_code(u, b"new-recovery-01", 6002)
        .await
        .unwrap());
}

async fn sessions_round_trip_their_amr(db: &Db) {
    let s = db.store.as_ref();
    let u = user(s, "a@example.com").await;
    for (hash, amr) in [(&b"session-pwd"[..], "pwd"), (b"session-otp", "pwd otp")] {
        s.create_session(&NewSession {
            hash: hash.to_vec(),
            user_id: u,
            created_at: 1000,
            expires_at: 9000,
            amr: amr.into(),
        })
        .await
        .unwrap();
        let rec = s.session(hash).await.unwrap().unwrap();
        assert_eq!(rec.user_id, u);
        assert_eq!(rec.created_at, 1000);
        assert_eq!(rec.expires_at, 9000);
        assert_eq!(rec.amr.as_deref(), Some(amr), "{amr}");
    }
    assert_eq!(s.session(b"no such session").await.unwrap(), None);
}
