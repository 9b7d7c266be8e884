//! The ceiling for password grants: how many argon2id hashes per second this machine does with
//! the server's parameters (m = 19456 KiB, t = 2, p = 1), one hashing thread per core, no HTTP,
//! no database.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use argon2::password_hash::{rand_core::OsRng, PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

pub const M_COST_KIB: u32 = 19456;
pub const T_COST: u32 = 2;
pub const P_COST: u32 = 1;

pub struct HashRate {
    pub threads: usize,
    pub hashes: u64,
    pub window: Duration,
    /// CPU time this process used during the window (the hashing threads: nothing else runs).
    pub cpu_secs: f64,
}

impl HashRate {
    pub fn per_sec(&self) -> f64 {
        self.hashes as f64 / self.window.as_secs_f64().max(1e-9)
    }

    /// Hashes per CPU-second: independent of how much CPU other tenants of the machine took.
    pub fn per_cpu_sec(&self) -> f64 {
        if self.cpu_secs <= 0.0 {
            return f64::NAN;
        }
        self.hashes as f64 / self.cpu_secs
    }

    /// Time of one hash on one thread, in ms.
    pub fn ms_per_hash(&self) -> f64 {
        if self.hashes == 0 {
            return f64::NAN;
        }
        self.window.as_secs_f64() * 1000.0 * self.threads as f64 / self.hashes as f64
    }
}

fn hasher() -> anyhow::Result<Argon2<'static>> {
    let p = Params::new(M_COST_KIB, T_COST, P_COST, None).map_err(|e| anyhow!("argon2: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
}

fn hash_once(a: &Argon2<'_>) -> anyhow::Result<()> {
    let salt = SaltString::generate(&mut OsRng);
    a.hash_password(b"correct horse battery staple", &salt)
        .map_err(|e| anyhow!("argon2: {e}"))?;
    Ok(())
}

/// Hashes on `threads` OS threads for `warmup`, then counts hashes completed in `duration`.
/// Blocking: call it from `spawn_blocking` or outside the runtime.
pub fn measure(threads: usize, warmup: Duration, duration: Duration) -> anyhow::Result<HashRate> {
    let count = Arc::new(AtomicU64::new(0));
    let start = Instant::now() + warmup;
    let end = start + duration;
    let handles: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let count = count.clone();
            std::thread::spawn(move || -> anyhow::Result<()> {
                let a = hasher()?;
                while Instant::now() < end {
                    hash_once(&a)?;
                    let done = Instant::now();
                    if done >= start && done < end {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(())
            })
        })
        .collect();
    std::thread::sleep(start.saturating_duration_since(Instant::now()));
    let ticks_start = crate::sys::cpu_ticks("self").unwrap_or(0);
    std::thread::sleep(end.saturating_duration_since(Instant::now()));
    let ticks_end = crate::sys::cpu_ticks("self").unwrap_or(0);
    for h in handles {
        h.join().map_err(|_| anyhow!("hashing thread panicked"))??;
    }
    Ok(HashRate {
        threads: threads.max(1),
        hashes: count.load(Ordering::Relaxed),
        window: duration,
        cpu_secs: ticks_end.saturating_sub(ticks_start) as f64 / crate::sys::TICKS_PER_SEC,
    })
}
