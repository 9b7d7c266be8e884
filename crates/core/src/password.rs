//! Password hashing with argon2id (OWASP parameters: m = 19456 KiB, t = 2, p = 1).
//!
//! Hashing is CPU-bound for ~15 ms, so it never runs on the async runtime: it runs on the
//! hasher's own worker threads (one per permit of a semaphore sized to the cores), with a
//! bounded queue. When the queue is full the caller gets [`HashError::Busy`] at once (answered
//! 503 + Retry-After) instead of piling up unbounded work. A login for an unknown user still
//! verifies against a dummy hash, so response time does not reveal which emails exist.
//!
//! The workers run at the lowest CPU priority (config `hash_nice`, 0..=19; the default, 19,
//! also puts them in Linux's `SCHED_IDLE` class): a login storm then takes the CPU time the
//! rest of the server leaves, instead of half of it. On two cores, two busy hashing threads at
//! the same priority as the request threads left `GET /v1/me/` at 41% of its idle throughput
//! and made even the storm's quick 503 refusals wait for a core. A nice value only weights the
//! share (19: 15 against 1024); `SCHED_IDLE` threads run only when no normal thread wants the
//! core, and a normal thread that wakes preempts them at once — which is what a request thread
//! woken by its socket needs (ARCHITECTURE.md, decision 79, has the measurements and the
//! trade). When nothing else runs they still get whole cores, so the password grant's own
//! throughput is unchanged. Lowering priority needs no privilege; it is per thread on Linux
//! (setpriority(2), "BUGS"; sched(7)).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use argon2::password_hash::{rand_core::OsRng, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Params, PasswordVerifier, Version};
use tokio::sync::Semaphore;

/// Default nice value of the hashing threads (see the module notes).
pub const DEFAULT_NICE: i32 = 19;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    #[error("password hashing queue is full")]
    Busy,
    #[error("password hashing failed")]
    Failed,
}

#[derive(Debug, Clone, Copy)]
pub struct HashParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        // OWASP Password Storage Cheat Sheet, argon2id option 2.
        Self {
            m_cost_kib: 19456,
            t_cost: 2,
            p_cost: 1,
        }
    }
}

fn argon2(params: HashParams) -> Result<Argon2<'static>, HashError> {
    let p = Params::new(params.m_cost_kib, params.t_cost, params.p_cost, None)
        .map_err(|_| HashError::Failed)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

/// Process-wide argon2 working memory (19 MiB per buffer with the default parameters), reused
/// by every hash and verification: glibc keeps freed buffers of that size resident in the
/// arenas of the threads that freed them (after the first `munmap` it raises its mmap
/// threshold), so allocating one per call left the server at 70 MB idle after `--demo` seeding
/// and past 100 MB under load. At most one buffer per core is kept.
static BLOCKS: std::sync::Mutex<Vec<Vec<argon2::Block>>> = std::sync::Mutex::new(Vec::new());

/// How many argon2 buffers are kept, so how many hashes a batch (seeding, imports) runs side
/// by side without allocating working memory it would then drop: one per core, at least two.
pub fn parallel_hashes() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2)
}

/// Runs `prepare` (validation and a hash) on every input, [`parallel_hashes`] at a time, then
/// `store` on each result in the inputs' order: a batch hashes side by side and its rows keep
/// the order given. An input refused by `prepare` stores nothing; an error while storing keeps
/// what was stored before it.
pub(crate) async fn hash_then_store<I, P, T, E, FP, FS>(
    inputs: Vec<I>,
    prepare: impl FnMut(I) -> FP,
    mut store: impl FnMut(P) -> FS,
) -> Result<Vec<T>, E>
where
    FP: std::future::Future<Output = Result<P, E>>,
    FS: std::future::Future<Output = Result<T, E>>,
{
    use futures_util::{StreamExt as _, TryStreamExt as _};
    let prepared: Vec<P> = futures_util::stream::iter(inputs.into_iter().map(prepare))
        .buffered(parallel_hashes())
        .try_collect()
        .await?;
    let mut out = Vec::with_capacity(prepared.len());
    for p in prepared {
        out.push(store(p).await?);
    }
    Ok(out)
}

fn with_blocks<T>(f: impl FnOnce(&mut Vec<argon2::Block>) -> T) -> T {
    let mut blocks = BLOCKS
        .lock()
        .ok()
        .and_then(|mut p| p.pop())
        .unwrap_or_default();
    let out = f(&mut blocks);
    let keep = parallel_hashes();
    if let Ok(mut p) = BLOCKS.lock() {
        if p.len() < keep {
            p.push(blocks);
        }
    }
    out
}

