//! The native middleware an app installs with `Cello.add_layer(kind,
//! prefix, options)`: each kind's options, as the Python config classes in
//! `cello.middleware` give them, made into a `cello_core` layer. The options
//! were checked in Python; what can only be checked here (header names,
//! paths) is a `ValueError` naming the option.

pub mod cache;
pub mod rate_limit;

use cello_core::middleware::compression::{Coding, Levels, DEFAULT_MIN_SIZE};
use cello_core::middleware::{Compression, StaticFiles, StaticFilesOptions};
use cello_core::middleware::{
    Cors, CorsOptions, ETag, Layer, Logging, RequestId, SecurityHeaders, DEFAULT_LOG_SKIP,
};
use cello_core::server::access_log::{AccessLog, Format};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

pub mod auth;
mod circuit_breaker;

/// A layer's options: a dict of Python values, possibly absent.
pub struct Options<'a, 'py>(pub Option<&'a Bound<'py, PyDict>>);

impl<'py> Options<'_, 'py> {
    /// The option `name`, when given and not None.
    pub fn get(&self, name: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.0 {
            Some(options) => Ok(options.get_item(name)?.filter(|v| !v.is_none())),
            None => Ok(None),
        }
    }

    /// The option `name` converted to `T`, with the option named in the error.
    pub fn value<T>(&self, name: &str) -> PyResult<Option<T>>
    where
        T: for<'a> FromPyObject<'a, 'py>,
    {
        match self.get(name)? {
            Some(value) => value.extract::<T>().map(Some).map_err(|_| {
                PyValueError::new_err(format!(
                    "middleware option '{name}' has the wrong type: {}",
                    value
                        .get_type()
                        .name()
                        .map(|n| n.to_string())
                        .unwrap_or_default()
                ))
            }),
            None => Ok(None),
        }
    }
}

/// Builds the layer `kind` from its options.
pub fn build(kind: &str, options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    Ok(match kind {
        "request_id" => request_id(options)?,
        "etag" => etag(options)?,
        "logging" => logging(options)?,
        "cors" => cors(options)?,
        "security_headers" => security_headers(options)?,
        "compression" => compression(options)?,
        "static_files" => static_files(options)?,
        "rate_limit" => rate_limit::layer(options)?,
        "cache" => cache::build(options)?,
        "jwt" => auth::jwt(options)?,
        "api_key" => auth::api_key(options)?,
        "circuit_breaker" => circuit_breaker::circuit_breaker(options)?,
        "prometheus" => prometheus(options)?,
        other => {
            return Err(PyValueError::new_err(format!(
                "unknown native middleware {other:?}"
            )))
        }
    })
}

fn request_id(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    Ok(match options.value::<String>("header")? {
        Some(header) => Box::new(
            RequestId::new(&header)
                .map_err(|e| PyValueError::new_err(format!("invalid header name: {e}")))?,
        ),
        None => Box::new(RequestId::default()),
    })
}

fn etag(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let weak = options.value::<bool>("weak")?.unwrap_or(false);
    Ok(Box::new(ETag::new(weak)))
}

/// The access log, writing to standard output on its own thread.
fn logging(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let format = match options.value::<String>("format")? {
        None => Format::Text,
        Some(name) => Format::from_name(&name).ok_or_else(|| {
            PyValueError::new_err(format!(
                "middleware option 'format' must be 'text' or 'json', not {name:?}"
            ))
        })?,
    };
    let skip = match options.value::<Vec<String>>("skip_paths")? {
        None => DEFAULT_LOG_SKIP.iter().map(|p| p.to_string()).collect(),
        Some(paths) => paths,
    };
    if let Some(bad) = skip.iter().find(|p| !p.starts_with('/')) {
        return Err(PyValueError::new_err(format!(
            "middleware option 'skip_paths' takes paths starting with '/', not {bad:?}"
        )));
    }
    Ok(Box::new(Logging::new(AccessLog::stdout(format), skip)))
}

/// Options the Python side leaves out (or sets to None) take the core's defaults.
fn cors(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let defaults = CorsOptions::default();
    let cors = CorsOptions {
        origins: options.value("origins")?,
        origin_regex: options.value("origin_regex")?,
        methods: options.value("methods")?.or(defaults.methods),
        allow_headers: options.value("allow_headers")?,
        expose_headers: options.value("expose_headers")?.unwrap_or_default(),
        credentials: options
            .value("credentials")?
            .unwrap_or(defaults.credentials),
        max_age: options.value("max_age")?.unwrap_or(defaults.max_age),
    };
    Ok(Box::new(
        Cors::new(cors).map_err(|e| PyValueError::new_err(e.to_string()))?,
    ))
}

