//! Handler return values to `ResponseParts`, and parts to a hyper response.
//!
//! The one place that decides what a returned dict, tuple, bytes or
//! `Response` means on the wire.

use bytes::Bytes;
use cello_core::http::problem::{self, Problem};
use cello_core::server::Body;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyInt, PyTuple};

use crate::conversion::headers::extract_headers;
use crate::conversion::json_writer::to_json;
use crate::types::response::{Payload, Response, ResponseParts, JSON_TYPE, OCTET_STREAM_TYPE};

const PROBLEM_TYPE: http::HeaderValue = http::HeaderValue::from_static(problem::CONTENT_TYPE);

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
                parts.replace_headers(&extract_headers(Some(&tuple.get_item(2)?))?);
            }
            return Ok(parts);
        }
    }
    if let Ok(b) = value.cast::<PyBytes>() {
        return Ok(ResponseParts::bytes(
            200,
            OCTET_STREAM_TYPE,
            Bytes::copy_from_slice(b.as_bytes()),
        ));
    }
    if let Ok(b) = value.cast::<PyByteArray>() {
        return Ok(ResponseParts::bytes(200, OCTET_STREAM_TYPE, b.to_vec()));
    }
    match to_json(value) {
        Ok(body) => Ok(ResponseParts::bytes(200, JSON_TYPE, body)),
        // Not data: an object that knows its response (a `ProblemDetails`)?
        // Asked only here, so plain data pays nothing for it.
        Err(not_json) => match own_response(value)? {
            Some(response) => to_parts(&response),
            None => Err(not_json),
        },
    }
}

/// `value.__cello_response__()`, the response an object (a returned or
/// raised `ProblemDetails`) stands for; None when it has no such method.
pub fn own_response<'py>(value: &Bound<'py, PyAny>) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = value.py();
    let Ok(method) = value.getattr(pyo3::intern!(py, "__cello_response__")) else {
        return Ok(None);
    };
    let response = method.call0()?;
    if !response.is_instance_of::<Response>() {
        return Err(pyo3::exceptions::PyTypeError::new_err(format!(
            "__cello_response__() must return a Response, not {}",
            response.get_type().name()?
        )));
    }
    Ok(Some(response))
}

/// What a handler's return value means, as a `Response`: the same object
/// when it is one. Python middleware gets every response in this form.
#[pyfunction]
pub fn as_response<'py>(value: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    if value.is_instance_of::<Response>() {
        return Ok(value.clone());
    }
    Ok(Bound::new(value.py(), Response::from_parts(to_parts(value)?))?.into_any())
}

/// A problem as response parts.
pub fn problem_parts(problem: &Problem) -> ResponseParts {
    ResponseParts::bytes(problem.status, PROBLEM_TYPE, problem.to_json())
}

/// Applies the rules every door shares: `content-length` for byte bodies, no
/// body for 1xx/204/304, and no body (but the GET length) for HEAD.
pub fn finalize(parts: &mut ResponseParts, head: bool) {
    frame(parts, head, true);
}

/// `finalize` for a response hyper writes. hyper puts a full body's length
/// on the wire itself, from the body, so the header is made here only for
/// HEAD, whose body is not sent; a made header value is an allocation that
/// hyper would only copy. A length the handler set is still replaced.
pub fn finalize_for_hyper(parts: &mut ResponseParts, head: bool) {
    frame(parts, head, head);
}

fn frame(parts: &mut ResponseParts, head: bool, length_header: bool) {
    let bodyless_status = parts.status < 200 || parts.status == 204 || parts.status == 304;
    let known_length = match &parts.payload {
        Payload::Bytes(body) => Some(body.len()),
        Payload::File(slice) => Some(slice.len as usize),
        Payload::Stream(_) => None,
    };
    if let Some(length) = known_length {
        if bodyless_status || !length_header {
            // Looked for first: most responses carry one or two headers, and
            // a scan of those costs less than the hashing `remove` does.
            if parts
                .headers
                .keys()
                .any(|name| name == http::header::CONTENT_LENGTH)
            {
                parts.headers.remove(http::header::CONTENT_LENGTH);
            }
        } else {
            parts
                .headers
                .insert(http::header::CONTENT_LENGTH, length.into());
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
    let fresh = std::mem::replace(response.headers_mut(), parts.headers);
    // A new, empty map owns no allocation, and its destructor's walk over
    // nothing costs more than the rest of this function: skip it.
    if fresh.capacity() == 0 {
        std::mem::forget(fresh);
    }
    response
}

/// A complete response from byte-payload parts, built without Python.
pub fn bytes_response(mut parts: ResponseParts, head: bool) -> http::Response<Body> {
    finalize_for_hyper(&mut parts, head);
    let body = match &parts.payload {
        Payload::Bytes(b) => Body::full(b.clone()),
        Payload::File(slice) => Body::file(slice.clone()),
        Payload::Stream(_) => Body::empty(),
    };
    to_http(parts, body)
}

/// A complete response for a problem, built without Python.
pub fn problem_response(problem: &Problem, head: bool) -> http::Response<Body> {
    bytes_response(problem_parts(problem), head)
}

#[cfg(test)]
mod tests {
    use super::{finalize, finalize_for_hyper, to_http};
    use crate::types::response::{ResponseParts, JSON, JSON_TYPE};
    use cello_core::server::Body;

    fn content_length(parts: &ResponseParts) -> Option<&str> {
        parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .map(|v| v.to_str().unwrap())
    }

    #[test]
    fn a_byte_body_gets_its_length_replacing_any_given_one() {
        let mut parts = ResponseParts::bytes(200, JSON_TYPE, "{\"a\":1}");
        parts.append_headers(&[("content-length".into(), "999".into())]);
        finalize(&mut parts, false);
        assert_eq!(
            parts
                .headers
                .get_all(http::header::CONTENT_LENGTH)
                .iter()
                .count(),
            1
        );
        assert_eq!(content_length(&parts), Some("7"));
    }

    #[test]
    fn for_hyper_a_full_body_leaves_its_length_to_hyper_and_drops_a_given_one() {
        let mut parts = ResponseParts::bytes(200, JSON_TYPE, "{\"a\":1}");
        parts.append_headers(&[("content-length".into(), "999".into())]);
        finalize_for_hyper(&mut parts, false);
        assert_eq!(content_length(&parts), None);
        let mut head = ResponseParts::bytes(200, JSON_TYPE, "{\"a\":1}");
        head.append_headers(&[("content-length".into(), "999".into())]);
        finalize_for_hyper(&mut head, true);
        assert_eq!(content_length(&head), Some("7"));
    }

    #[test]
    fn head_keeps_the_length_of_the_body_it_does_not_send() {
        let mut parts = ResponseParts::bytes(200, JSON_TYPE, "{\"a\":1}");
        finalize(&mut parts, true);
        assert_eq!(content_length(&parts), Some("7"));
        let response = to_http(parts, Body::empty());
        assert_eq!(response.headers()["content-type"], JSON);
        assert_eq!(response.headers()["content-length"], "7");
    }

    #[test]
    fn bodyless_statuses_carry_no_length() {
        for status in [101, 204, 304] {
            let mut parts = ResponseParts::bytes(status, JSON_TYPE, "{}");
            parts.append_headers(&[("content-length".into(), "2".into())]);
            finalize(&mut parts, false);
            assert_eq!(content_length(&parts), None, "{status}");
        }
    }
}
