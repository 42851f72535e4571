//! `CircuitBreaker` options from `cello.middleware.CircuitBreakerConfig`
//! made into the core layer.

use std::time::Duration;

use cello_core::middleware::{CircuitBreaker, CircuitBreakerOptions, Layer};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

use super::Options;

pub fn circuit_breaker(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let defaults = CircuitBreakerOptions::default();
    let reset_timeout = match options.value::<f64>("reset_timeout")? {
        None => defaults.reset_timeout,
        Some(seconds) => Duration::try_from_secs_f64(seconds)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "reset_timeout must be a number of seconds > 0, not {seconds}"
                ))
            })?,
    };
    let built = CircuitBreakerOptions {
        failure_threshold: options
            .value("failure_threshold")?
            .unwrap_or(defaults.failure_threshold),
        reset_timeout,
        half_open_target: options
            .value("half_open_target")?
            .unwrap_or(defaults.half_open_target),
        failure_codes: options
            .value("failure_codes")?
            .unwrap_or(defaults.failure_codes),
        exempt_paths: options
            .value("exempt_paths")?
            .unwrap_or(defaults.exempt_paths),
    };
    CircuitBreaker::new(built)
        .map(|layer| Box::new(layer) as Box<dyn Layer>)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}
