//! The rate-limit layer's options, and `RateLimiter`: the same shared
//! limiter for the Python tier, which keys requests with a Python
//! `key_func` (or the authenticated user) after the native layers ran.

use std::sync::Arc;

use cello_core::middleware::rate_limit::{
    self, Adaptive, Algorithm, KeyBy, Limiter, Pressure, ProcLoad, SystemClock, Thresholds,
    TrustedProxies, DEFAULT_ENTRIES,
};
use cello_core::middleware::{Layer, RateLimit};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use super::Options;
use crate::types::request::Request;

fn invalid(message: impl Into<String>) -> PyErr {
    PyValueError::new_err(message.into())
}

/// Everything but the exemptions, as both the layer and `RateLimiter` use it.
struct Parts {
    limiter: Arc<Limiter>,
    key_by: KeyBy,
    proxies: TrustedProxies,
    exempt: Vec<String>,
}

fn positive(options: &Options<'_, '_>, name: &str, default: f64) -> PyResult<f64> {
    let value = options.value::<f64>(name)?.unwrap_or(default);
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(invalid(format!("{name} must be a number > 0, not {value}")))
    }
}

fn count(options: &Options<'_, '_>, name: &str, default: u64) -> PyResult<u64> {
    match options.value::<i64>(name)? {
        None => Ok(default),
        Some(value) if value >= 1 => Ok(value as u64),
        Some(value) => Err(invalid(format!(
            "{name} must be an integer >= 1, not {value}"
        ))),
    }
}

fn threshold(options: &Options<'_, '_>, name: &str) -> PyResult<Option<f64>> {
    match options.value::<f64>(name)? {
        Some(value) if !(value.is_finite() && value >= 0.0) => Err(invalid(format!(
            "{name} must be a number >= 0, not {value}"
        ))),
        other => Ok(other),
    }
}

fn parts(options: &Options<'_, '_>) -> PyResult<Parts> {
    let name = options
        .value::<String>("algorithm")?
        .unwrap_or_else(|| "token_bucket".to_owned());
    let capacity = count(options, "capacity", 100)?;
    let refill_rate = || -> PyResult<f64> {
        if capacity > rate_limit::MAX_CAPACITY {
            return Err(invalid(format!(
                "capacity must be at most {}, not {capacity}",
                rate_limit::MAX_CAPACITY
            )));
        }
        let rate = positive(options, "refill_rate", 10.0)?;
        if rate < rate_limit::MIN_REFILL_RATE {
            return Err(invalid(format!(
                "refill_rate must be at least {}, not {rate}",
                rate_limit::MIN_REFILL_RATE
            )));
        }
        Ok(rate)
    };
    let (algorithm, adaptive) = match name.as_str() {
        "token_bucket" => (Algorithm::token_bucket(capacity, refill_rate()?), None),
        "sliding_window" => {
            if capacity > rate_limit::MAX_WINDOW_REQUESTS {
                return Err(invalid(format!(
                    "a sliding window counts at most {} requests, not {capacity}",
                    rate_limit::MAX_WINDOW_REQUESTS
                )));
            }
            let window = positive(options, "window_secs", 60.0)?;
            (Algorithm::sliding_window(capacity, window), None)
        }
        "adaptive" => {
            let min_capacity = count(options, "min_capacity", (capacity / 2).max(1))?;
            if min_capacity > capacity {
                return Err(invalid(format!(
                    "min_capacity ({min_capacity}) must not exceed capacity ({capacity})"
                )));
            }
            let thresholds = Thresholds {
                error_rate: threshold(options, "error_threshold")?,
                latency_ms: threshold(options, "latency_threshold")?,
                cpu: threshold(options, "cpu_threshold")?,
                memory: threshold(options, "memory_threshold")?,
            };
            let adaptive = Adaptive {
                min_capacity,
                pressure: Pressure::new(thresholds, Box::new(ProcLoad)),
            };
            (
                Algorithm::token_bucket(capacity, refill_rate()?),
                Some(adaptive),
            )
        }
        other => return Err(invalid(format!("Unknown rate limit algorithm: {other:?}"))),
    };
    let key_by = options
        .value::<String>("key_by")?
        .unwrap_or_else(|| "ip".to_owned());
    let key_by = KeyBy::parse(&key_by).map_err(invalid)?;
    let proxies = options
        .value::<Vec<String>>("trusted_proxies")?
        .unwrap_or_default();
    let proxies =
        TrustedProxies::parse(&proxies).map_err(|e| invalid(format!("trusted_proxies: {e}")))?;
    let exempt = options
        .value::<Vec<String>>("exempt_paths")?
        .unwrap_or_default();
    if let Some(bad) = exempt.iter().find(|p| !p.starts_with('/')) {
        return Err(invalid(format!(
            "exempt_paths takes paths starting with '/', not {bad:?}"
        )));
    }
    let entries = options
        .value::<usize>("max_keys")?
        .unwrap_or(DEFAULT_ENTRIES);
    let limiter = Limiter::new(algorithm, adaptive, entries, Arc::new(SystemClock))
        .map_err(|e| invalid(format!("cannot map the rate limit table: {e}")))?;
    Ok(Parts {
        limiter: Arc::new(limiter),
        key_by,
        proxies,
        exempt,
    })
}

/// The native layer.
pub fn layer(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let parts = parts(options)?;
    Ok(Box::new(RateLimit::new(
        parts.limiter,
        parts.key_by,
        parts.proxies,
        parts.exempt,
    )))
}

/// A limiter for the Python tier: the options of the layer, the table
/// mapped when it is made (before `run()` forks, so workers share it).
#[pyclass(frozen, module = "cello._cello")]
pub struct RateLimiter {
    parts: Parts,
}

#[pymethods]
impl RateLimiter {
    #[new]
    #[pyo3(signature = (options = None))]
    fn new(options: Option<&Bound<'_, PyDict>>) -> PyResult<Self> {
        Ok(RateLimiter {
            parts: parts(&Options(options))?,
        })
    }

    /// Spends one request of `key`'s budget: `(allowed, limit, remaining,
    /// reset, retry_after)`.
    fn acquire(&self, key: &str) -> (bool, u64, u64, u64, u64) {
        let d = self.parts.limiter.acquire(key.as_bytes());
        (d.allowed, d.limit, d.remaining, d.reset, d.retry_after)
    }

    /// The key the native layer would give `request` (its client's address
    /// through the trusted proxies, its header or its path).
    fn default_key(&self, request: PyRef<'_, Request>) -> String {
        let key = self.parts.key_by.key(&request.head, &self.parts.proxies);
        String::from_utf8_lossy(&key).into_owned()
    }

    /// Whether `path` is exempt from the limit.
    fn exempt(&self, path: &str) -> bool {
        rate_limit::exempt(&self.parts.exempt, path)
    }

    /// Whether responses should be observed (an adaptive limit).
    #[getter]
    fn adapts(&self) -> bool {
        self.parts.limiter.adapts()
    }

    /// Records a response the limit let through, for an adaptive limit.
    fn observe(&self, status: u16, latency_micros: u64) {
        self.parts.limiter.observe(status, latency_micros);
    }

    /// The limit in force now (an adaptive limit's current capacity).
    fn capacity(&self) -> u64 {
        self.parts.limiter.capacity()
    }

    /// The body of the 429 problem, byte for byte the native layer's.
    #[staticmethod]
    fn refusal_body<'py>(py: Python<'py>, retry_after: u64) -> Bound<'py, PyBytes> {
        PyBytes::new(py, &rate_limit::refusal_body(retry_after))
    }
}
