//! ASGI `http` scopes to `RequestHead`, and header lists back to ASGI form.

use std::net::{IpAddr, SocketAddr};

use cello_core::http::request::RequestHead;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

/// The ASGI TLS extension of a scope (uvicorn and others with TLS), for
/// `request.client_cert` and `request.tls` in door 2.
fn tls_extension(
    scope: &Bound<'_, PyDict>,
) -> PyResult<Option<std::sync::Arc<cello_core::server::tls::PeerTls>>> {
    let Some(extensions) = item(scope, "extensions")? else {
        return Ok(None);
    };
    let Ok(extensions) = extensions.cast_into::<PyDict>() else {
        return Ok(None);
    };
    let Some(tls) = extensions.get_item("tls")? else {
        return Ok(None);
    };
    let Ok(tls) = tls.cast_into::<PyDict>() else {
        return Ok(None);
    };
    let number = |key: &str| -> PyResult<u16> {
        Ok(match tls.get_item(key)? {
            Some(v) if !v.is_none() => v.extract().unwrap_or(0),
            _ => 0,
        })
    };
    let chain: Vec<String> = match tls.get_item("client_cert_chain")? {
        Some(v) if !v.is_none() => v.extract().unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Some(std::sync::Arc::new(
        cello_core::server::tls::PeerTls::from_asgi(
            &chain,
            number("tls_version")?,
            number("cipher_suite")?,
        ),
    )))
}

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
    let raw_path = match item(scope, "raw_path")? {
        Some(raw) => Some(String::from_utf8_lossy(raw.cast::<PyBytes>()?.as_bytes()).into_owned()),
        None => None,
    };
    let version = match item(scope, "http_version")? {
        Some(v) if v.cast::<PyString>()?.to_str()? == "1.0" => http::Version::HTTP_10,
        Some(v) if v.cast::<PyString>()?.to_str()? == "2" => http::Version::HTTP_2,
        _ => http::Version::HTTP_11,
    };
    let head = RequestHead {
        method,
        version,
        raw_path,
        path,
        query,
        headers,
        params: Vec::new(),
        context: Vec::new(),
        client: address(item(scope, "client")?),
        server: address(item(scope, "server")?),
        scheme,
        tls: tls_extension(scope)?,
    };
    Ok((head, route_path))
}

/// Header pairs as ASGI wants them: a list of `(bytes, bytes)`.
pub fn headers_to_asgi<'py>(
    py: Python<'py>,
    headers: &http::HeaderMap,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in headers {
        let pair = PyTuple::new(
            py,
            [
                PyBytes::new(py, name.as_str().as_bytes()),
                PyBytes::new(py, value.as_bytes()),
            ],
        )?;
        list.append(pair)?;
    }
    Ok(list)
}

/// What door 3 knows about a request when it builds the scope for a hosted app.
pub struct HostedRequest<'a> {
    pub method: &'a http::Method,
    pub version: http::Version,
    /// The path as received, percent-encoded.
    pub raw_path: &'a str,
    /// The same path, decoded.
    pub path: &'a str,
    pub query: &'a str,
    pub headers: &'a http::HeaderMap,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub scheme: &'static str,
    /// The outer root path plus the mount prefix.
    pub root_path: &'a str,
}

/// The ASGI `http_version` of `v`: "1.0", "1.1", "2" or "3".
pub fn http_version(py: Python<'_>, v: http::Version) -> Bound<'_, PyString> {
    match v {
        http::Version::HTTP_10 => intern!(py, "1.0"),
        http::Version::HTTP_2 => intern!(py, "2"),
        http::Version::HTTP_3 => intern!(py, "3"),
        _ => intern!(py, "1.1"),
    }
    .clone()
}

/// The method as a str, shared for the standard methods.
fn method_text<'py>(py: Python<'py>, method: &http::Method) -> Bound<'py, PyString> {
    match *method {
        http::Method::GET => intern!(py, "GET").clone(),
        http::Method::POST => intern!(py, "POST").clone(),
        http::Method::PUT => intern!(py, "PUT").clone(),
        http::Method::DELETE => intern!(py, "DELETE").clone(),
        http::Method::HEAD => intern!(py, "HEAD").clone(),
        http::Method::OPTIONS => intern!(py, "OPTIONS").clone(),
        http::Method::PATCH => intern!(py, "PATCH").clone(),
        _ => PyString::new(py, method.as_str()),
    }
}

