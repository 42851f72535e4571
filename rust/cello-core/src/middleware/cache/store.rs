//! The response cache's memory: a least-recently-used map of whole
//! responses with a byte budget, and the tag generations that invalidate
//! entries in every worker of a server.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, HeaderName};
use xxhash_rust::xxh3::xxh3_64;

use crate::shared_memory::SharedSlots;

/// How many generation counters tags hash into. Two tags that share a slot
/// invalidate each other's entries: harmless (a miss too many), and rare
/// with this many slots.
pub const TAG_SLOTS: usize = 4096;

/// A generation counter per tag slot, in memory the forked workers share:
/// invalidating a tag bumps its counter once, and every worker's entries
/// that recorded the old value are stale from then on.
pub struct TagGenerations {
    slots: SharedSlots,
}

impl TagGenerations {
    pub fn new() -> io::Result<Self> {
        Ok(TagGenerations {
            slots: SharedSlots::new(TAG_SLOTS)?,
        })
    }

    /// The generations shared by every cache of this process and of the
    /// workers it forks. Made by the first cache layer (which an app builds
    /// before `run()` forks), or by the first invalidation.
    pub fn shared() -> io::Result<Arc<TagGenerations>> {
        static SHARED: OnceLock<Arc<TagGenerations>> = OnceLock::new();
        if let Some(made) = SHARED.get() {
            return Ok(made.clone());
        }
        let made = Arc::new(TagGenerations::new()?);
        Ok(SHARED.get_or_init(|| made).clone())
    }

    fn slot_of(&self, tag: &str) -> usize {
        (xxh3_64(tag.as_bytes()) % self.slots.len() as u64) as usize
    }

    /// The slot and current generation of each tag.
    pub fn stamp(&self, tags: &[String]) -> Vec<(usize, u64)> {
        tags.iter()
            .map(|tag| {
                let slot = self.slot_of(tag);
                (slot, self.slots.slots()[slot].load(Ordering::Acquire))
            })
            .collect()
    }

    /// Whether every recorded generation is still current.
    pub fn current(&self, stamp: &[(usize, u64)]) -> bool {
        stamp.iter().all(|&(slot, generation)| {
            self.slots.slots()[slot].load(Ordering::Acquire) == generation
        })
    }

    /// Makes every entry tagged `tag`, in every worker, stale.
    pub fn invalidate(&self, tag: &str) {
        self.slots.slots()[self.slot_of(tag)].fetch_add(1, Ordering::AcqRel);
    }
}

impl std::fmt::Debug for TagGenerations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TagGenerations({})", self.slots.len())
    }
}

/// One stored response.
#[derive(Debug)]
pub struct Entry {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub stored_at: Instant,
    pub ttl: Duration,
    /// The handler chose the response's `Cache-Control`: a hit keeps it
    /// rather than stating the remaining lifetime.
    pub own_cache_control: bool,
    /// The generation of each of the entry's tags when it was stored.
    pub tags: Vec<(usize, u64)>,
}

impl Entry {
    /// Time left before the entry expires, None once it has.
    pub fn remaining(&self, now: Instant) -> Option<Duration> {
        let age = now.saturating_duration_since(self.stored_at);
        self.ttl.checked_sub(age).filter(|left| !left.is_zero())
    }

    /// Bytes the entry is charged for: its body, its headers and its key.
    fn size(&self, key: &[u8]) -> usize {
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 32)
            .sum();
        self.body.len() + headers + key.len() * 2 + std::mem::size_of::<Entry>() + 64
    }
}

/// The bounds of one store.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_bytes: usize,
    pub max_entries: usize,
    /// An entry charged more than this is not stored.
    pub max_entry_bytes: usize,
}

/// Appends `part` with its length in front, so no two different lists of
/// parts make the same key.
fn push_part(key: &mut Vec<u8>, part: &[u8]) {
    key.extend_from_slice(&(part.len() as u32).to_le_bytes());
    key.extend_from_slice(part);
}

/// The key of a request before `Vary` is known: the method a stored
/// response answers (HEAD reads GET's), the origin the client addressed
/// (scheme and `Host`: a page built for one host is never served to
/// another), path, query and, when the cache is per user, the user.
pub fn base_key(
    method: &str,
    origin: &[u8],
    path: &str,
    query: &str,
    user: Option<&str>,
) -> Vec<u8> {
    let mut key = Vec::with_capacity(20 + method.len() + origin.len() + path.len() + query.len());
    push_part(&mut key, method.as_bytes());
    push_part(&mut key, origin);
    push_part(&mut key, path.as_bytes());
    push_part(&mut key, query.as_bytes());
    match user {
        Some(user) => {
            key.push(1);
            push_part(&mut key, user.as_bytes());
        }
        None => key.push(0),
    }
    key
}

/// The full key: the base and the request's values of the headers the
/// response varies on (a header that is absent differs from an empty one).
pub fn full_key(base: &[u8], vary: &[HeaderName], request: &HeaderMap) -> Vec<u8> {
    let mut key = base.to_vec();
    for name in vary {
        push_part(&mut key, name.as_str().as_bytes());
        let mut values = request.get_all(name).iter().peekable();
        if values.peek().is_none() {
            key.push(0);
            continue;
        }
        key.push(1);
        let mut joined = Vec::new();
        for (i, value) in values.enumerate() {
            if i > 0 {
                joined.push(b',');
            }
            joined.extend_from_slice(value.as_bytes());
        }
        push_part(&mut key, &joined);
    }
    key
}

