//! A VFS shim for the token writer's connection: the WAL frames of a transaction reach the
//! file in a few large `pwrite`s (124 KiB each, ≈ 30 frames) instead of two per frame.
//!
//! Why by hand: SQLite appends each WAL frame as two writes (its 24-byte header, then the
//! page), and a refresh rotation dirties about ten pages, so the writer thread made ≈ 20
//! `pwrite` calls per rotation; under rotating refresh half of its CPU went to those calls and
//! the kernel's per-call, per-page work (BENCHMARKS.md, "One write per commit"). SQLite has no
//! setting that batches WAL writes, and no maintained crate wraps a VFS for this; the shim is
//! a thin layer over SQLite's own default VFS, which still does every read, lock and sync.
//!
//! The rule that keeps it correct: appends are held in memory only while the writer holds
//! SQLite's WAL write lock and before anything can observe them.
//! - Writes to the WAL that continue the held run are appended to it; any other WAL write
//!   first writes the held bytes, so writes reach the file in SQLite's order.
//! - Every WAL read, sync, truncate, size query, mapping and close writes the held bytes first.
//! - Every call on the main database file except plain reads writes the WAL's held bytes
//!   first. That includes the shared-memory barrier and locks: a commit publishes itself to
//!   readers by writing the WAL index header around `xShmBarrier` (SQLite's
//!   `walIndexWriteHdr`), and gives up the write lock with `xShmLock`, so no reader and no
//!   other writer (sqlx's connection, another process) can see a frame count that covers bytes
//!   still held here.
//! - `xShmBarrier` cannot report an error; if the held bytes cannot be written there, the
//!   process aborts rather than publish a commit whose frames are not in the file. On the next
//!   start SQLite's WAL recovery keeps the last commit whose frames are all in the file, and
//!   no job of the unwritten commit was answered (answers go out after `COMMIT` returns).
//!
//! Durability is unchanged: with `synchronous = NORMAL` a commit was already only in the OS
//! page cache when `COMMIT` returned; it still is, by the same point.

// The one module of the workspace with unsafe code: a VFS is a table of C callbacks.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

/// The name the writer's connection opens with.
pub(crate) const VFS_NAME: &str = "camgate-wal-append";
const VFS_NAME_C: &CStr = c"camgate-wal-append";

/// Held bytes beyond this are written at once (a transaction that spills many pages).
const MAX_HELD: usize = 4 << 20;

/// The most the default VFS writes in one call: its `unixWrite` takes under 128 KiB
/// (`seekAndWriteFd` masks the length with `0x1ffff`).
const MAX_WRITE: usize = 124 << 10;

#[cfg(test)]
thread_local! {
    /// Per thread (a test's own): WAL writes SQLite asked for, and writes the shim made.
    static COUNTS: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
}

#[cfg(test)]
fn count(asked: u64, made: u64) {
    COUNTS.with(|c| {
        let (a, m) = c.get();
        c.set((a + asked, m + made));
    });
}

#[cfg(not(test))]
fn count(_asked: u64, _made: u64) {}

/// The shim's file: SQLite allocates `szOsFile` bytes; this header comes first and the default
/// VFS's own file follows at [`REAL_OFFSET`].
#[repr(C)]
struct ShimFile {
    base: ffi::sqlite3_file,
    real: *mut ffi::sqlite3_file,
    wal: bool,
    /// WAL: the bytes held for `held_at`. Main database: empty.
    held: Vec<u8>,
    held_at: i64,
    /// WAL: its main database's file; main database: its open WAL's file (null when none).
    peer: *mut ShimFile,
}

const REAL_OFFSET: usize = std::mem::size_of::<ShimFile>().next_multiple_of(16);

