//! The native middleware an app installs with `Cello.add_layer(kind,
//! prefix, options)`: each kind's options, as the Python config classes in
//! `cello.middleware` give them, made into a `cello_core` layer. The options
//! were checked in Python; what can only be checked here (header names,
//! paths) is a `ValueError` naming the option.

use cello_core::middleware::{Layer, RequestId, StaticFiles, StaticFilesOptions};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

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
        "static_files" => static_files(options)?,
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
