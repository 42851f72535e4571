//! The circuit breaker: after a run of failed responses (5xx by default) it
//! stops sending requests to the endpoint and answers `503` itself until a
//! cool-down passes, so a failing dependency gets room to recover and
//! clients get a fast, honest answer instead of a slow error.
//!
//! States, per layer and per process:
//! - **closed**: requests pass; `failure_threshold` failures in a row open it,
//!   a success (any status but a failure code or a 4xx) resets the run;
//! - **open**: every request gets `503` with `Retry-After`, without reaching
//!   the endpoint, for `reset_timeout`;
//! - **half-open**: requests pass again; `half_open_target` successes in a
//!   row close it, a failure opens it again.
//!
//! The state is a few words behind a mutex held only to read or update them,
//! never across any work; time comes from an injected clock so tests need
//! no sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::header::{HeaderValue, RETRY_AFTER};

use super::{exempt, Answer, Context, Layer, Outgoing, Stage};
use crate::http::problem::Problem;
use crate::http::request::RequestHead;

/// The statuses that count as failures unless configured otherwise.
pub const DEFAULT_FAILURE_CODES: [u16; 4] = [500, 502, 503, 504];

/// The `detail` of the breaker's own 503.
pub const OPEN_DETAIL: &str = "Service temporarily unavailable";

/// Monotonic time since some fixed start.
pub type Clock = Arc<dyn Fn() -> Duration + Send + Sync>;

/// The real clock: time since the layer was built.
fn monotonic() -> Clock {
    let start = Instant::now();
    Arc::new(move || start.elapsed())
}

/// What a circuit breaker counts and how long it stays open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreakerOptions {
    /// Failures in a row that open the circuit (at least 1).
    pub failure_threshold: u32,
    /// How long the circuit stays open before it lets requests try again.
    pub reset_timeout: Duration,
    /// Successes in a row, once half-open, that close the circuit (at least 1).
    pub half_open_target: u32,
    /// The response statuses that count as failures.
    pub failure_codes: Vec<u16>,
    /// Paths (and the paths below them) the breaker neither counts nor
    /// refuses: health probes must not open the circuit, nor be answered
    /// by it.
    pub exempt_paths: Vec<String>,
}

impl Default for CircuitBreakerOptions {
    fn default() -> Self {
        CircuitBreakerOptions {
            failure_threshold: 5,
            reset_timeout: Duration::from_secs(30),
            half_open_target: 3,
            failure_codes: DEFAULT_FAILURE_CODES.to_vec(),
            exempt_paths: Vec::new(),
        }
    }
}

/// Options that would make a breaker that never opens, never closes or
/// never retries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCircuitBreaker(String);

impl std::fmt::Display for InvalidCircuitBreaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidCircuitBreaker {}

/// Where the circuit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed { failures: u32 },
    Open { until: Duration },
    HalfOpen { successes: u32 },
}

pub struct CircuitBreaker {
    options: CircuitBreakerOptions,
    state: Mutex<CircuitState>,
    clock: Clock,
}

/// The breakers (global, a blueprint's...) one request passed: each counts
/// the response of a request it let through, and none counts the 503 of a
/// breaker that refused it, as that says nothing about the endpoint.
#[derive(Default)]
struct Passage {
    admitted_by: Vec<usize>,
    refused: bool,
}

impl CircuitBreaker {
    pub fn new(options: CircuitBreakerOptions) -> Result<Self, InvalidCircuitBreaker> {
        Self::with_clock(options, monotonic())
    }

    /// A breaker that reads time from `clock` (tests move it by hand).
    pub fn with_clock(
        options: CircuitBreakerOptions,
        clock: Clock,
    ) -> Result<Self, InvalidCircuitBreaker> {
        if options.failure_threshold < 1 {
            return Err(InvalidCircuitBreaker(
                "failure_threshold must be at least 1".into(),
            ));
        }
        if options.half_open_target < 1 {
            return Err(InvalidCircuitBreaker(
                "half_open_target must be at least 1".into(),
            ));
        }
        if options.reset_timeout.is_zero() {
            return Err(InvalidCircuitBreaker(
                "reset_timeout must be more than 0 seconds".into(),
            ));
        }
        if let Some(bad) = options
            .failure_codes
            .iter()
            .find(|&&c| !(100..=599).contains(&c) || (400..=499).contains(&c))
        {
            return Err(InvalidCircuitBreaker(format!(
                "failure_codes: {bad} is not a status that can count as a failure \
                 (100 to 599, and 4xx are the client's errors, never the service's)"
            )));
        }
        Ok(CircuitBreaker {
            options,
            state: Mutex::new(CircuitState::Closed { failures: 0 }),
            clock,
        })
    }