/// Registers the shim once (not as the default VFS); `Err` carries SQLite's code.
pub(crate) fn register() -> Result<(), c_int> {
    static DONE: OnceLock<Result<(), c_int>> = OnceLock::new();
    let r = DONE.get_or_init(|| unsafe {
        let rc = ffi::sqlite3_initialize();
        if rc != ffi::SQLITE_OK {
            return Err(rc);
        }
        let real = ffi::sqlite3_vfs_find(ptr::null());
        if real.is_null() {
            return Err(ffi::SQLITE_ERROR);
        }
        let mut vfs = ptr::read(real);
        vfs.szOsFile = (REAL_OFFSET + (*real).szOsFile as usize) as c_int;
        vfs.pNext = ptr::null_mut();
        vfs.zName = VFS_NAME_C.as_ptr();
        vfs.pAppData = real.cast();
        vfs.xOpen = Some(x_open);
        // Registered for the life of the process: SQLite keeps the pointer.
        let vfs = Box::into_raw(Box::new(vfs));
        match ffi::sqlite3_vfs_register(vfs, 0) {
            ffi::SQLITE_OK => Ok(()),
            rc => Err(rc),
        }
    });
    *r
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(x_close),
    xRead: Some(x_read),
    xWrite: Some(x_write),
    xTruncate: Some(x_truncate),
    xSync: Some(x_sync),
    xFileSize: Some(x_file_size),
    xLock: Some(x_lock),
    xUnlock: Some(x_unlock),
    xCheckReservedLock: Some(x_check_reserved_lock),
    xFileControl: Some(x_file_control),
    xSectorSize: Some(x_sector_size),
    xDeviceCharacteristics: Some(x_device_characteristics),
    xShmMap: Some(x_shm_map),
    xShmLock: Some(x_shm_lock),
    xShmBarrier: Some(x_shm_barrier),
    xShmUnmap: Some(x_shm_unmap),
    xFetch: Some(x_fetch),
    xUnfetch: Some(x_unfetch),
};

unsafe extern "C" fn x_open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let real_vfs = (*vfs).pAppData as *mut ffi::sqlite3_vfs;
    let Some(real_open) = (*real_vfs).xOpen else {
        return ffi::SQLITE_ERROR;
    };
    let wal = flags & ffi::SQLITE_OPEN_WAL != 0;
    if !wal && flags & ffi::SQLITE_OPEN_MAIN_DB == 0 {
        // Journals and temporary files: the default VFS's file, unwrapped, in the same space.
        return real_open(real_vfs, name, file, flags, out_flags);
    }
    let shim = file as *mut ShimFile;
    let real = file.cast::<u8>().add(REAL_OFFSET) as *mut ffi::sqlite3_file;
    // SQLite calls xClose only when `pMethods` is set: leave it unset until the open worked.
    (*shim).base.pMethods = ptr::null();
    let rc = real_open(real_vfs, name, real, flags, out_flags);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    let mut peer = ptr::null_mut();
    if wal {
        // The main database's file, to which this WAL belongs (opened by this VFS too).
        let main = ffi::sqlite3_database_file_object(name as *const c_char) as *mut ShimFile;
        if !main.is_null() && ptr::eq((*main).base.pMethods, &METHODS) {
            peer = main;
        }
    }
    ptr::write(
        shim,
        ShimFile {
            base: ffi::sqlite3_file { pMethods: &METHODS },
            real,
            wal,
            held: Vec::new(),
            held_at: 0,
            peer,
        },
    );
    if !peer.is_null() {
        (*peer).peer = shim;
    }
    ffi::SQLITE_OK
}

/// The default VFS's method `$m` of `$f`'s real file (None if its version lacks it).
macro_rules! real {
    ($f:expr, $m:ident) => {{
        let r = (*$f).real;
        let m = (*r).pMethods;
        if m.is_null() {
            None
        } else {
            (*m).$m.map(|x| (r, x))
        }
    }};
}