struct Stored {
    entry: Arc<Entry>,
    base: Vec<u8>,
    size: usize,
    /// When it was last used: its place in `Inner::recency`.
    tick: u64,
}

/// The `Vary` names of the responses stored under one base key.
struct Variants {
    vary: Arc<[HeaderName]>,
    entries: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Vec<u8>, Stored>,
    /// Keys by last use, least recent first.
    recency: BTreeMap<u64, Vec<u8>>,
    variants: HashMap<Vec<u8>, Variants>,
    bytes: usize,
    tick: u64,
    last_sweep: Option<Instant>,
}

impl Inner {
    fn remove(&mut self, key: &[u8]) {
        let Some(stored) = self.entries.remove(key) else {
            return;
        };
        self.recency.remove(&stored.tick);
        self.bytes -= stored.size;
        if let Some(variants) = self.variants.get_mut(&stored.base) {
            variants.entries -= 1;
            if variants.entries == 0 {
                self.variants.remove(&stored.base);
            }
        }
    }

    fn touch(&mut self, key: &[u8]) {
        self.tick += 1;
        let tick = self.tick;
        if let Some(stored) = self.entries.get_mut(key) {
            if let Some(owned) = self.recency.remove(&stored.tick) {
                stored.tick = tick;
                self.recency.insert(tick, owned);
            }
        }
    }

    /// Drops every expired or invalidated entry.
    fn sweep(&mut self, now: Instant, tags: &TagGenerations) {
        let dead: Vec<Vec<u8>> = self
            .entries
            .iter()
            .filter(|(_, s)| s.entry.remaining(now).is_none() || !tags.current(&s.entry.tags))
            .map(|(k, _)| k.clone())
            .collect();
        for key in dead {
            self.remove(&key);
        }
        self.last_sweep = Some(now);
    }

    fn evict_least_recent(&mut self) -> bool {
        match self.recency.first_key_value() {
            Some((_, key)) => {
                let key = key.clone();
                self.remove(&key);
                true
            }
            None => false,
        }
    }
}

/// How often an insert sweeps out every dead entry, not only the least
/// recently used ones it must evict for room.
const SWEEP_EVERY: Duration = Duration::from_secs(1);

/// The responses of one cache layer, in this process.
pub struct Store {
    limits: Limits,
    inner: Mutex<Inner>,
}

impl Store {
    pub fn new(limits: Limits) -> Self {
        Store {
            limits,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; if something did, the maps
        // are still consistent enough to serve from.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The fresh entry for a request, if any. An expired or invalidated
    /// entry found on the way is removed.
    pub fn get(
        &self,
        base: &[u8],
        request: &HeaderMap,
        now: Instant,
        tags: &TagGenerations,
    ) -> Option<Arc<Entry>> {
        let mut inner = self.lock();
        let vary = inner.variants.get(base)?.vary.clone();
        let key = full_key(base, &vary, request);
        let entry = inner.entries.get(&key)?.entry.clone();
        if entry.remaining(now).is_none() || !tags.current(&entry.tags) {
            inner.remove(&key);
            return None;
        }
        inner.touch(&key);
        Some(entry)
    }

    /// Stores `entry` for the request with `base` key and `request` headers,
    /// evicting least recently used entries to make room. Returns false
    /// when the entry is too large to store at all.
    pub fn insert(
        &self,
        base: Vec<u8>,
        vary: Vec<HeaderName>,
        request: &HeaderMap,
        entry: Entry,
        now: Instant,
        tags: &TagGenerations,
    ) -> bool {
        let key = full_key(&base, &vary, request);
        let size = entry.size(&key);
        if size > self.limits.max_entry_bytes
            || size > self.limits.max_bytes
            || self.limits.max_entries == 0
        {
            return false;
        }
        let mut inner = self.lock();
        inner.remove(&key);
        if inner
            .last_sweep
            .is_none_or(|at| now.saturating_duration_since(at) >= SWEEP_EVERY)
        {
            inner.sweep(now, tags);
        }
        // A new list of names for this resource: entries under the old one
        // can no longer be found, so they go now rather than by eviction.
        let vary: Arc<[HeaderName]> = vary.into();
        if let Some(known) = inner.variants.get(&base) {
            if known.vary != vary {
                let stale: Vec<Vec<u8>> = inner
                    .entries
                    .iter()
                    .filter(|(_, s)| s.base == base)
                    .map(|(k, _)| k.clone())
                    .collect();
                for old in stale {
                    inner.remove(&old);
                }
            }
        }
        while inner.bytes + size > self.limits.max_bytes
            || inner.entries.len() >= self.limits.max_entries
        {
            if !inner.evict_least_recent() {
                break;
            }
        }
        inner.tick += 1;
        let tick = inner.tick;
        inner.recency.insert(tick, key.clone());
        inner.bytes += size;
        inner
            .variants
            .entry(base.clone())
            .or_insert_with(|| Variants { vary, entries: 0 })
            .entries += 1;
        inner.entries.insert(
            key,
            Stored {
                entry: Arc::new(entry),
                base,
                size,
                tick,
            },
        );
        true
    }

    /// How many entries and bytes the store holds.
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.entries.len(), inner.bytes)
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (entries, bytes) = self.usage();
        write!(f, "Store({entries} entries, {bytes} bytes)")
    }
}