/// The argon2id PHC string of `out` (the crate's own `hash_password` format).
fn phc_string(p: &Params, salt: &SaltString, out: &[u8]) -> Result<String, HashError> {
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: argon2::password_hash::ParamsString::try_from(p).map_err(|_| HashError::Failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(argon2::password_hash::Output::new(out).map_err(|_| HashError::Failed)?),
    };
    Ok(phc.to_string())
}

/// Hashes synchronously (CLI use, and inside the pool), in pooled working memory.
pub fn hash_blocking(params: HashParams, password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    let a = argon2(params)?;
    let p = a.params().clone();
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(|_| HashError::Failed)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let n = p.block_count();
    with_blocks(|blocks| {
        if blocks.len() < n {
            blocks.resize(n, argon2::Block::default());
        }
        a.hash_password_into_with_memory(
            password.as_bytes(),
            salt_bytes,
            &mut out,
            &mut blocks[..n],
        )
    })
    .map_err(|_| HashError::Failed)?;
    phc_string(&p, &salt, &out)
}

/// A PHC string with `params`, a random salt and a random output: verifying any password
/// against it costs one full argon2id computation with those parameters (what an unknown
/// user's login must cost) and never succeeds. No hash is computed to make it, so start-up
/// neither spends ~20 ms of CPU nor leaves a 19 MiB working buffer resident.
fn dummy_phc(params: HashParams) -> Result<String, HashError> {
    use argon2::password_hash::rand_core::RngCore;
    let salt = SaltString::generate(&mut OsRng);
    let p = argon2(params)?.params().clone();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    OsRng.fill_bytes(&mut out);
    phc_string(&p, &salt, &out)
}

/// Verifies synchronously against a PHC string (parameters are read from the string).
pub fn verify_blocking(phc: &str, password: &str) -> bool {
    with_blocks(|blocks| verify_with(phc, password, blocks))
}