/// Writes the held WAL bytes (a WAL file's own, or a main database's WAL's).
unsafe fn release(f: *mut ShimFile) -> c_int {
    let w = if (*f).wal { f } else { (*f).peer };
    if w.is_null() || (*w).held.is_empty() {
        return ffi::SQLITE_OK;
    }
    let Some((r, write)) = real!(w, xWrite) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let held = &mut (*w).held;
    let mut rc = ffi::SQLITE_OK;
    let mut at = (*w).held_at;
    for chunk in held.chunks(MAX_WRITE) {
        count(0, 1);
        rc = write(r, chunk.as_ptr().cast(), chunk.len() as c_int, at);
        if rc != ffi::SQLITE_OK {
            break;
        }
        at += chunk.len() as i64;
    }
    // On failure the bytes are dropped too: SQLite gets the error and ends the transaction,
    // and frames it did not commit must never reach the file later.
    held.clear();
    if held.capacity() > MAX_HELD {
        held.shrink_to(MAX_HELD);
    }
    rc
}

unsafe extern "C" fn x_close(file: *mut ffi::sqlite3_file) -> c_int {
    let f = file as *mut ShimFile;
    let rc1 = release(f);
    let peer = (*f).peer;
    if !peer.is_null() {
        (*peer).peer = ptr::null_mut();
    }
    let rc2 = match real!(f, xClose) {
        Some((r, close)) => close(r),
        None => ffi::SQLITE_OK,
    };
    ptr::drop_in_place(ptr::addr_of_mut!((*f).held));
    (*f).base.pMethods = ptr::null();
    if rc1 != ffi::SQLITE_OK {
        rc1
    } else {
        rc2
    }
}

unsafe extern "C" fn x_read(
    file: *mut ffi::sqlite3_file,
    buf: *mut c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    let f = file as *mut ShimFile;
    if (*f).wal {
        let rc = release(f);
        if rc != ffi::SQLITE_OK {
            return ffi::SQLITE_IOERR_READ;
        }
    }
    match real!(f, xRead) {
        Some((r, read)) => read(r, buf, amt, off),
        None => ffi::SQLITE_IOERR_READ,
    }
}

unsafe extern "C" fn x_write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amt: c_int,
    off: ffi::sqlite3_int64,
) -> c_int {
    let f = file as *mut ShimFile;
    if !(*f).wal {
        return write_through(file, buf, amt, off);
    }
    count(1, 0);
    let Ok(n) = usize::try_from(amt) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    let held_end = (*f).held_at + (*f).held.len() as i64;
    if !(*f).held.is_empty() && off != held_end {
        // Not a continuation (a frame rewritten in place, a restarted WAL): keep the order.
        let rc = release(f);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    if (*f).held.is_empty() {
        (*f).held_at = off;
    }
    (*f).held
        .extend_from_slice(std::slice::from_raw_parts(buf.cast::<u8>(), n));
    if (*f).held.len() >= MAX_HELD {
        return release(f);
    }
    ffi::SQLITE_OK
}

/// Forwards `$m` after writing the held WAL bytes (their error instead, if that failed);
/// `$none` if the default VFS's file lacks the method.
macro_rules! after_release {
    ($name:ident, $m:ident, ($($a:ident: $t:ty),*)) => {
        after_release!($name, $m, ($($a: $t),*), ffi::SQLITE_IOERR);
    };
    ($name:ident, $m:ident, ($($a:ident: $t:ty),*), $none:expr) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $a: $t)*) -> c_int {
            let f = file as *mut ShimFile;
            let rc = release(f);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
            match real!(f, $m) {
                Some((r, m)) => m(r $(, $a)*),
                None => $none,
            }
        }
    };
}

after_release!(x_truncate, xTruncate, (size: ffi::sqlite3_int64));
after_release!(x_sync, xSync, (flags: c_int));
after_release!(x_file_size, xFileSize, (size: *mut ffi::sqlite3_int64));
after_release!(x_lock, xLock, (level: c_int));
after_release!(x_unlock, xUnlock, (level: c_int));
after_release!(x_check_reserved_lock, xCheckReservedLock, (out: *mut c_int));
after_release!(x_shm_lock, xShmLock, (offset: c_int, n: c_int, flags: c_int));
after_release!(x_shm_unmap, xShmUnmap, (delete: c_int));
after_release!(
    x_shm_map,
    xShmMap,
    (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void)
);

