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
    out: Out,
    /// Set when the guard is dropped: later lines (background threads, tasks still running
    /// while the runtime shuts down) are written straight through.
    direct: AtomicBool,
}

impl LogBuffer {
    fn new(out: Out) -> Self {
        Self {
            buf: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            out,
            direct: AtomicBool::new(false),
        }
    }

    /// Writes out whatever is buffered (under the lock, so lines keep their order).
    pub fn flush_now(&self) {
        let mut b = match self.buf.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        if !b.is_empty() {
            (self.out)(&b);
            b.clear();
        }
    }

    fn append(&self, line: &[u8]) {
        let mut b = match self.buf.lock() {
            Ok(b) => b,
            Err(p) => p.into_inner(),
        };
        b.extend_from_slice(line);
        if b.len() >= FLUSH_AT || self.direct.load(Ordering::Relaxed) {
            (self.out)(&b);
            b.clear();
        }
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
                b.flush_now();
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
