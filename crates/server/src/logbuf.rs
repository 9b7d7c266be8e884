//! The log sink: lines are appended to an in-memory buffer and written to stderr in large
//! pieces — when the buffer passes 64 KiB, and by a flusher thread every 100 ms otherwise.
//!
//! tracing's fmt layer writes each event with its own `write(2)` when given `stderr`. With one
//! access-log line per request that was ~13% of `GET /v1/me/` throughput at ~50 k requests/s
//! (measured with `CAMGATE_LOG=warn`, which also skips the line). A writer thread fed by a
//! channel (`tracing-appender`) was worse on two cores: a wake-up per line. Here a line costs
//! a mutex and a copy; the flusher wakes ten times a second. A line reaches stderr at most
//! ~100 ms after it was logged; [`FlushGuard`] writes what is left when `main` returns, and
//! after it every line is written at once.
//!
//! The `write(2)` of a full buffer happens outside the buffer's lock: the writing thread swaps
//! the full buffer for an empty one under the lock and writes it under a second lock, which it
//! takes before letting go of the first, so pieces still reach stderr in the order they
//! filled. Every worker logs every request, so on a machine with many cores a write under the
//! buffer's lock would stop all of their next lines until the system call returned.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// Buffer size past which the logging thread writes the buffer out itself.
const FLUSH_AT: usize = 64 * 1024;
/// The flusher's period.
const FLUSH_EVERY: Duration = Duration::from_millis(100);

/// Where a full or flushed buffer goes (stderr; a capture in tests).
type Out = Box<dyn Fn(&[u8]) + Send + Sync>;

/// The shared buffer.
pub struct LogBuffer {
    buf: Mutex<Vec<u8>>,
    /// The buffer being written out (empty otherwise), locked for the length of the write.
    /// Lock order: `buf`, then `writing`.
    writing: Mutex<Vec<u8>>,
    out: Out,
    /// Set when the guard is dropped: later lines (background threads, tasks still running
    /// while the runtime shuts down) are written straight through.
    direct: AtomicBool,
}

impl LogBuffer {
    fn new(out: Out) -> Self {
        Self {
            buf: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            writing: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            out,
            direct: AtomicBool::new(false),
        }
    }

    /// Writes out whatever is buffered, after a write in progress.
    pub fn flush_now(&self) {
        self.write_buffered(true);
    }

    /// Writes out whatever is buffered. `wait`: after a write in progress; else (the flusher's
    /// look) the lines are left for the next look rather than the buffer held while it waits.
    fn write_buffered(&self, wait: bool) {
        let b = lock(&self.buf);
        if b.is_empty() {
            return;
        }
        let w = if wait {
            lock(&self.writing)
        } else {
            match self.writing.try_lock() {
                Ok(w) => w,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return,
            }
        };
        Self::write_out(&self.out, b, w);
    }

    fn append(&self, line: &[u8]) {
        let mut b = lock(&self.buf);
        b.extend_from_slice(line);
        if b.len() >= FLUSH_AT || self.direct.load(Ordering::Relaxed) {
            let w = lock(&self.writing);
            Self::write_out(&self.out, b, w);
        }
    }

    /// Writes the buffer `b` out: swapped for the empty spare `w`, whose lock was taken before
    /// `b`'s is released (so pieces keep their order) and is held for the write (so the next
    /// piece waits for this one), while other threads append again.
    fn write_out(out: &Out, mut b: Guard<'_>, mut w: Guard<'_>) {
        std::mem::swap(&mut *b, &mut *w);
        drop(b);
        out(&w);
        w.clear();
    }
}

type Guard<'a> = std::sync::MutexGuard<'a, Vec<u8>>;

/// A poisoned lock still guards a valid byte buffer (a panic mid-append leaves at most a
/// partial line): logging carries on.
fn lock(m: &Mutex<Vec<u8>>) -> Guard<'_> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl Write for &LogBuffer {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.append(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The `MakeWriter` for tracing-subscriber.
#[derive(Clone)]
pub struct Buffered(Arc<LogBuffer>);

impl<'a> MakeWriter<'a> for Buffered {
    type Writer = &'a LogBuffer;
    fn make_writer(&'a self) -> &'a LogBuffer {
        &self.0
    }
}

/// Stops the flusher and writes out the rest when dropped.
pub struct FlushGuard {
    buffer: Arc<LogBuffer>,
    stop: Arc<AtomicBool>,
}

impl Drop for FlushGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.buffer.direct.store(true, Ordering::Relaxed);
        self.buffer.flush_now();
    }
}

/// A buffered sink writing to stderr, with its flusher thread running.
pub fn stderr() -> (Buffered, FlushGuard) {
    start(Box::new(|b: &[u8]| {
        // Nowhere to report a failed log write.
        let _ = std::io::stderr().lock().write_all(b);
    }))
}