// A write to the main database file (a checkpoint's), after the WAL's held bytes.
after_release!(
    write_through,
    xWrite,
    (buf: *const c_void, amt: c_int, off: ffi::sqlite3_int64),
    ffi::SQLITE_IOERR_WRITE
);
after_release!(
    x_file_control,
    xFileControl,
    (op: c_int, arg: *mut c_void),
    ffi::SQLITE_NOTFOUND
);

unsafe extern "C" fn x_sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    let f = file as *mut ShimFile;
    match real!(f, xSectorSize) {
        Some((r, m)) => m(r),
        None => 4096,
    }
}

unsafe extern "C" fn x_device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    let f = file as *mut ShimFile;
    match real!(f, xDeviceCharacteristics) {
        Some((r, m)) => m(r),
        None => 0,
    }
}

unsafe extern "C" fn x_shm_barrier(file: *mut ffi::sqlite3_file) {
    let f = file as *mut ShimFile;
    let rc = release(f);
    if rc != ffi::SQLITE_OK {
        // See the module notes: publishing the commit now would point readers at frames that
        // are not in the file.
        eprintln!(
            "camgate: the SQLite WAL could not be written; stopping before a commit is published"
        );
        std::process::abort();
    }
    if let Some((r, m)) = real!(f, xShmBarrier) {
        m(r);
    }
}