/// `(host, port)` as ASGI's `client` and `server` give it, or None.
pub fn address_tuple<'py>(
    py: Python<'py>,
    addr: Option<SocketAddr>,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(addr) = addr else {
        return Ok(py.None().into_bound(py));
    };
    Ok(PyTuple::new(
        py,
        [
            host_text(py, addr.ip()).into_any(),
            addr.port().into_pyobject(py)?.into_any(),
        ],
    )?
    .into_any())
}

/// The text of an IP address. The last two addresses seen are kept: the
/// server's own, and a client's, are the same request after request.
fn host_text(py: Python<'_>, ip: IpAddr) -> Bound<'_, PyString> {
    type Seen = [Option<(IpAddr, Py<PyString>)>; 2];
    static SEEN: std::sync::Mutex<Seen> = std::sync::Mutex::new([None, None]);
    let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, text)) = seen.iter().flatten().find(|(known, _)| *known == ip) {
        return text.bind(py).clone();
    }
    let text = match ip {
        IpAddr::V4(v4) => PyString::new(py, &ipv4_text(v4)),
        IpAddr::V6(v6) => PyString::new(py, &v6.to_string()),
    };
    seen.rotate_right(1);
    seen[0] = Some((ip, text.clone().unbind()));
    text
}

/// `a.b.c.d` without the formatting machinery, which costs more than the
/// rest of the scope's strings together.
fn ipv4_text(ip: std::net::Ipv4Addr) -> String {
    let mut text = String::with_capacity(15);
    for (i, octet) in ip.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// The keys of an `http` scope, in the order they are filled in.
const SCOPE_KEYS: [&str; 14] = [
    "type",
    "asgi",
    "http_version",
    "method",
    "scheme",
    "path",
    "raw_path",
    "query_string",
    "root_path",
    "headers",
    "client",
    "server",
    "state",
    "extensions",
];

/// Builds the ASGI `http` scope for a hosted app. `state` is the app's
/// lifespan state; the scope gets a shallow copy of it.
pub fn http_scope<'py>(
    py: Python<'py>,
    req: &HostedRequest<'_>,
    state: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    // A copy of a dict that already has every key never grows its table
    // while it is filled in; keys and the usual values are interned.
    static TEMPLATE: PyOnceLock<Py<PyDict>> = PyOnceLock::new();
    let template = TEMPLATE.get_or_try_init(py, || -> PyResult<Py<PyDict>> {
        let template = PyDict::new(py);
        for key in SCOPE_KEYS {
            template.set_item(PyString::intern(py, key), py.None())?;
        }
        Ok(template.unbind())
    })?;
    let scope = template.bind(py).copy()?;
    scope.set_item(intern!(py, "type"), intern!(py, "http"))?;
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
    asgi.set_item(intern!(py, "spec_version"), intern!(py, "2.5"))?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    scope.set_item(intern!(py, "http_version"), http_version(py, req.version))?;
    scope.set_item(intern!(py, "method"), method_text(py, req.method))?;
    let scheme = match req.scheme {
        "http" => intern!(py, "http").clone(),
        "https" => intern!(py, "https").clone(),
        other => PyString::new(py, other),
    };
    scope.set_item(intern!(py, "scheme"), scheme)?;
    scope.set_item(intern!(py, "path"), req.path)?;
    scope.set_item(
        intern!(py, "raw_path"),
        PyBytes::new(py, req.raw_path.as_bytes()),
    )?;
    scope.set_item(
        intern!(py, "query_string"),
        PyBytes::new(py, req.query.as_bytes()),
    )?;
    let root_path = if req.root_path.is_empty() {
        intern!(py, "").clone()
    } else {
        PyString::new(py, req.root_path)
    };
    scope.set_item(intern!(py, "root_path"), root_path)?;
    scope.set_item(intern!(py, "headers"), headers_to_asgi(py, req.headers)?)?;
    scope.set_item(intern!(py, "client"), address_tuple(py, req.client)?)?;
    scope.set_item(intern!(py, "server"), address_tuple(py, req.server)?)?;
    scope.set_item(intern!(py, "state"), state.copy()?)?;
    scope.set_item(intern!(py, "extensions"), PyDict::new(py))?;
    Ok(scope)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ipv4_text_matches_display() {
        for ip in [
            "0.0.0.0",
            "127.0.0.1",
            "10.20.30.40",
            "255.255.255.255",
            "192.168.100.9",
        ] {
            let parsed: std::net::Ipv4Addr = ip.parse().unwrap();
            assert_eq!(super::ipv4_text(parsed), ip);
        }
    }
}
