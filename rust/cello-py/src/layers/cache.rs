//! `cache`: the response cache's options (`CacheConfig`, `enable_caching`,
//! or `@cache` on its own) made into a layer, and the invalidation of tags
//! that `App.invalidate_cache` calls.

use std::time::Duration;

use cello_core::middleware::cache::{Limits, DEFAULT_EXCLUDED};
use cello_core::middleware::{Cache, CacheOptions, Layer, TagGenerations};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use super::Options;

pub fn build(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let defaults = CacheOptions::default();
    let positive = |name: &str, default: u64| -> PyResult<u64> {
        match options.value::<u64>(name)? {
            Some(0) => Err(PyValueError::new_err(format!(
                "cache option '{name}' must be positive, not 0"
            ))),
            Some(value) => Ok(value),
            None => Ok(default),
        }
    };
    let ttl = Duration::from_secs(positive("ttl", defaults.ttl.as_secs())?);
    let methods = match options.value::<Vec<String>>("methods")? {
        None => defaults.methods,
        Some(names) => {
            let mut methods = Vec::with_capacity(names.len());
            for name in names {
                let method = match name.to_ascii_uppercase().as_str() {
                    "GET" => http::Method::GET,
                    "HEAD" => http::Method::HEAD,
                    _ => {
                        return Err(PyValueError::new_err(format!(
                            "cache option 'methods' takes GET and HEAD only, not {name:?}"
                        )))
                    }
                };
                if !methods.contains(&method) {
                    methods.push(method);
                }
            }
            if !methods.contains(&http::Method::GET) {
                return Err(PyValueError::new_err(
                    "cache option 'methods' must include GET: only GET responses are stored, \
                     and HEAD is answered from them",
                ));
            }
            methods
        }
    };
    let exclude_paths = match options.value::<Vec<String>>("exclude_paths")? {
        None => DEFAULT_EXCLUDED.iter().map(|p| p.to_string()).collect(),
        Some(paths) => paths,
    };
    if let Some(bad) = exclude_paths.iter().find(|p| !p.starts_with('/')) {
        return Err(PyValueError::new_err(format!(
            "cache option 'exclude_paths' takes paths starting with '/', not {bad:?}"
        )));
    }
    let as_size = |value: u64| usize::try_from(value).unwrap_or(usize::MAX);
    let limits = Limits {
        max_bytes: as_size(positive("max_bytes", defaults.limits.max_bytes as u64)?),
        max_entries: as_size(positive("max_entries", defaults.limits.max_entries as u64)?),
        max_entry_bytes: as_size(positive(
            "max_entry_bytes",
            defaults.limits.max_entry_bytes as u64,
        )?),
    };
    let cache = Cache::new(CacheOptions {
        ttl,
        methods,
        exclude_paths,
        limits,
        key_by_user: options.value::<bool>("key_by_user")?.unwrap_or(false),
        marked_only: options.value::<bool>("marked_only")?.unwrap_or(false),
    })
    .map_err(|e| PyOSError::new_err(format!("the response cache's shared memory: {e}")))?;
    Ok(Box::new(cache))
}

/// Makes every cached response tagged with one of `tags` stale, in this
/// process and in every worker forked from the same master.
#[pyfunction]
pub fn invalidate_cache_tags(tags: Vec<String>) -> PyResult<()> {
    let generations = TagGenerations::shared()
        .map_err(|e| PyOSError::new_err(format!("the response cache's shared memory: {e}")))?;
    for tag in &tags {
        generations.invalidate(tag);
    }
    Ok(())
}
