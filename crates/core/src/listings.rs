//! Camera listings answered from memory.
//!
//! A listing (a page of a user's cameras, in a dialect's shape) is rebuilt only when what it
//! shows may have changed. Every request still authenticates and reads the user's listing
//! version, one row the database keeps with triggers (`CameraStore::camera_listing_version`:
//! any change to the user's cameras, to a share they hold, to a camera shared with them or to
//! its owner's name moves it), so a change made on any node shows on the next request on every
//! node. An answer is kept at most a quarter of the signed media URLs' lifetime: every URL in
//! it had at least half its lifetime left when it was built (the media cache re-signs after
//! that), so none served from here has less than a quarter left.
//!
//! Kept per node, by the caller's identity (user, client, device binding, actor, scopes), the
//! request's base URL and its parameters; bounded in bytes (`camera_listing_cache_bytes`, 8 MiB
//! by default), a shard emptied when full. Measured in BENCHMARKS.md ("Camera listings").

use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::sync::Mutex;

use bytes::Bytes;

use crate::clock::Timestamp;
use crate::error::ApiError;
use crate::model::UserId;
use crate::principal::Principal;
use crate::Core;

const SHARDS: usize = 16;
/// Bytes of answers kept per node by default, all shards together
/// (`camera_listing_cache_bytes`).
pub const DEFAULT_BUDGET: usize = 8 << 20;

struct Entry {
    version: i64,
    until: Timestamp,
    body: Bytes,
}

#[derive(Default)]
struct Shard {
    map: HashMap<String, Entry>,
    bytes: usize,
}

pub struct ListingCache {
    hasher: RandomState,
    shards: Vec<Mutex<Shard>>,
    /// Bytes per shard.
    shard_budget: usize,
}

impl ListingCache {
    /// A cache of at most `budget` bytes (0: keeps nothing).
    pub fn new(budget: usize) -> Self {
        Self {
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            shard_budget: budget / SHARDS,
        }
    }

    fn shard(&self, key: &str) -> std::sync::MutexGuard<'_, Shard> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, key: &str, version: i64, now: Timestamp) -> Option<Bytes> {
        let s = self.shard(key);
        s.map
            .get(key)
            .filter(|e| e.version == version && now < e.until)
            .map(|e| e.body.clone())
    }

    fn put(&self, key: String, entry: Entry) {
        let size = key.len() + entry.body.len();
        if size > self.shard_budget / 4 {
            return; // one answer may not crowd out the rest
        }
        let mut s = self.shard(&key);
        if s.bytes + size > self.shard_budget {
            s.map.clear();
            s.bytes = 0;
        }
        if let Some(old) = s.map.insert(key, entry) {
            s.bytes = s.bytes.saturating_sub(old.body.len());
        }
        s.bytes += size;
    }
}

/// What distinguishes one caller's answers from another's.
fn caller_key(p: &Principal) -> String {
    format!(
        "{}|{}|{:?}|{:?}|{:?}",
        p.user.as_ref().map_or(0, |u| u.id),
        p.client.as_ref().map_or("", |c| c.client_id.as_str()),
        p.camera,
        p.actor,
        p.scopes,
    )
}

/// What a listing shows, so which version it is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listed {
    /// One user's cameras, own and shared with them (`camera_listing_version`).
    Cameras(UserId),
    /// A CAM2 search, which may show any camera (`camera_search_version`).
    Search,
}

impl Core {
    /// The answer to a camera listing for caller `p`: from memory when the same listing
    /// (`request`: the dialect, base URL and parameters) was built for the same caller at the
    /// current version of what it shows and is still fresh, else `build()`, kept.
    pub async fn camera_listing<F, Fut>(
        &self,
        p: &Principal,
        listed: Listed,
        request: &str,
        build: F,
    ) -> Result<Bytes, ApiError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Vec<u8>, ApiError>>,
    {
        if self.listing_cache.shard_budget == 0 {
            return Ok(Bytes::from(build().await?));
        }
        // Read before building: a change racing with the build leaves the entry at the older
        // version, so the next request rebuilds.
        let version = match listed {
            Listed::Cameras(user) => self.store.camera_listing_version(user).await?,
            Listed::Search => self.store.camera_search_version().await?,
        };
        let now = self.now();
        let key = format!("{}|{listed:?}|{request}", caller_key(p));
        if let Some(body) = self.listing_cache.get(&key, version, now) {
            return Ok(body);
        }
        let body = Bytes::from(build().await?);
        let keep = self.settings.media_url_ttl_secs / 4;
        if keep > 0 {
            self.listing_cache.put(
                key,
                Entry {
                    version,
                    until: now + keep,
                    body: body.clone(),
                },
            );
        }
        Ok(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: i64, until: Timestamp, body: &'static [u8]) -> Entry {
        Entry {
            version,
            until,
            body: Bytes::from_static(body),
        }
    }

    #[test]
    fn an_answer_is_kept_for_its_version_until_it_expires() {
        let c = ListingCache::new(DEFAULT_BUDGET);
        c.put("k".into(), entry(3, 100, b"page"));
        assert_eq!(c.get("k", 3, 99).as_deref(), Some(&b"page"[..]));
        assert_eq!(c.get("k", 4, 99), None, "another version");
        assert_eq!(c.get("k", 3, 100), None, "expired");
        assert_eq!(c.get("other", 3, 99), None);
    }

    #[test]
    fn the_cache_stays_within_its_budget() {
        let c = ListingCache::new(DEFAULT_BUDGET);
        static BIG: [u8; 64 << 10] = [b'x'; 64 << 10];
        for i in 0..2_000 {
            c.put(format!("k{i}"), entry(1, 100, &BIG));
        }
        let total: usize = c
            .shards
            .iter()
            .map(|s| s.lock().map(|s| s.bytes).unwrap_or(0))
            .sum();
        assert!(total <= DEFAULT_BUDGET, "{total} bytes kept");
        assert!(total > 0);
        // An answer over a quarter of a shard's share is never kept.
        static HUGE: [u8; DEFAULT_BUDGET / SHARDS] = [b'y'; DEFAULT_BUDGET / SHARDS];
        c.put("huge".into(), entry(1, 100, &HUGE));
        assert_eq!(c.get("huge", 1, 0), None);
        // Budget 0: nothing kept.
        let off = ListingCache::new(0);
        off.put("k".into(), entry(1, 100, b"page"));
        assert_eq!(off.get("k", 1, 0), None);
    }
}
