//! The series table: every worker's counts in one region of shared memory.
//!
//! A series is one (route template, method, status) triple. Its key is a
//! single `u64`, claimed in an open-addressing table with a compare-and-swap,
//! so two workers that see a new series at once agree on one slot and
//! nothing is ever locked. Each slot's counters are plain atomics the
//! workers add to, and a scrape (in any worker) reads them all: the region
//! is mapped before `run(workers=N)` forks, so it is the whole server's.
//!
//! Histograms keep one counter per bucket, not cumulative: a request adds
//! to one bucket, and the count is their sum, so a scrape's buckets, count
//! and `requests_total` always agree with each other.

use std::io;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::shared_memory::SharedSlots;

/// Upper bounds of the duration buckets, in seconds (the documented ones).
pub const DURATION_BOUNDS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The same bounds in nanoseconds, for the request path.
const DURATION_NANOS: [u64; 11] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// Upper bounds of the request and response size buckets, in bytes.
pub const SIZE_BOUNDS: [u64; 6] = [100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// Where each histogram's counters sit in a slot: its buckets (one more
/// than its bounds, for +Inf), then its sum.
pub const DURATION_AT: usize = 0;
pub const DURATION_SUM: usize = DURATION_AT + DURATION_BOUNDS.len() + 1;
pub const REQUEST_SIZE_AT: usize = DURATION_SUM + 1;
pub const REQUEST_SIZE_SUM: usize = REQUEST_SIZE_AT + SIZE_BOUNDS.len() + 1;
pub const RESPONSE_SIZE_AT: usize = REQUEST_SIZE_SUM + 1;
pub const RESPONSE_SIZE_SUM: usize = RESPONSE_SIZE_AT + SIZE_BOUNDS.len() + 1;
/// Counters per slot, rounded up to whole cache lines.
pub const STRIDE: usize = (RESPONSE_SIZE_SUM + 1).div_ceil(8) * 8;

/// In-flight gauge shards, one cache line each, so the threads of the
/// workers do not all bounce one line between cores.
const SHARDS: usize = 16;
const LINE: usize = 8;
const KEYS_AT: usize = SHARDS * LINE;

/// How many slots a new series may probe before it is counted in the
/// overflow series instead.
const MAX_PROBE: usize = 64;

/// Slot 0 holds every request whose series found no room.
pub const OVERFLOW: usize = 0;

/// The methods with a label of their own, in label order; any other is
/// counted as `other`.
pub const METHODS: [&str; 10] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "other",
];

pub fn method_index(method: &http::Method) -> u8 {
    match *method {
        http::Method::GET => 0,
        http::Method::HEAD => 1,
        http::Method::POST => 2,
        http::Method::PUT => 3,
        http::Method::PATCH => 4,
        http::Method::DELETE => 5,
        http::Method::OPTIONS => 6,
        http::Method::CONNECT => 7,
        http::Method::TRACE => 8,
        _ => 9,
    }
}

/// A series' key: never 0 (an empty slot), whatever its parts.
pub fn key(template: u32, method: u8, status: u16) -> u64 {
    (1 << 63) | (u64::from(template) << 24) | (u64::from(method) << 16) | u64::from(status)
}

/// The parts of a key: `(template, method, status)`.
pub fn parts(key: u64) -> (u32, u8, u16) {
    (
        ((key >> 24) & 0xffff_ffff) as u32,
        ((key >> 16) & 0xff) as u8,
        (key & 0xffff) as u16,
    )
}

pub struct Table {
    slots: SharedSlots,
    capacity: usize,
    counters_at: usize,
}

impl std::fmt::Debug for Table {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Table({} series)", self.capacity)
    }
}

