//! The authentication layers' options (`JwtAuth`, `ApiKeyAuth` in
//! `cello.middleware.auth`) and `constant_time_compare`.

use cello_core::middleware::auth::{constant_time_eq, ApiKey, ApiKeyAuth, JwtAuth, JwtOptions};
use cello_core::middleware::Layer;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyString};

use super::Options;

/// The bytes of a `str` (UTF-8) or `bytes` value, or None for other types.
fn text_or_bytes(value: &Bound<'_, PyAny>) -> PyResult<Option<Vec<u8>>> {
    if let Ok(bytes) = value.cast::<PyBytes>() {
        return Ok(Some(bytes.as_bytes().to_vec()));
    }
    if let Ok(text) = value.cast::<PyString>() {
        return Ok(Some(text.to_str()?.as_bytes().to_vec()));
    }
    Ok(None)
}

pub fn jwt(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    let key = match options.get("secret")? {
        Some(secret) => text_or_bytes(&secret)?.ok_or_else(|| {
            PyValueError::new_err("middleware option 'secret' must be a str or bytes")
        })?,
        None => return Err(PyValueError::new_err("JWT authentication needs a 'secret'")),
    };
    let mut built = JwtOptions::hs256(key);
    if let Some(algorithm) = options.value::<String>("algorithm")? {
        built.algorithm = algorithm;
    }
    if let Some(header) = options.value::<String>("header_name")? {
        built.header_name = header;
    }
    if let Some(prefix) = options.value::<String>("header_prefix")? {
        built.header_prefix = prefix;
    }
    built.cookie_name = options.value("cookie_name")?;
    built.leeway = options.value("leeway")?.unwrap_or(0);
    built.issuer = options.value("issuer")?.unwrap_or_default();
    built.audience = options.value("audience")?.unwrap_or_default();
    built.skip_paths = options.value("skip_paths")?.unwrap_or_default();
    JwtAuth::new(built)
        .map(|layer| Box::new(layer) as Box<dyn Layer>)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

pub fn api_key(options: &Options<'_, '_>) -> PyResult<Box<dyn Layer>> {
    // (key, name, the user document as JSON text or None)
    let keys: Vec<(String, String, Option<String>)> = options
        .value("keys")?
        .ok_or_else(|| PyValueError::new_err("API-key authentication needs 'keys'"))?;
    let keys = keys
        .into_iter()
        .map(|(key, name, user)| ApiKey { key, name, user });
    let header = options
        .value::<String>("header")?
        .unwrap_or_else(|| "X-API-Key".to_owned());
    let skip = options.value("skip_paths")?.unwrap_or_default();
    ApiKeyAuth::new(keys, &header, skip)
        .map(|layer| Box::new(layer) as Box<dyn Layer>)
        .map_err(|e| PyValueError::new_err(e.to_string()))
}

/// Whether `a` and `b` are equal, in a time that does not depend on where
/// they differ (only on their lengths). Both are `str` or both `bytes`.
#[pyfunction]
pub fn constant_time_compare(a: &Bound<'_, PyAny>, b: &Bound<'_, PyAny>) -> PyResult<bool> {
    let same_kind = a.is_instance_of::<PyString>() == b.is_instance_of::<PyString>();
    match (text_or_bytes(a)?, text_or_bytes(b)?) {
        (Some(a), Some(b)) if same_kind => Ok(constant_time_eq(&a, &b)),
        _ => Err(PyTypeError::new_err(format!(
            "constant_time_compare() takes two str or two bytes, not {} and {}",
            a.get_type().name()?,
            b.get_type().name()?
        ))),
    }
}
