//! The limiting algorithms, each a pure function from one bucket's state
//! word and the time to the new state word and a verdict, so the shared
//! table can apply them with one compare-and-swap.
//!
//! Every algorithm reads the all-zero word, and any word that has gone
//! unused long enough ([`Algorithm::is_idle`]), exactly as a fresh bucket.
//! That is what lets the table hand an idle entry to another key without
//! resetting it (a second write another process could interleave with).

/// Microseconds in a second: the table's clock runs in Unix microseconds.
pub const MICROS: u64 = 1_000_000;

/// The largest token bucket, and its slowest refill: the bucket's state is
/// the microsecond it is full again, and capacity / refill_rate must stay
/// far inside 64 bits of them.
pub const MAX_CAPACITY: u64 = 1_000_000_000;
pub const MIN_REFILL_RATE: f64 = 0.0001;

/// The most requests a sliding window counts (its counters are 20 bits).
pub const MAX_WINDOW_REQUESTS: u64 = (1 << 20) - 1;

const WINDOW_ID_BITS: u32 = 24;
const COUNT_BITS: u32 = 20;
const COUNT_MASK: u64 = (1 << COUNT_BITS) - 1;
const WINDOW_ID_MASK: u64 = (1 << WINDOW_ID_BITS) - 1;

/// What one request's check found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The limit in force (an adaptive limit's current capacity).
    pub limit: u64,
    /// Requests left now, after this one.
    pub remaining: u64,
    /// Unix time, in seconds, when the budget is whole again.
    pub reset: u64,
    /// Whole seconds to wait before the next request can pass (at least 1
    /// when refused, 0 when allowed).
    pub retry_after: u64,
}

/// One bucket's rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    /// A token bucket of `capacity` tokens refilled one per `interval`
    /// microseconds, kept as its "theoretical arrival time" (GCRA): the
    /// state is the instant the bucket will be full again, so one word
    /// holds it and a refill costs no write.
    TokenBucket { capacity: u64, interval: u64 },
    /// `max_requests` per `window` microseconds, estimated from the count
    /// of this window and the previous one weighted by how much of it still
    /// overlaps the last `window`.
    SlidingWindow { max_requests: u64, window: u64 },
}

impl Algorithm {
    /// A token bucket of `capacity` refilled at `refill_rate` tokens a
    /// second, both brought within [`MAX_CAPACITY`] and [`MIN_REFILL_RATE`].
    pub fn token_bucket(capacity: u64, refill_rate: f64) -> Self {
        let rate = refill_rate.max(MIN_REFILL_RATE);
        let interval = (MICROS as f64 / rate).round().max(1.0) as u64;
        Algorithm::TokenBucket {
            capacity: capacity.clamp(1, MAX_CAPACITY),
            interval,
        }
    }

    /// `max_requests` in any `window_secs`-long window.
    pub fn sliding_window(max_requests: u64, window_secs: f64) -> Self {
        Algorithm::SlidingWindow {
            max_requests: max_requests.clamp(1, MAX_WINDOW_REQUESTS),
            window: ((window_secs * MICROS as f64).round() as u64).max(1),
        }
    }

    /// The configured limit.
    pub fn capacity(&self) -> u64 {
        match *self {
            Algorithm::TokenBucket { capacity, .. } => capacity,
            Algorithm::SlidingWindow { max_requests, .. } => max_requests,
        }
    }

    /// Checks one request at `now` against `state`, with the limit lowered
    /// to `capacity` (an adaptive limit; the configured one otherwise).
    /// Returns the state to store (None when it does not change) and the
    /// decision.
    pub fn check(&self, state: u64, now: u64, capacity: u64) -> (Option<u64>, Decision) {
        match *self {
            Algorithm::TokenBucket { interval, .. } => gcra(state, now, capacity, interval),
            Algorithm::SlidingWindow { window, .. } => {
                sliding(state, now, capacity.min(MAX_WINDOW_REQUESTS), window)
            }
        }
    }

    /// Whether `state` is as good as a fresh bucket at `now`, so its entry
    /// may go to another key.
    pub fn is_idle(&self, state: u64, now: u64) -> bool {
        match *self {
            Algorithm::TokenBucket { .. } => state <= now,
            Algorithm::SlidingWindow { window, .. } => {
                let (stored, _, _) = unpack(state);
                state == 0 || window_distance(now / window, stored) >= 2
            }
        }
    }
}

