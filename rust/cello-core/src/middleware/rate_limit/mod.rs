//! Rate limiting: a budget of requests per client (or per header value, or
//! per path), held in memory shared by every worker process of the server,
//! so `run(workers=4)` with a limit of 100 allows 100, not 400.
//!
//! Every response of a limited path carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset`; a request over the
//! budget gets a 429 problem with `Retry-After`. Handlers read the verdict
//! as `request.context["rate_limit_state"]`.

mod algorithms;
mod client;
mod pressure;
mod table;
#[cfg(test)]
mod tests;

pub use algorithms::{
    Algorithm, Decision, MAX_CAPACITY, MAX_WINDOW_REQUESTS, MICROS, MIN_REFILL_RATE,
};
pub use client::{address_key, KeyBy, Network, TrustedProxies};
pub use pressure::{Pressure, ProcLoad, SystemLoad, Thresholds, MIN_SAMPLES};
pub use table::{Table, DEFAULT_ENTRIES, PROBES};

use std::io;
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use http::header::{HeaderName, HeaderValue, RETRY_AFTER};

pub use super::exempt;
use super::{Answer, Context, Layer, Outgoing, Stage};
use crate::http::problem::Problem;
use crate::http::request::RequestHead;

/// The `detail` of every 429.
pub const DETAIL: &str = "Rate limit exceeded. Please try again later.";

static LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

/// The time, in Unix microseconds.
pub trait Clock: Send + Sync {
    fn now(&self) -> u64;
}

/// The system's wall clock: the same in every process, and what
/// `X-RateLimit-Reset` is written in. A clock set back only delays refills.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    }
}

/// An adaptive limit's floor and the pressure that pushes it there.
#[derive(Debug)]
pub struct Adaptive {
    pub min_capacity: u64,
    pub pressure: Pressure,
}

/// One budget table and the rule it enforces; shared by the native layer
/// and by the Python tier (`key_func`).
pub struct Limiter {
    algorithm: Algorithm,
    adaptive: Option<Adaptive>,
    table: Table,
    clock: Arc<dyn Clock>,
}

impl Limiter {
    /// A limiter with its own shared table of `entries` keys. Build it
    /// before the server forks its workers, so they all share the table.
    pub fn new(
        algorithm: Algorithm,
        adaptive: Option<Adaptive>,
        entries: usize,
        clock: Arc<dyn Clock>,
    ) -> io::Result<Self> {
        Ok(Limiter {
            algorithm,
            adaptive,
            table: Table::new(entries)?,
            clock,
        })
    }

    pub fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    /// The limit in force now.
    pub fn capacity(&self) -> u64 {
        let capacity = self.algorithm.capacity();
        match &self.adaptive {
            Some(adaptive) => {
                adaptive
                    .pressure
                    .capacity(capacity, adaptive.min_capacity, self.clock.now())
            }
            None => capacity,
        }
    }

    /// Spends one request of `key`'s budget, if there is one left.
    pub fn acquire(&self, key: &[u8]) -> Decision {
        let now = self.clock.now();
        let capacity = self.capacity();
        self.table.check(key, &self.algorithm, capacity, now)
    }

    /// Whether the limit adapts to responses (so they should be observed).
    pub fn adapts(&self) -> bool {
        self.adaptive.is_some()
    }

    /// Records a response the limit let through, for an adaptive limit.
    pub fn observe(&self, status: u16, latency_micros: u64) {
        if let Some(adaptive) = &self.adaptive {
            adaptive
                .pressure
                .observe(status, latency_micros, self.clock.now());
        }
    }
}

impl std::fmt::Debug for Limiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiter")
            .field("algorithm", &self.algorithm)
            .field("adaptive", &self.adaptive)
            .field("table", &self.table)
            .finish()
    }
}

/// The 429 problem's body: `retry_after` is a number, as the other members
/// of a problem the framework writes are.
pub fn refusal_body(retry_after: u64) -> Vec<u8> {
    refusal(retry_after).to_json()
}