/// Whether the text log format may colour its lines: only when stderr is a terminal (a file
/// or a pipe gets plain text) and `NO_COLOR` is not set, whatever its value
/// (<https://no-color.org>).
pub fn colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none()
}

fn start(out: Out) -> (Buffered, FlushGuard) {
    let buffer = Arc::new(LogBuffer::new(out));
    let stop = Arc::new(AtomicBool::new(false));
    let (b, s) = (buffer.clone(), stop.clone());
    // Without the thread, lines are still written once 64 KiB have gathered and at exit.
    let _ = std::thread::Builder::new()
        .name("camgate-log".into())
        .spawn(move || {
            while !s.load(Ordering::Relaxed) {
                std::thread::sleep(FLUSH_EVERY);
                b.write_buffered(false);
            }
        });
    (Buffered(buffer.clone()), FlushGuard { buffer, stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture() -> (Buffered, FlushGuard, Arc<Mutex<Vec<Vec<u8>>>>) {
        let writes = Arc::new(Mutex::new(Vec::new()));
        let w = writes.clone();
        let (sink, guard) = start(Box::new(move |b: &[u8]| {
            w.lock().unwrap().push(b.to_vec());
        }));
        (sink, guard, writes)
    }

    /// Colour needs a terminal, and any `NO_COLOR`, even an empty one, turns it off.
    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        use std::ffi::OsStr;
        assert!(colour(true, None));
        assert!(!colour(false, None));
        assert!(!colour(true, Some(OsStr::new("1"))));
        assert!(!colour(true, Some(OsStr::new(""))));
        assert!(!colour(false, Some(OsStr::new("1"))));
    }

    /// While a full buffer is being written, other threads' lines go into the buffer instead
    /// of waiting for the write; they are written after it, in order.
    #[test]
    fn lines_are_appended_while_a_full_buffer_is_written() {
        let (started, writing) = std::sync::mpsc::channel::<()>();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let released = Mutex::new(released);
        let writes = Arc::new(Mutex::new(Vec::<Vec<u8>>::new()));
        let w = writes.clone();
        let (sink, guard) = start(Box::new(move |b: &[u8]| {
            let first = w.lock().unwrap().is_empty();
            w.lock().unwrap().push(b.to_vec());
            if first {
                // The first write blocks until the test lets it go.
                started.send(()).unwrap();
                released.lock().unwrap().recv().unwrap();
            }
        }));
        let full = vec![b'a'; FLUSH_AT];
        let s2 = sink.clone();
        let filler = std::thread::spawn(move || s2.make_writer().write_all(&full).unwrap());
        writing.recv().unwrap();
        // The write is in progress: a line from another thread must not wait for it.
        let (appended, done) = std::sync::mpsc::channel::<()>();
        let s3 = sink.clone();
        let liner = std::thread::spawn(move || {
            s3.make_writer().write_all(b"b\n").unwrap();
            appended.send(()).unwrap();
        });
        let waited = done.recv_timeout(Duration::from_secs(30));
        release.send(()).unwrap();
        filler.join().unwrap();
        liner.join().unwrap();
        assert!(waited.is_ok(), "a line waited for another thread's write");
        drop(guard);
        let mut expected = vec![b'a'; FLUSH_AT];
        expected.extend_from_slice(b"b\n");
        assert_eq!(writes.lock().unwrap().concat(), expected);
    }

    /// Lines are gathered into few writes, in order, and nothing is lost: the flusher writes
    /// small amounts within its period, a full buffer is written at once, the guard writes
    /// the rest.
    #[test]
    fn lines_are_batched_in_order_and_flushed() {
        let (sink, guard, writes) = capture();
        let mut w = sink.make_writer();
        w.write_all(b"one\n").unwrap();
        w.write_all(b"two\n").unwrap();
        std::thread::sleep(FLUSH_EVERY * 3);
        assert_eq!(writes.lock().unwrap().concat(), b"one\ntwo\n");
        assert_eq!(writes.lock().unwrap().len(), 1, "one write for both lines");
        let line = vec![b'x'; 1000];
        let mut expected = b"one\ntwo\n".to_vec();
        for _ in 0..100 {
            w.write_all(&line).unwrap();
            expected.extend_from_slice(&line);
        }
        w.write_all(b"last\n").unwrap();
        expected.extend_from_slice(b"last\n");
        drop(guard);
        {
            let got = writes.lock().unwrap();
            assert_eq!(got.concat(), expected);
            assert!(got.len() <= 4, "{} writes", got.len());
        }
        // After the guard, lines go straight through.
        w.write_all(b"late\n").unwrap();
        expected.extend_from_slice(b"late\n");
        assert_eq!(writes.lock().unwrap().concat(), expected);
    }
}
