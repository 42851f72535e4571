//! ASGI `http` scopes to `RequestHead`, and header lists back to ASGI form.

use std::net::{IpAddr, SocketAddr};

use cello_core::request::RequestHead;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

fn item<'py>(scope: &Bound<'py, PyDict>, key: &str) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(scope.get_item(key)?.filter(|v| !v.is_none()))
}

fn address(value: Option<Bound<'_, PyAny>>) -> Option<SocketAddr> {
    let (host, port): (String, u16) = value?.extract().ok()?;
    let ip: IpAddr = host.parse().ok()?;
    Some(SocketAddr::new(ip, port))
}

/// Builds the request head from an ASGI `http` scope.
///
/// Returns the head (its `path` is the full `scope["path"]`) and the path to
/// route on: `path` without `root_path`, as ASGI frameworks mount apps.
pub fn head_from_scope(scope: &Bound<'_, PyDict>) -> PyResult<(RequestHead, String)> {
    let method: String = item(scope, "method")?
        .ok_or_else(|| PyValueError::new_err("ASGI scope has no 'method'"))?
        .extract()?;
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| PyValueError::new_err(format!("invalid HTTP method {method:?}")))?;
    let path: String = item(scope, "path")?
        .ok_or_else(|| PyValueError::new_err("ASGI scope has no 'path'"))?
        .extract()?;
    let root_path: String = match item(scope, "root_path")? {
        Some(root) => root.extract()?,
        None => String::new(),
    };
    let route_path = match path.strip_prefix(root_path.as_str()) {
        Some(rest) if !root_path.is_empty() && (rest.is_empty() || rest.starts_with('/')) => {
            if rest.is_empty() {
                "/".to_owned()
            } else {
                rest.to_owned()
            }
        }
        _ => path.clone(),
    };
    let query = match item(scope, "query_string")? {
        Some(q) => String::from_utf8_lossy(q.cast::<PyBytes>()?.as_bytes()).into_owned(),
        None => String::new(),
    };
    let mut headers = http::HeaderMap::new();
    if let Some(list) = item(scope, "headers")? {
        for pair in list.try_iter()? {
            let pair = pair?;
            let (name, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
            let name = http::HeaderName::from_bytes(name.cast::<PyBytes>()?.as_bytes())
                .map_err(|_| PyValueError::new_err("invalid header name in ASGI scope"))?;
            let value = http::HeaderValue::from_bytes(value.cast::<PyBytes>()?.as_bytes())
                .map_err(|_| PyValueError::new_err("invalid header value in ASGI scope"))?;
            headers.append(name, value);
        }
    }
    let scheme = match item(scope, "scheme")? {
        Some(s) if s.cast::<PyString>()?.to_str()? == "https" => "https",
        _ => "http",
    };
    let head = RequestHead {
        method,
        path,
        query,
        headers,
        params: Vec::new(),
        client: address(item(scope, "client")?),
        server: address(item(scope, "server")?),
        scheme,
    };
    Ok((head, route_path))
}

/// Header pairs as ASGI wants them: a list of `(bytes, bytes)`.
pub fn headers_to_asgi<'py>(
    py: Python<'py>,
    headers: &[(String, String)],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in headers {
        let pair = PyTuple::new(
            py,
            [
                PyBytes::new(py, name.as_bytes()),
                PyBytes::new(py, value.as_bytes()),
            ],
        )?;
        list.append(pair)?;
    }
    Ok(list)
}