fn refusal(retry_after: u64) -> Problem {
    Problem::new(429)
        .with_detail(DETAIL)
        .with_number("retry_after", retry_after)
}

/// The `rate_limit_state` context value handlers read.
pub fn state_json(decision: &Decision) -> String {
    format!(
        "{{\"limit\":{},\"remaining\":{},\"reset\":{}}}",
        decision.limit, decision.remaining, decision.reset
    )
}

/// The three `X-RateLimit-*` headers (and `Retry-After` on a refusal).
pub fn decision_headers(decision: &Decision) -> [(&'static HeaderName, HeaderValue); 3] {
    [
        (&LIMIT, decision.limit.into()),
        (&REMAINING, decision.remaining.into()),
        (&RESET, decision.reset.into()),
    ]
}

/// The native rate-limit layer.
pub struct RateLimit {
    limiter: Arc<Limiter>,
    key_by: KeyBy,
    proxies: TrustedProxies,
    exempt: Vec<String>,
}

/// What the response hook needs: the verdict, and when the request came in
/// (for an adaptive limit's latency).
struct Verdict {
    decision: Decision,
    started: Option<Instant>,
}

/// The verdicts of every limit a request passed (limits may be stacked),
/// each under its layer's address.
#[derive(Default)]
struct Verdicts(Vec<(usize, Verdict)>);

impl RateLimit {
    pub fn new(
        limiter: Arc<Limiter>,
        key_by: KeyBy,
        proxies: TrustedProxies,
        exempt: Vec<String>,
    ) -> Self {
        RateLimit {
            limiter,
            key_by,
            proxies,
            exempt,
        }
    }
}

impl RateLimit {
    /// Tells this layer's verdict from a stacked limit's.
    fn id(&self) -> usize {
        self as *const Self as usize
    }
}

impl Layer for RateLimit {
    fn name(&self) -> &'static str {
        "RateLimit"
    }

    fn stage(&self) -> Stage {
        Stage::RateLimit
    }

    fn headers_added(&self) -> usize {
        4
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if exempt(&self.exempt, &head.path) {
            return None;
        }
        let key = self.key_by.key(head, &self.proxies);
        let decision = self.limiter.acquire(&key);
        let started = (decision.allowed && self.limiter.adapts()).then(Instant::now);
        let mut verdicts = context.take_note::<Verdicts>().unwrap_or_default();
        verdicts.0.push((self.id(), Verdict { decision, started }));
        // Stacked limits: handlers see the tightest.
        if let Some((_, tightest)) = verdicts.0.iter().min_by_key(|(_, v)| v.decision.remaining) {
            context.insert_json("rate_limit_state", state_json(&tightest.decision));
        }
        context.note(verdicts);
        if decision.allowed {
            return None;
        }
        let mut answer = Answer::problem(&refusal(decision.retry_after));
        answer
            .headers
            .insert(RETRY_AFTER, decision.retry_after.into());
        Some(answer)
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let Some(verdicts) = context.take_note::<Verdicts>() else {
            return;
        };
        let (mine, others): (Vec<_>, Vec<_>) =
            verdicts.0.into_iter().partition(|(id, _)| *id == self.id());
        if !others.is_empty() {
            context.note(Verdicts(others));
        }
        let Some((_, verdict)) = mine.into_iter().next() else {
            return;
        };
        if let Some(started) = verdict.started {
            let latency = started.elapsed().as_micros() as u64;
            self.limiter.observe(response.status, latency);
        }
        // Stacked limits: the headers describe the tightest one.
        let tighter_inside = response
            .headers
            .get(&REMAINING)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|inner| inner < verdict.decision.remaining);
        if tighter_inside {
            return;
        }
        for (name, value) in decision_headers(&verdict.decision) {
            response.headers.insert(name, value);
        }
    }
}