fn security_headers(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    Ok(match options.value::<Vec<(String, String)>>("headers")? {
        Some(headers) => Box::new(
            SecurityHeaders::new(headers).map_err(|e| PyValueError::new_err(e.to_string()))?,
        ),
        None => Box::new(SecurityHeaders::defaults()),
    })
}

fn compression(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let defaults = Levels::default();
    let level = |name: &str, default: i32, range: std::ops::RangeInclusive<i32>| {
        let value = options.value::<i32>(name)?.unwrap_or(default);
        if range.contains(&value) {
            Ok(value)
        } else {
            Err(PyValueError::new_err(format!(
                "{name} must be from {} to {}, not {value}",
                range.start(),
                range.end()
            )))
        }
    };
    let levels = Levels {
        gzip: level("gzip_level", defaults.gzip as i32, 1..=9)? as u32,
        brotli: level("brotli_level", defaults.brotli as i32, 0..=11)? as u32,
        zstd: level("zstd_level", defaults.zstd, 1..=19)?,
    };
    let min_size = options
        .value::<usize>("min_size")?
        .unwrap_or(DEFAULT_MIN_SIZE);
    let offers = match options.value::<Vec<String>>("encodings")? {
        None => cello_core::middleware::compression::SERVER_ORDER.to_vec(),
        Some(names) => {
            let mut offers = Vec::with_capacity(names.len());
            for name in &names {
                let coding = Coding::from_token(name)
                    .filter(|_| !name.eq_ignore_ascii_case("x-gzip"))
                    .ok_or_else(|| {
                        PyValueError::new_err(format!("encodings: unknown coding {name:?}"))
                    })?;
                if !offers.contains(&coding) {
                    offers.push(coding);
                }
            }
            if offers.is_empty() {
                return Err(PyValueError::new_err(
                    "encodings must name at least one coding",
                ));
            }
            offers
        }
    };
    Ok(Box::new(Compression::new(min_size, levels, offers)))
}

fn static_files(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let root: String = options
        .value("root")?
        .ok_or_else(|| PyValueError::new_err("static files need a 'root' directory"))?;
    let mut built = StaticFilesOptions::new(
        root,
        options
            .value::<String>("prefix")?
            .unwrap_or_else(|| "/static".to_owned()),
    );
    // Present-but-None means "no index file"; absent means the default.
    if let Some(given) = options
        .0
        .map(|o| o.get_item("index_file"))
        .transpose()?
        .flatten()
    {
        built.index = given.extract::<Option<String>>().map_err(|_| {
            PyValueError::new_err("middleware option 'index_file' must be a str or None")
        })?;
    }
    let flag = |name: &str, default: bool| -> PyResult<bool> {
        Ok(options.value::<bool>(name)?.unwrap_or(default))
    };
    built.etag = flag("etag", true)?;
    built.last_modified = flag("last_modified", true)?;
    built.listing = flag("directory_listing", false)?;
    built.precompressed = flag("precompressed", false)?;
    built.cache_control = options.value("cache_control")?;
    built.headers = options.value("headers")?.unwrap_or_default();
    built.hide = options.value("hide")?.unwrap_or_default();
    StaticFiles::new(built)
        .map(|layer| Box::new(layer) as Box<dyn Layer>)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Prometheus metrics; the table shared by the workers is mapped here,
/// before `run()` forks them.
fn prometheus(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    use cello_core::middleware::{Metrics, MetricsOptions};
    let defaults = MetricsOptions::default();
    let skip = options.value::<Vec<String>>("skip_paths")?;
    if let Some(bad) = skip.iter().flatten().find(|p| !p.starts_with('/')) {
        return Err(PyValueError::new_err(format!(
            "middleware option 'skip_paths' takes paths starting with '/', not {bad:?}"
        )));
    }
    let built = MetricsOptions {
        endpoint: options.value("endpoint")?.unwrap_or(defaults.endpoint),
        namespace: options.value("namespace")?.unwrap_or(defaults.namespace),
        subsystem: options.value("subsystem")?.unwrap_or(defaults.subsystem),
        skip: skip.unwrap_or(defaults.skip),
        capacity: options.value("max_series")?.unwrap_or(defaults.capacity),
    };
    Metrics::new(built)
        .map(|layer| Box::new(layer) as Box<dyn Layer>)
        .map_err(PyValueError::new_err)
}