    /// Tells this breaker's passage from another's in one request.
    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// The current state (an open circuit whose time is up still reads as
    /// open until a request arrives).
    pub fn state(&self) -> CircuitState {
        *self.lock()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CircuitState> {
        // The state is always whole (each update is one assignment), so a
        // panic elsewhere while it was held cannot have left it torn.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a request may pass now; the seconds to wait when not.
    fn admit(&self) -> Result<(), u64> {
        let now = (self.clock)();
        let mut state = self.lock();
        if let CircuitState::Open { until } = *state {
            if now < until {
                return Err(whole_seconds(until - now));
            }
            *state = CircuitState::HalfOpen { successes: 0 };
        }
        Ok(())
    }

    /// Counts one response of an admitted request. A client error (4xx)
    /// says nothing about the service either way: it neither counts as a
    /// failure nor breaks a run of them, so a scanner's 404s cannot keep a
    /// failing service's circuit closed.
    fn record(&self, status: u16) {
        if (400..=499).contains(&status) {
            return;
        }
        let failed = self.options.failure_codes.contains(&status);
        let now = (self.clock)();
        let opened = CircuitState::Open {
            until: now.saturating_add(self.options.reset_timeout),
        };
        let mut state = self.lock();
        *state = match (*state, failed) {
            (CircuitState::Closed { failures }, true) => {
                if failures + 1 >= self.options.failure_threshold {
                    opened
                } else {
                    CircuitState::Closed {
                        failures: failures + 1,
                    }
                }
            }
            (CircuitState::Closed { .. }, false) => CircuitState::Closed { failures: 0 },
            (CircuitState::HalfOpen { .. }, true) => opened,
            (CircuitState::HalfOpen { successes }, false) => {
                if successes + 1 >= self.options.half_open_target {
                    CircuitState::Closed { failures: 0 }
                } else {
                    CircuitState::HalfOpen {
                        successes: successes + 1,
                    }
                }
            }
            // A request let through before the circuit opened: its
            // outcome is already history.
            (open @ CircuitState::Open { .. }, _) => open,
        };
    }
}

/// Seconds to wait, rounded up so a client that waits that long finds the
/// circuit ready to try again.
fn whole_seconds(left: Duration) -> u64 {
    let seconds = left.as_secs();
    if left.subsec_nanos() > 0 {
        seconds.saturating_add(1)
    } else {
        seconds.max(1)
    }
}

/// The 503 an open circuit gives: a problem with `retry_after` (a number,
/// as `Retry-After` is) and the same value in the header.
fn open_answer(retry_after: u64) -> Answer {
    let problem = Problem::new(503)
        .with_detail(OPEN_DETAIL)
        .with_number("retry_after", retry_after);
    let mut answer = Answer::problem(&problem);
    answer
        .headers
        .insert(RETRY_AFTER, HeaderValue::from(retry_after));
    answer
}

impl Layer for CircuitBreaker {
    fn name(&self) -> &'static str {
        "CircuitBreaker"
    }

    fn stage(&self) -> Stage {
        Stage::CircuitBreaker
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if exempt(&self.options.exempt_paths, &head.path) {
            return None;
        }
        let mut passage = context.take_note::<Passage>().unwrap_or_default();
        let answer = match self.admit() {
            Ok(()) => {
                passage.admitted_by.push(self.id());
                None
            }
            Err(retry_after) => {
                passage.refused = true;
                Some(open_answer(retry_after))
            }
        };
        context.note(passage);
        answer
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let Some(passage) = context.noted::<Passage>() else {
            return;
        };
        if !passage.refused && passage.admitted_by.contains(&self.id()) {
            self.record(response.status);
        }
    }
}

#[cfg(test)]
mod tests;
