//! The buckets of one limiter: a fixed-size, lock-free hash table in
//! [`SharedSlots`], so every worker forked from the master counts against
//! the same budget.
//!
//! An entry is two words: the key's 64-bit fingerprint (0 = never used) and
//! the algorithm's state word. A key lives in one of [`PROBES`] entries
//! after its home position. A key that is not there takes the first entry
//! that is empty or idle (its state reads as a fresh bucket, see
//! [`Algorithm::is_idle`]) by swapping in its fingerprint; the state needs
//! no reset, so no second write can interleave with another process's.
//!
//! When every entry in reach belongs to a busy key, the new key shares its
//! home entry's bucket. Sharing (like two keys with one fingerprint) only
//! ever makes limiting stricter for the keys involved: flooding the table
//! with made-up keys cannot buy anyone a fresh budget.

use std::hash::{BuildHasher, RandomState};
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};

use super::algorithms::{Algorithm, Decision};
use crate::shared_memory::SharedSlots;

/// Entries a key may live in, from its home position on.
pub const PROBES: usize = 8;

/// Entries in a table unless told otherwise: 65,536 keys in 1 MiB, of
/// which only the pages keys touch are ever backed by memory.
pub const DEFAULT_ENTRIES: usize = 1 << 16;

pub struct Table {
    slots: SharedSlots,
    mask: usize,
    /// Keyed hashing (SipHash with random keys, chosen in the master and
    /// inherited by the workers): a client cannot pick keys that collide.
    hasher: RandomState,
}

impl Table {
    /// A table of at least `entries` entries (rounded up to a power of two).
    pub fn new(entries: usize) -> io::Result<Self> {
        let entries = entries.max(PROBES).next_power_of_two();
        Ok(Table {
            slots: SharedSlots::new(entries * 2)?,
            mask: entries - 1,
            hasher: RandomState::new(),
        })
    }

    pub fn entries(&self) -> usize {
        self.mask + 1
    }

    fn fingerprint(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key).max(1)
    }

    fn entry(&self, index: usize) -> (&AtomicU64, &AtomicU64) {
        let slots = self.slots.slots();
        let at = (index & self.mask) * 2;
        (&slots[at], &slots[at + 1])
    }

    /// Finds (or claims) `key`'s bucket and checks one request against it.
    pub fn check(&self, key: &[u8], algorithm: &Algorithm, capacity: u64, now: u64) -> Decision {
        let fingerprint = self.fingerprint(key);
        let state = self.find(fingerprint, algorithm, now);
        let mut current = state.load(Ordering::Acquire);
        loop {
            let (next, decision) = algorithm.check(current, now, capacity);
            let Some(next) = next else {
                return decision;
            };
            match state.compare_exchange_weak(current, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return decision,
                Err(actual) => current = actual,
            }
        }
    }

    /// The state word of `fingerprint`'s entry.
    fn find(&self, fingerprint: u64, algorithm: &Algorithm, now: u64) -> &AtomicU64 {
        let home = (fingerprint >> 16) as usize;
        // Two rounds: a claim lost to another process is followed by one
        // more look (the winner may have claimed it for this very key).
        for _ in 0..2 {
            let mut free = None;
            for probe in 0..PROBES {
                let (tag, state) = self.entry(home + probe);
                let seen = tag.load(Ordering::Acquire);
                if seen == fingerprint {
                    return state;
                }
                if free.is_none()
                    && (seen == 0 || algorithm.is_idle(state.load(Ordering::Acquire), now))
                {
                    free = Some((tag, state, seen));
                }
            }
            let Some((tag, state, seen)) = free else {
                break;
            };
            if tag
                .compare_exchange(seen, fingerprint, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return state;
            }
        }
        self.entry(home).1
    }

    /// Keys with an entry of their own that is not idle (for tests).
    #[cfg(test)]
    pub fn busy_entries(&self, algorithm: &Algorithm, now: u64) -> usize {
        (0..self.entries())
            .filter(|&i| {
                let (tag, state) = self.entry(i);
                tag.load(Ordering::Relaxed) != 0
                    && !algorithm.is_idle(state.load(Ordering::Relaxed), now)
            })
            .count()
    }
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} entries)", self.entries())
    }
}
