//! Answers a thread's reader gave, kept for as long as the database has not changed since.
//!
//! Every commit to a WAL database, by any connection of any process, rewrites the WAL index
//! header at the start of the `-shm` file (SQLite's `walIndexWriteHdr`): a change counter that
//! goes up by one per transaction, the last valid frame, the frame checksum and, when the log
//! restarts, new salts. The header is written twice, the second copy first, and a reader that
//! finds both copies equal has a header some commit published. So while the header reads the
//! same as it did before a lookup ran, no transaction has committed since, and that lookup's
//! answer is the one a new read transaction would give: the memo answers instead.
//!
//! Why: a read transaction takes SQLite's WAL read mark (a mutex and two `fcntl` calls) and
//! runs the statement; reading the header is one `pread` of 96 bytes. On `GET /v1/me/` the
//! token lookup was the route's one read, the largest part of what it cost beyond the HTTP
//! stack (BENCHMARKS.md, "Lookups remembered while the database is unchanged").
//!
//! Why it is safe:
//! - A commit's header is in the file before its `COMMIT` returns, so before anything it did
//!   (a revocation, a disabled user) was answered: any request after that reads the new header,
//!   finds it differs, and forgets every memo of the thread. A commit still in progress is
//!   either side of the lookup, as it would be for a read transaction.
//! - The memo is tagged with the header read *before* its lookup ran: a commit between the two
//!   makes the tag old, so the next request reads again (never the reverse).
//! - The header is only read on a thread whose own connection has finished a read: that
//!   connection holds the shared memory open, and while any connection of this process does,
//!   SQLite neither truncates nor deletes the `-shm` file (it does so only for the first
//!   connection to open a database, or the last to close it), so the file read is the one in
//!   use. A header that is not a valid one (copies differ mid-commit, not initialised, another
//!   version) answers nothing: the lookup reads the database and keeps nothing.
//! - Only a database in WAL mode is memoised (`journal_mode` checked when the file is opened).
//!
//! Only the answers that decide nothing by themselves are kept here: what a row says, never a
//! decision (expiry is still checked against the clock at every request).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fs::File;
use std::hash::Hash;
use std::os::unix::fs::FileExt;
use std::path::Path;

use camgate_core::model::{AccessTokenInfo, UserId};
use camgate_core::store::JwtSubject;

/// The WAL index header (`WalIndexHdr`): 48 bytes, written twice from offset 0.
const HEADER: usize = 48;
/// `iVersion` of every WAL index SQLite has written since 3.7.0 (`WALINDEX_MAX_VERSION`).
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// Byte of `isInit` in the header (after `iVersion`, padding and `iChange`).
const IS_INIT: usize = 12;

/// Entries a thread keeps per kind before it starts over (a token digest is 32 bytes; an
/// access token's answer, with its user, a few hundred).
pub(crate) const MAX_ENTRIES: usize = 1024;

/// The `-shm` file of one database, opened once it is known to be in WAL mode.
pub(crate) struct WalIndex {
    file: File,
}

impl WalIndex {
    /// Opens `<db>-shm`; `None` when there is none (not WAL, or shared memory kept elsewhere).
    pub(crate) fn open(db: &Path) -> Option<WalIndex> {
        let mut shm = db.as_os_str().to_os_string();
        shm.push("-shm");
        File::open(shm).ok().map(|file| WalIndex { file })
    }

    /// The published header, or `None` when it cannot be trusted right now.
    pub(crate) fn header(&self) -> Option<[u8; HEADER]> {
        let mut both = [0u8; 2 * HEADER];
        let n = self.file.read_at(&mut both, 0).ok()?;
        if n < both.len() {
            return None;
        }
        let (first, second) = both.split_at(HEADER);
        let version = u32::from_ne_bytes([first[0], first[1], first[2], first[3]]);
        if first != second || first[IS_INIT] != 1 || version != WAL_INDEX_VERSION {
            return None;
        }
        let mut h = [0u8; HEADER];
        h.copy_from_slice(first);
        Some(h)
    }
}