fn seconds_up(micros: u64) -> u64 {
    micros.div_ceil(MICROS)
}

fn retry_seconds(wait: u64) -> u64 {
    seconds_up(wait).max(1)
}

fn gcra(tat: u64, now: u64, capacity: u64, interval: u64) -> (Option<u64>, Decision) {
    let capacity = capacity.max(1);
    let burst = capacity.saturating_mul(interval);
    let start = tat.max(now);
    let next = start.saturating_add(interval);
    let allowed_from = next.saturating_sub(burst);
    if now >= allowed_from {
        let used = next - now;
        let decision = Decision {
            allowed: true,
            limit: capacity,
            remaining: burst.saturating_sub(used) / interval,
            reset: seconds_up(next),
            retry_after: 0,
        };
        (Some(next), decision)
    } else {
        let decision = Decision {
            allowed: false,
            limit: capacity,
            remaining: 0,
            reset: seconds_up(start),
            retry_after: retry_seconds(allowed_from - now),
        };
        (None, decision)
    }
}

fn pack(window_id: u64, previous: u64, current: u64) -> u64 {
    ((window_id & WINDOW_ID_MASK) << (2 * COUNT_BITS))
        | ((previous & COUNT_MASK) << COUNT_BITS)
        | (current & COUNT_MASK)
}

fn unpack(state: u64) -> (u64, u64, u64) {
    (
        state >> (2 * COUNT_BITS),
        (state >> COUNT_BITS) & COUNT_MASK,
        state & COUNT_MASK,
    )
}

/// How many windows `stored` (kept modulo 2^24) lies behind `window_id`.
/// A window id that wrapped all the way round reads as recent, which can
/// only count old requests against a key, never forget new ones.
fn window_distance(window_id: u64, stored: u64) -> u64 {
    window_id.wrapping_sub(stored) & WINDOW_ID_MASK
}

fn sliding(state: u64, now: u64, max: u64, window: u64) -> (Option<u64>, Decision) {
    let max = max.max(1);
    let window_id = now / window;
    let elapsed = now % window;
    let (stored, previous, current) = unpack(state);
    let (previous, current) = match window_distance(window_id, stored) {
        0 if state != 0 => (previous, current),
        1 => (current, 0),
        _ => (0, 0),
    };
    let window_end = (window_id + 1) * window;
    // Everything times `window`, so the weighting stays in integers.
    let weighted = |previous: u64, current: u64, elapsed: u64| {
        u128::from(previous) * u128::from(window - elapsed)
            + u128::from(current) * u128::from(window)
    };
    let budget = u128::from(max) * u128::from(window);
    let w = u128::from(window);
    if weighted(previous, current, elapsed) + w <= budget {
        let used = weighted(previous, current + 1, elapsed);
        let decision = Decision {
            allowed: true,
            limit: max,
            remaining: ((budget - used) / w) as u64,
            reset: seconds_up(window_end),
            retry_after: 0,
        };
        (Some(pack(window_id, previous, current + 1)), decision)
    } else {
        let next_allowed = sliding_next_allowed(previous, current, max, window, window_id);
        let decision = Decision {
            allowed: false,
            limit: max,
            remaining: 0,
            reset: seconds_up(window_end),
            retry_after: retry_seconds(next_allowed.saturating_sub(now)),
        };
        (None, decision)
    }
}

/// The first instant a request fits: later in this window, as the previous
/// window's weight fades, or in the next one, as this window's does.
fn sliding_next_allowed(previous: u64, current: u64, max: u64, window: u64, window_id: u64) -> u64 {
    let w = u128::from(window);
    let start = window_id * window;
    if current < max && previous > 0 {
        // previous * (window - e) <= (max - current - 1) * window
        let room = u128::from(max - current - 1) * w;
        let e = w.saturating_sub(room / u128::from(previous));
        if e < w {
            return start + e as u64;
        }
    }
    // In the next window: current * (window - e) + window <= max * window.
    let room = u128::from(max - 1) * w;
    let e = if current == 0 {
        0
    } else {
        w.saturating_sub(room / u128::from(current))
    };
    start + window + e.min(w - 1) as u64
}