/// Verifies using `blocks` as argon2's working memory (grown as the parameters need), so a
/// pool of workers reuses a few buffers instead of allocating 19 MiB per login. Freed
/// buffers of that size are kept resident by glibc's per-thread arenas: allocating per call
/// drove peak RSS past 500 MB under load.
pub fn verify_with(phc: &str, password: &str, blocks: &mut Vec<argon2::Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    if parsed.algorithm != argon2::ARGON2ID_IDENT {
        // Anything else (argon2i/d) takes the crate's general path.
        return Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
    }
    let (Ok(params), Some(salt), Some(expected)) =
        (Params::try_from(&parsed), parsed.salt, parsed.hash)
    else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    let version = parsed
        .version
        .and_then(|v| Version::try_from(v).ok())
        .unwrap_or(Version::V0x13);
    let block_count = params.block_count();
    if blocks.len() < block_count {
        blocks.resize(block_count, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let a = Argon2::new(Algorithm::Argon2id, version, params);
    if a.hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        &mut out,
        &mut blocks[..block_count],
    )
    .is_err()
    {
        return false;
    }
    subtle::ConstantTimeEq::ct_eq(out.as_slice(), expected.as_bytes()).into()
}

/// Work for a hashing thread.
type HashJob = Box<dyn FnOnce() + Send>;

/// The hashing threads, started on first use.
struct Workers {
    tx: Mutex<mpsc::Sender<HashJob>>,
}

impl Workers {
    fn start(n: usize, nice: i32) -> Result<Self, HashError> {
        let (tx, rx) = mpsc::channel::<HashJob>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..n {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || {
                    lower_priority(nice);
                    loop {
                        let job = match rx.lock() {
                            Ok(r) => r.recv(),
                            Err(_) => return,
                        };
                        match job {
                            // A panic (a bug) fails that hash alone; the thread goes on.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })
                .map_err(|_| HashError::Failed)?;
        }
        Ok(Self { tx: Mutex::new(tx) })
    }
}

/// Raises this thread's nice value to `nice` (a lower priority; 0 leaves it alone); 19 means
/// the `SCHED_IDLE` class where the system allows it (else nice 19).
fn lower_priority(nice: i32) {
    if nice <= 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        if nice >= 19 {
            use thread_priority::unix::{
                set_thread_priority_and_policy, thread_native_id, NormalThreadSchedulePolicy,
                ThreadSchedulePolicy,
            };
            let r = set_thread_priority_and_policy(
                thread_native_id(),
                thread_priority::ThreadPriority::Min,
                ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
            );
            if r.is_ok() {
                return;
            }
        }
        let tid = rustix::thread::gettid();
        if let Err(e) = rustix::process::setpriority_process(Some(tid), nice.min(19)) {
            tracing::debug!(error = %e, "could not lower the hashing thread's priority");
        }
    }
}

/// The bounded hashing pool.
pub struct PasswordHasher {
    params: HashParams,
    permits: Arc<Semaphore>,
    queued: Arc<AtomicUsize>,
    max_queue: usize,
    workers: usize,
    nice: i32,
    /// Started on first use; a failed start (e.g. EAGAIN) is retried by the next hash.
    threads: Mutex<Option<Arc<Workers>>>,
    dummy_hash: String,
}

impl PasswordHasher {
    /// `workers` hashes run at once; at most `max_queue` more wait.
    pub fn new(params: HashParams, workers: usize, max_queue: usize) -> Result<Self, HashError> {
        let dummy_hash = dummy_phc(params)?;
        Ok(Self {
            params,
            permits: Arc::new(Semaphore::new(workers.max(1))),
            queued: Arc::new(AtomicUsize::new(0)),
            max_queue,
            workers: workers.max(1),
            nice: DEFAULT_NICE,
            threads: Mutex::new(None),
            dummy_hash,
        })
    }

    fn threads(&self) -> Result<Arc<Workers>, HashError> {
        let mut t = self.threads.lock().map_err(|_| HashError::Failed)?;
        if let Some(w) = &*t {
            return Ok(w.clone());
        }
        let w = Arc::new(Workers::start(self.workers, self.nice)?);
        *t = Some(w.clone());
        Ok(w)
    }

    /// The hashing threads' nice value (0..=19; 0 = the server's own priority).
    pub fn with_nice(mut self, nice: i32) -> Self {
        self.nice = nice.clamp(0, 19);
        self
    }

    /// Gives back the pooled argon2 working memory (19 MiB per buffer). Meant for after a
    /// one-off burst such as `--demo` seeding; the next hash allocates again.
    pub fn release_memory(&self) {
        if let Ok(mut p) = BLOCKS.lock() {
            p.clear();
        }
    }

    pub fn params(&self) -> HashParams {
        self.params
    }

    /// Requests waiting or running right now (for metrics).
    pub fn depth(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// Takes a place in the queue now, for a hash the caller will ask for later: `Busy` at once
    /// when the queue is full. A request that gets a ticket is sure to be hashed, so a caller
    /// can refuse surplus work before doing anything else for it (the password grant reserves
    /// before authenticating the client or looking the user up). Dropping the ticket gives the
    /// place back.
    pub fn reserve(&self) -> Result<HashTicket, HashError> {
        let in_flight = self.queued.fetch_add(1, Ordering::SeqCst);
        if in_flight >= self.max_queue + self.workers {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        }
        Ok(HashTicket {
            _place: QueueGuard(self.queued.clone()),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let ticket = self.reserve()?;
        self.run_reserved(ticket, f).await
    }

    async fn run_reserved<T: Send + 'static>(
        &self,
        ticket: HashTicket,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let guard = ticket;
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| HashError::Failed)?;
        let threads = self.threads()?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: HashJob = Box::new(move || {
            let r = f();
            drop(permit);
            let _ = reply.send(r);
        });
        threads
            .tx
            .lock()
            .map_err(|_| HashError::Failed)?
            .send(job)
            .map_err(|_| HashError::Failed)?;
        // A job that panicked drops its reply sender: that hash failed (the thread goes on).
        let out = answer.await.map_err(|_| HashError::Failed);
        drop(guard);
        out
    }

    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        let params = self.params;
        self.run(move || hash_blocking(params, &password)).await?
    }

    /// Verifies `password` against `phc`, or against a dummy hash when `phc` is `None` (unknown
    /// user), so both cases cost the same. Returns false for the dummy.
    pub async fn verify(&self, phc: Option<String>, password: String) -> Result<bool, HashError> {
        let ticket = self.reserve()?;
        self.verify_reserved(ticket, phc, password).await
    }

    /// [`PasswordHasher::verify`] in a place reserved earlier ([`PasswordHasher::reserve`]).
    pub async fn verify_reserved(
        &self,
        ticket: HashTicket,
        phc: Option<String>,
        password: String,
    ) -> Result<bool, HashError> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy_hash.clone());
        let ok = self
            .run_reserved(ticket, move || verify_blocking(&phc, &password))
            .await?;
        Ok(ok && known)
    }
}

/// A place in the hashing queue ([`PasswordHasher::reserve`]).
pub struct HashTicket {
    _place: QueueGuard,
}

struct QueueGuard(Arc<AtomicUsize>);
impl Drop for QueueGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::PasswordHasher as _;

    fn cheap() -> HashParams {
        HashParams {
            m_cost_kib: 64,
            t_cost: 1,
            p_cost: 1,
        }
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(cheap(), 2, 8).unwrap();
        let phc = h.hash("pw".into()).await.unwrap();
        assert!(phc.starts_with("$argon2id$"));
        assert!(h.verify(Some(phc.clone()), "pw".into()).await.unwrap());
        assert!(!h.verify(Some(phc), "nope".into()).await.unwrap());
        assert!(!h
            .verify(None, "camgate-dummy-password".into())
            .await
            .unwrap());
    }

    /// A reservation counts in the queue until used or dropped: with every place reserved,
    /// other callers are refused at once, and a reserved verification still runs.
    #[tokio::test]
    async fn reservations_hold_places() {
        let h = PasswordHasher::new(cheap(), 1, 1).unwrap();
        let phc = h.hash("pw".into()).await.unwrap();
        let a = h.reserve().unwrap();
        let b = h.reserve().unwrap();
        assert_eq!(h.depth(), 2);
        assert_eq!(h.reserve().err(), Some(HashError::Busy));
        assert_eq!(
            h.verify(Some(phc.clone()), "pw".into()).await,
            Err(HashError::Busy)
        );
        drop(b);
        assert_eq!(h.depth(), 1);
        assert!(h
            .verify_reserved(a, Some(phc.clone()), "pw".into())
            .await
            .unwrap());
        assert_eq!(h.depth(), 0);
        assert!(h.verify(Some(phc), "pw".into()).await.unwrap());
    }

    /// Hashes run on the hasher's own threads, at the configured (lower) priority, and the
    /// calling thread's priority is left alone.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashing_threads_run_at_the_configured_nice() {
        let prio = || rustix::process::getpriority_process(Some(rustix::thread::gettid())).unwrap();
        let before = prio();
        // Not the default (19), so the setting is seen to take effect; raising a nice value
        // needs no privilege when the test itself runs at 15 or less.
        let h = PasswordHasher::new(cheap(), 2, 8).unwrap().with_nice(15);
        let (worker_nice, name) = h
            .run(move || (prio(), std::thread::current().name().map(str::to_string)))
            .await
            .unwrap();
        if before <= 15 {
            assert_eq!(worker_nice, 15);
        }
        // The default, 19, is the SCHED_IDLE class.
        let idle = PasswordHasher::new(cheap(), 1, 8).unwrap();
        let policy = idle
            .run(|| thread_priority::unix::thread_schedule_policy().unwrap())
            .await
            .unwrap();
        assert_eq!(
            policy,
            thread_priority::unix::ThreadSchedulePolicy::Normal(
                thread_priority::unix::NormalThreadSchedulePolicy::Idle
            )
        );
        assert!(name.unwrap_or_default().starts_with("argon2-"));
        assert_eq!(prio(), before);
        // A hash still works on those threads.
        let phc = h.hash("pw".into()).await.unwrap();
        assert!(h.verify(Some(phc), "pw".into()).await.unwrap());
    }

    /// The dummy hash has the configured parameters (so an unknown user's login costs what a
    /// known one's does) and verifies nothing, not even the old dummy password.
    #[test]
    fn dummy_hash_has_the_parameters_and_matches_nothing() {
        let h = PasswordHasher::new(cheap(), 1, 1).unwrap();
        assert!(
            h.dummy_hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
            "{}",
            h.dummy_hash
        );
        let parsed = PasswordHash::new(&h.dummy_hash).unwrap();
        assert_eq!(parsed.hash.unwrap().len(), Params::DEFAULT_OUTPUT_LEN);
        for pw in ["", "camgate-dummy-password", "secret"] {
            assert!(!verify_blocking(&h.dummy_hash, pw));
        }
    }

    /// The pooled hashing path writes the PHC string the argon2 crate writes itself, which
    /// the crate's own verifier accepts (and a hash from the crate verifies here).
    #[test]
    fn pooled_hash_is_standard_phc() {
        let phc = hash_blocking(cheap(), "secret").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        assert!(Argon2::default()
            .verify_password(b"secret", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"other", &parsed)
            .is_err());
        let theirs = argon2(cheap())
            .unwrap()
            .hash_password(b"secret", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert!(verify_blocking(&theirs, "secret"));
        assert!(!verify_blocking(&theirs, "other"));
        // Two hashes of one password differ (fresh salt each time).
        assert_ne!(phc, hash_blocking(cheap(), "secret").unwrap());
    }

    #[tokio::test]
    async fn full_queue_is_refused() {
        let h = Arc::new(PasswordHasher::new(HashParams::default(), 1, 0).unwrap());
        // One running is allowed (max_queue 0 counts only waiters beyond the workers).
        let h2 = h.clone();
        let first = tokio::spawn(async move { h2.hash("a".into()).await });
        tokio::task::yield_now().await;
        // While the first holds the only slot, a second is refused at once.
        let mut refused = false;
        for _ in 0..50 {
            if h.depth() > 0 {
                refused = h.hash("b".into()).await == Err(HashError::Busy);
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        assert!(refused);
        assert!(first.await.unwrap().is_ok());
    }
}
