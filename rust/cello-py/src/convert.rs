//! Handler return values to `ResponseParts`, and parts to a hyper response.
//!
//! The one place that decides what a returned dict, tuple, bytes or
//! `Response` means on the wire.

use bytes::Bytes;
use cello_core::problem::{self, Problem};
use cello_core::server::Body;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyTuple};

use crate::json_writer::to_json;
use crate::response::{extract_headers, Payload, Response, ResponseParts, JSON};

/// What a handler's return value means:
/// `Response` as-is; `(body, status)` and `(body, status, headers)`;
/// bytes as `application/octet-stream`; anything else as JSON.
pub fn to_parts(value: &Bound<'_, PyAny>) -> PyResult<ResponseParts> {
    let py = value.py();
    if let Ok(resp) = value.cast::<Response>() {
        return Ok(resp.borrow().to_parts(py));
    }
    if let Ok(tuple) = value.cast_exact::<PyTuple>() {
        let len = tuple.len();
        if (2..=3).contains(&len) && tuple.get_item(1)?.is_instance_of::<PyInt>() {
            let mut parts = to_parts(&tuple.get_item(0)?)?;
            let status: u16 = tuple.get_item(1)?.extract()?;
            if !(100..=599).contains(&status) {
                return Err(PyValueError::new_err(format!(
                    "invalid HTTP status code {status}"
                )));
            }
            parts.status = status;
            if len == 3 {
                for (k, v) in extract_headers(Some(&tuple.get_item(2)?))? {
                    parts.headers.retain(|(name, _)| *name != k);
                    parts.headers.push((k, v));
                }
            }
            return Ok(parts);
        }
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(ResponseParts::bytes(
            200,
            "application/octet-stream",
            Bytes::copy_from_slice(b.as_bytes()),
        ));
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(ResponseParts::bytes(
            200,
            "application/octet-stream",
            b.to_vec(),
        ));
    }
    Ok(ResponseParts::bytes(200, JSON, to_json(value)?))
}

/// A problem as response parts.
pub fn problem_parts(problem: &Problem) -> ResponseParts {
    ResponseParts::bytes(problem.status, problem::CONTENT_TYPE, problem.to_json())
}

/// Applies the rules every door shares: `content-length` for byte bodies, no
/// body for 1xx/204/304, and no body (but the GET length) for HEAD.
pub fn finalize(parts: &mut ResponseParts, head: bool) {
    let bodyless_status = parts.status < 200 || parts.status == 204 || parts.status == 304;
    if let Payload::Bytes(body) = &parts.payload {
        parts.headers.retain(|(k, _)| k != "content-length");
        if !bodyless_status {
            parts
                .headers
                .push(("content-length".to_owned(), body.len().to_string()));
        }
    }
    if head || bodyless_status {
        parts.payload = Payload::Bytes(Bytes::new());
    }
}

/// Builds the hyper response for byte payloads; streams get their body from the caller.
pub fn to_http(parts: ResponseParts, body: Body) -> http::Response<Body> {
    let mut response = http::Response::new(body);
    *response.status_mut() =
        http::StatusCode::from_u16(parts.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.reserve(parts.headers.len());
    for (k, v) in parts.headers {
        // Names and values were validated when they entered a Response; the
        // value's buffer becomes the HeaderValue's without a copy.
        if let (Ok(name), Ok(value)) = (
            header_name(&k),
            http::HeaderValue::from_maybe_shared(Bytes::from(v)),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// The names nearly every response carries skip `HeaderName::from_bytes`,
/// which looks a name up among all standard headers on every call.
fn header_name(name: &str) -> Result<http::HeaderName, http::header::InvalidHeaderName> {
    match name {
        "content-type" => Ok(http::header::CONTENT_TYPE),
        "content-length" => Ok(http::header::CONTENT_LENGTH),
        _ => http::HeaderName::from_bytes(name.as_bytes()),
    }
}

/// A complete response from byte-payload parts, built without Python.
pub fn bytes_response(mut parts: ResponseParts, head: bool) -> http::Response<Body> {
    finalize(&mut parts, head);
    let body = match &parts.payload {
        Payload::Bytes(b) => Body::full(b.clone()),
        Payload::Stream(_) => Body::empty(),
    };
    to_http(parts, body)
}

/// A complete response for a problem, built without Python.
pub fn problem_response(problem: &Problem, head: bool) -> http::Response<Body> {
    bytes_response(problem_parts(problem), head)
}