#[cfg(test)]
thread_local! {
    /// Per thread (a test's own): answers given from a memo.
    static HITS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Answers this thread was given from a memo.
#[cfg(test)]
pub(crate) fn hits() -> u64 {
    HITS.with(|h| h.get())
}

/// A map that starts over when full: bounded memory, no bookkeeping per hit.
pub(crate) struct Bounded<K, V>(HashMap<K, V>);

impl<K: Hash + Eq, V: Clone> Bounded<K, V> {
    fn new() -> Self {
        Self(HashMap::new())
    }

    pub(crate) fn get<Q>(&self, k: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.get_where(k, |_| true).cloned()
    }

    /// The entry under `k`, if `fits` it.
    fn get_where<Q>(&self, k: &Q, fits: impl FnOnce(&V) -> bool) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hit = self.0.get(k).filter(|v| fits(v));
        #[cfg(test)]
        if hit.is_some() {
            HITS.with(|h| h.set(h.get() + 1));
        }
        hit
    }

    pub(crate) fn put(&mut self, k: K, v: V) {
        if self.0.len() >= MAX_ENTRIES {
            self.0.clear();
        }
        self.0.insert(k, v);
    }

    fn clear(&mut self) {
        self.0.clear();
    }
}

/// One thread's memo for one store.
pub(crate) struct Memo {
    /// The header every entry was looked up under.
    header: Option<[u8; HEADER]>,
    /// Access tokens by digest (found ones only: an unknown digest is not kept).
    pub(crate) access: Bounded<Vec<u8>, AccessTokenInfo>,
    /// A JWT's holder by `jti`, beside the `client_id` and user it was asked for.
    jwt_subjects: Bounded<String, (String, Option<UserId>, JwtSubject)>,
    /// `camera_listing_version` by user.
    pub(crate) listing_version: Bounded<i64, i64>,
    /// `camera_search_version`.
    pub(crate) search_version: Option<i64>,
}

impl Memo {
    pub(crate) fn new() -> Self {
        Self {
            header: None,
            access: Bounded::new(),
            jwt_subjects: Bounded::new(),
            listing_version: Bounded::new(),
            search_version: None,
        }
    }

    /// The holder kept for `jti`, if it was asked for with the same client and user.
    pub(crate) fn jwt_subject(
        &self,
        jti: &str,
        client_id: &str,
        user_id: Option<UserId>,
    ) -> Option<JwtSubject> {
        self.jwt_subjects
            .get_where(jti, |(c, u, _)| c == client_id && *u == user_id)
            .map(|(_, _, s)| s.clone())
    }

    pub(crate) fn keep_jwt_subject(
        &mut self,
        jti: &str,
        client_id: &str,
        user_id: Option<UserId>,
        s: JwtSubject,
    ) {
        self.jwt_subjects
            .put(jti.to_string(), (client_id.to_string(), user_id, s));
    }

    /// Keeps the entries if `header` is the one they were looked up under; else forgets them
    /// and tags the memo with `header`.
    pub(crate) fn align(&mut self, header: [u8; HEADER]) {
        if self.header != Some(header) {
            self.access.clear();
            self.jwt_subjects.clear();
            self.listing_version.clear();
            self.search_version = None;
            self.header = Some(header);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_map_starts_over() {
        let mut m = Bounded::<i64, i64>::new();
        for i in 0..MAX_ENTRIES as i64 {
            m.put(i, i);
        }
        assert_eq!(m.get(&0), Some(0));
        m.put(-1, 7);
        assert_eq!(m.get(&0), None);
        assert_eq!(m.get(&-1), Some(7));
    }

    #[test]
    fn a_new_header_forgets_everything() {
        let mut m = Memo::new();
        m.align([1; HEADER]);
        m.listing_version.put(3, 9);
        m.search_version = Some(4);
        m.align([1; HEADER]);
        assert_eq!(m.listing_version.get(&3), Some(9));
        m.align([2; HEADER]);
        assert_eq!(m.listing_version.get(&3), None);
        assert_eq!(m.search_version, None);
    }

    /// Headers that are not a published one are refused: copies that differ (a commit
    /// writing them), an uninitialised index, a short file.
    #[test]
    fn only_a_published_header_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        let shm = dir.path().join("t.db-shm");
        let mut h = [0u8; HEADER];
        h[..4].copy_from_slice(&WAL_INDEX_VERSION.to_ne_bytes());
        h[IS_INIT] = 1;
        h[8] = 5;
        let write = |a: &[u8; HEADER], b: &[u8; HEADER]| {
            std::fs::write(&shm, [a.as_slice(), b.as_slice(), &[0u8; 64]].concat()).unwrap();
        };
        write(&h, &h);
        let idx = WalIndex::open(&db).unwrap();
        assert_eq!(idx.header(), Some(h));
        let mut other = h;
        other[8] = 6;
        write(&other, &h);
        assert_eq!(idx.header(), None);
        let mut uninit = h;
        uninit[IS_INIT] = 0;
        write(&uninit, &uninit);
        assert_eq!(idx.header(), None);
        std::fs::write(&shm, &h[..]).unwrap();
        assert_eq!(idx.header(), None);
        assert!(WalIndex::open(&dir.path().join("none.db")).is_none());
    }
}
