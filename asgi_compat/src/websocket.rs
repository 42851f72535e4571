//! The ASGI `websocket` scope a hosted app (or Cello's own `App`) gets for
//! an upgrade request, and the parts of the handshake read from its head.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};

use crate::http::{address_tuple, headers_to_asgi, http_version, HostedRequest};

/// The subprotocols a client offers in `Sec-WebSocket-Protocol`, in order:
/// every header line, split on commas, trimmed, empty items dropped.
pub fn offered_subprotocols(headers: &http::HeaderMap) -> Vec<String> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim_matches([' ', '\t']))
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Builds the ASGI `websocket` scope. The scheme is `ws` (or `wss` behind
/// TLS); `extensions` advertises `websocket.http.response`, the denial
/// response the server supports.
pub fn websocket_scope<'py>(
    py: Python<'py>,
    req: &HostedRequest<'_>,
    state: Option<&Bound<'py, PyDict>>,
) -> PyResult<Bound<'py, PyDict>> {
    let scope = PyDict::new(py);
    scope.set_item(intern!(py, "type"), intern!(py, "websocket"))?;
    let asgi = PyDict::new(py);
    asgi.set_item(intern!(py, "version"), intern!(py, "3.0"))?;
    asgi.set_item(intern!(py, "spec_version"), intern!(py, "2.5"))?;
    scope.set_item(intern!(py, "asgi"), asgi)?;
    scope.set_item(intern!(py, "http_version"), http_version(py, req.version))?;
    let scheme = if req.scheme == "https" {
        intern!(py, "wss")
    } else {
        intern!(py, "ws")
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
    scope.set_item(intern!(py, "root_path"), PyString::new(py, req.root_path))?;
    scope.set_item(intern!(py, "headers"), headers_to_asgi(py, req.headers)?)?;
    scope.set_item(intern!(py, "client"), address_tuple(py, req.client)?)?;
    scope.set_item(intern!(py, "server"), address_tuple(py, req.server)?)?;
    scope.set_item(
        intern!(py, "subprotocols"),
        PyList::new(py, offered_subprotocols(req.headers))?,
    )?;
    if let Some(state) = state {
        scope.set_item(intern!(py, "state"), state.copy()?)?;
    }
    let extensions = PyDict::new(py);
    extensions.set_item(intern!(py, "websocket.http.response"), PyDict::new(py))?;
    scope.set_item(intern!(py, "extensions"), extensions)?;
    Ok(scope)
}

#[cfg(test)]
mod tests {
    use super::offered_subprotocols;

    #[test]
    fn subprotocols_are_split_trimmed_and_kept_in_order() {
        let mut headers = http::HeaderMap::new();
        assert!(offered_subprotocols(&headers).is_empty());
        headers.append(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("chat, superchat ,,"),
        );
        headers.append(
            http::header::SEC_WEBSOCKET_PROTOCOL,
            http::HeaderValue::from_static("\tv2.json"),
        );
        assert_eq!(
            offered_subprotocols(&headers),
            ["chat", "superchat", "v2.json"]
        );
    }
}