impl Table {
    /// Room for `capacity` series (the overflow series included).
    pub fn new(capacity: usize) -> io::Result<Self> {
        let capacity = capacity.max(2);
        let counters_at = (KEYS_AT + capacity).div_ceil(LINE) * LINE;
        let len = capacity
            .checked_mul(STRIDE)
            .and_then(|n| n.checked_add(counters_at))
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "too many series"))?;
        Ok(Table {
            slots: SharedSlots::new(len)?,
            capacity,
            counters_at,
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn keys(&self) -> &[AtomicU64] {
        &self.slots.slots()[KEYS_AT..KEYS_AT + self.capacity]
    }

    /// The counters of slot `slot`.
    pub fn counters(&self, slot: usize) -> &[AtomicU64] {
        let at = self.counters_at + slot * STRIDE;
        &self.slots.slots()[at..at + STRIDE]
    }

    /// The slot of the series `key`, claimed if it is new; the overflow
    /// slot when the table has no room near its place.
    pub fn slot(&self, key: u64) -> usize {
        let keys = self.keys();
        let others = self.capacity - 1;
        let start = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize % others;
        for probe in 0..MAX_PROBE.min(others) {
            let at = 1 + (start + probe) % others;
            let slot = &keys[at];
            match slot.load(Ordering::Acquire) {
                found if found == key => return at,
                0 => match slot.compare_exchange(0, key, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => return at,
                    Err(found) if found == key => return at,
                    Err(_) => {}
                },
                _ => {}
            }
        }
        OVERFLOW
    }

    /// Counts one finished request in `slot`.
    pub fn record(&self, slot: usize, nanos: u64, request_bytes: u64, response_bytes: u64) {
        let counters = self.counters(slot);
        let bucket = DURATION_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(DURATION_NANOS.len());
        counters[DURATION_AT + bucket].fetch_add(1, Ordering::Relaxed);
        counters[DURATION_SUM].fetch_add(nanos, Ordering::Relaxed);
        let size = |bytes: u64| {
            SIZE_BOUNDS
                .iter()
                .position(|&bound| bytes <= bound)
                .unwrap_or(SIZE_BOUNDS.len())
        };
        counters[REQUEST_SIZE_AT + size(request_bytes)].fetch_add(1, Ordering::Relaxed);
        counters[REQUEST_SIZE_SUM].fetch_add(request_bytes, Ordering::Relaxed);
        counters[RESPONSE_SIZE_AT + size(response_bytes)].fetch_add(1, Ordering::Relaxed);
        counters[RESPONSE_SIZE_SUM].fetch_add(response_bytes, Ordering::Relaxed);
    }

    /// Every series with its key, the overflow one (key 0) only when it
    /// counted something: `(key, counters)`.
    pub fn snapshot(&self) -> Vec<(u64, [u64; STRIDE])> {
        let read = |slot: usize| {
            let mut values = [0; STRIDE];
            for (value, counter) in values.iter_mut().zip(self.counters(slot)) {
                *value = counter.load(Ordering::Relaxed);
            }
            values
        };
        let mut series = Vec::new();
        for (slot, key) in self.keys().iter().enumerate() {
            let key = key.load(Ordering::Acquire);
            if key != 0 {
                series.push((key, read(slot)));
            }
        }
        let overflow = read(OVERFLOW);
        if overflow[DURATION_AT..DURATION_SUM].iter().any(|&n| n > 0) {
            series.push((0, overflow));
        }
        series
    }

    fn in_flight_shard(&self, shard: usize) -> &AtomicU64 {
        &self.slots.slots()[(shard % SHARDS) * LINE]
    }

    /// Requests being served now, by every worker.
    pub fn in_flight(&self) -> u64 {
        let total = (0..SHARDS).fold(0u64, |total, shard| {
            total.wrapping_add(self.in_flight_shard(shard).load(Ordering::Relaxed))
        });
        // A shard may read below zero for a moment (its decrement seen
        // before another's increment); the gauge is never negative.
        if (total as i64) < 0 {
            0
        } else {
            total
        }
    }

    /// Counts a request in flight until the guard is dropped.
    pub fn enter(self: &std::sync::Arc<Self>) -> InFlight {
        let shard = SHARD.with(|s| *s);
        self.in_flight_shard(shard).fetch_add(1, Ordering::Relaxed);
        InFlight {
            table: self.clone(),
            shard,
        }
    }
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's in-flight shard: threads of one process take turns,
    /// and the process id spreads the workers.
    static SHARD: usize = (std::process::id() as usize)
        .wrapping_add(NEXT_SHARD.fetch_add(1, Ordering::Relaxed))
        % SHARDS;
}

/// One request in flight; dropping it (the response is sent, or the
/// request was abandoned) takes it off the gauge.
pub struct InFlight {
    table: std::sync::Arc<Table>,
    shard: usize,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.table
            .in_flight_shard(self.shard)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_series_keeps_its_slot_and_different_series_get_different_ones() {
        let table = Table::new(64).unwrap();
        let a = table.slot(key(1, 0, 200));
        let b = table.slot(key(1, 0, 404));
        assert_ne!(a, OVERFLOW);
        assert_ne!(a, b);
        assert_eq!(table.slot(key(1, 0, 200)), a);
        assert_eq!(parts(key(7, 9, 503)), (7, 9, 503));
    }

    #[test]
    fn a_full_table_counts_new_series_as_overflow() {
        let table = Table::new(4).unwrap();
        let slots: Vec<_> = (0..5).map(|s| table.slot(key(1, 0, 200 + s))).collect();
        assert_eq!(slots.iter().filter(|&&s| s == OVERFLOW).count(), 2);
        table.record(OVERFLOW, 1, 0, 0);
        let keys: Vec<_> = table.snapshot().into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys.len(), 4);
        assert!(keys.contains(&0));
    }

    #[test]
    fn records_fall_in_the_right_buckets_with_sums() {
        let table = Table::new(8).unwrap();
        let slot = table.slot(key(0, 0, 200));
        table.record(slot, 5_000_000, 0, 101);
        table.record(slot, 5_000_001, 20_000_000, 100);
        let (_, c) = table.snapshot()[0];
        assert_eq!(c[DURATION_AT], 1);
        assert_eq!(c[DURATION_AT + 1], 1);
        assert_eq!(c[DURATION_SUM], 10_000_001);
        assert_eq!(c[REQUEST_SIZE_AT], 1);
        assert_eq!(c[REQUEST_SIZE_AT + SIZE_BOUNDS.len()], 1);
        assert_eq!(c[RESPONSE_SIZE_AT], 1);
        assert_eq!(c[RESPONSE_SIZE_AT + 1], 1);
        assert_eq!(c[RESPONSE_SIZE_SUM], 201);
    }

    #[test]
    fn the_gauge_counts_guards_alive() {
        let table = Arc::new(Table::new(8).unwrap());
        let a = table.enter();
        let b = std::thread::spawn({
            let table = table.clone();
            move || table.enter()
        })
        .join()
        .unwrap();
        assert_eq!(table.in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(table.in_flight(), 0);
    }

    #[test]
    fn forked_workers_count_into_one_table() {
        let table = Table::new(16).unwrap();
        let slot = table.slot(key(3, 0, 200));
        // SAFETY: the child only touches atomics and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let slot = table.slot(key(3, 0, 200));
            table.record(slot, 1, 0, 0);
            let other = table.slot(key(3, 0, 500));
            table.record(other, 1, 0, 0);
            unsafe { libc::_exit(0) };
        }
        let mut status = 0;
        // SAFETY: waits for the child forked above.
        unsafe { libc::waitpid(pid, &mut status, 0) };
        table.record(slot, 1, 0, 0);
        let snapshot = table.snapshot();
        assert_eq!(snapshot.len(), 2);
        let ok = snapshot.iter().find(|(k, _)| *k == key(3, 0, 200)).unwrap();
        assert_eq!(ok.1[DURATION_AT], 2);
    }
}