unsafe extern "C" fn x_fetch(
    file: *mut ffi::sqlite3_file,
    off: ffi::sqlite3_int64,
    amt: c_int,
    out: *mut *mut c_void,
) -> c_int {
    let f = file as *mut ShimFile;
    *out = ptr::null_mut();
    let rc = release(f);
    if rc != ffi::SQLITE_OK {
        return rc;
    }
    match real!(f, xFetch) {
        Some((r, m)) => m(r, off, amt, out),
        // No memory map: SQLite reads with xRead instead.
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn x_unfetch(
    file: *mut ffi::sqlite3_file,
    off: ffi::sqlite3_int64,
    p: *mut c_void,
) -> c_int {
    let f = file as *mut ShimFile;
    match real!(f, xUnfetch) {
        Some((r, m)) => m(r, off, p),
        None => ffi::SQLITE_OK,
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{params, Connection, OpenFlags};

    use super::*;

    fn open(path: &std::path::Path, shim: bool) -> Connection {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
        let c = if shim {
            register().unwrap();
            Connection::open_with_flags_and_vfs(path, flags, VFS_NAME).unwrap()
        } else {
            Connection::open_with_flags(path, flags).unwrap()
        };
        c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))
            .unwrap();
        c.pragma_update(None, "synchronous", "NORMAL").unwrap();
        c.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        c
    }

    fn sum(c: &Connection) -> (i64, i64) {
        c.query_row("SELECT count(*), coalesce(sum(n), 0) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
    }

    fn integrity(c: &Connection) -> String {
        c.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap()
    }

    /// Every commit through the shim is whole in the file when it becomes visible: a reader
    /// thread on SQLite's own VFS, polling while the writer commits, only ever sees whole
    /// transactions, and the connection beside the writer sees each commit once COMMIT
    /// returned; meanwhile the shim made far fewer writes than SQLite asked it for.
    #[test]
    fn commits_are_visible_whole_and_writes_are_coalesced() {
        const ROUNDS: i64 = 200;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.db");
        let w = open(&path, true);
        w.execute_batch("CREATE TABLE t (k BLOB PRIMARY KEY, n INTEGER) WITHOUT ROWID")
            .unwrap();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let poller = {
            let (path, done) = (path.clone(), done.clone());
            std::thread::spawn(move || {
                let r = open(&path, false);
                let mut seen = 0;
                while !done.load(std::sync::atomic::Ordering::Relaxed) {
                    let (count, total) = sum(&r);
                    // Each transaction adds 40 rows whose n sum to 780.
                    assert_eq!(count % 40, 0, "a partial transaction: {count} rows");
                    assert_eq!(total, count / 40 * 780, "rows of {count} read wrong");
                    seen += 1;
                }
                seen
            })
        };
        let r = open(&path, false);
        let (asked0, made0) = COUNTS.with(|c| c.get());
        let mut expect = (0, 0);
        for round in 0..ROUNDS {
            let tx = w.unchecked_transaction().unwrap();
            // Random keys, so each transaction dirties many pages (as rotations do).
            for i in 0..40i64 {
                let k = secret_key(round * 1000 + i);
                tx.execute("INSERT INTO t VALUES (?1, ?2)", params![k, i])
                    .unwrap();
                expect = (expect.0 + 1, expect.1 + i);
            }
            tx.commit().unwrap();
            assert_eq!(sum(&r), expect, "after commit {round}");
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        assert!(poller.join().unwrap() > 0);
        let (asked, made) = COUNTS.with(|c| c.get());
        assert!(
            asked - asked0 >= ROUNDS as u64 * 4,
            "asked {}",
            asked - asked0
        );
        assert!(
            (made - made0) * 4 < asked - asked0,
            "made {} for {} asked",
            made - made0,
            asked - asked0
        );
        assert_eq!(integrity(&r), "ok");
    }

    /// `count` rows with keys from `first` on, each with `n`.
    fn insert(c: &Connection, first: i64, count: i64, n: i64) {
        let mut st = c.prepare("INSERT INTO t VALUES (?1, ?2)").unwrap();
        for i in first..first + count {
            st.execute(params![secret_key(i), n]).unwrap();
        }
    }

    /// A 32-byte key in no particular order (as token hashes are).
    fn secret_key(i: i64) -> Vec<u8> {
        (1..=4u64)
            .flat_map(|m| {
                let x = (i as u64 ^ m).wrapping_mul(0x9E37_79B9_7F4A_7C15);
                (x ^ (x >> 29)).to_be_bytes()
            })
            .collect()
    }

    /// A transaction larger than the page cache spills frames it never commits; after its
    /// rollback another writer (SQLite's own VFS) commits in the same place of the WAL, and
    /// nothing the shim held may land on top of it later. Also across WAL restarts.
    #[test]
    fn rolled_back_spills_and_restarts_never_overwrite_other_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let w = open(&path, true);
        w.pragma_update(None, "cache_size", 10).unwrap();
        w.execute_batch("CREATE TABLE t (k BLOB PRIMARY KEY, n INTEGER) WITHOUT ROWID")
            .unwrap();
        let other = open(&path, false);
        other
            .busy_timeout(std::time::Duration::from_secs(5))
            .unwrap();
        let mut expect = (0, 0);
        for round in 0..6i64 {
            // Spilled, then rolled back.
            let tx = w.unchecked_transaction().unwrap();
            insert(&tx, 1_000_000 + round * 10_000, 2000, 1000);
            tx.rollback().unwrap();
            // The other writer commits where the spilled frames were.
            let k = secret_key(round);
            other
                .execute("INSERT INTO t VALUES (?1, ?2)", params![k, round])
                .unwrap();
            expect = (expect.0 + 1, expect.1 + round);
            // The shim's connection writes again (its WAL position moved under it).
            let tx = w.unchecked_transaction().unwrap();
            insert(&tx, 2_000_000 + round * 10_000, 300, 2);
            tx.commit().unwrap();
            expect = (expect.0 + 300, expect.1 + 600);
            assert_eq!(sum(&other), expect, "round {round}");
            assert_eq!(sum(&w), expect, "round {round}, the shim's own view");
            if round % 2 == 1 {
                // Back to the start of the WAL: the next commit restarts it.
                other
                    .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                    .unwrap();
            }
        }
        assert_eq!(integrity(&other), "ok");
        drop(w);
        drop(other);
        // A fresh connection, after both closed (the last one checkpoints).
        let again = open(&path, false);
        assert_eq!(sum(&again), expect);
        assert_eq!(integrity(&again), "ok");
    }
}
