//! Request bodies: what a `Request` holds of its body (read, pending on the
//! socket, or failed), reading one within a limit, and the exception a
//! handler sees when it could not be read.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use pyo3::prelude::*;

use crate::ffi::support::{error, support};

/// The body: read already, still on the socket, or consumed by a failure.
pub enum BodyState {
    Ready(Bytes),
    /// Read ahead for a handler on an I/O thread, and that read failed: the
    /// error is raised only if the handler asks for the body.
    Failed(BodyError),
    Pending {
        incoming: Incoming,
        runtime: tokio::runtime::Handle,
        limit: usize,
        timeout: Option<std::time::Duration>,
    },
    Gone,
}

/// Why reading a body failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyError {
    TooLarge(usize),
    Disconnected,
    TimedOut,
}

/// Reads `incoming` to the end, failing as soon as it passes `limit`.
pub async fn read_limited(mut incoming: Incoming, limit: usize) -> Result<Bytes, BodyError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|_| BodyError::Disconnected)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(BodyError::TooLarge(limit));
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

/// The exception a handler sees when it asks for a body that could not be read.
pub(crate) fn body_error(py: Python<'_>, e: BodyError) -> PyErr {
    let support = match support(py) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match e {
        BodyError::TooLarge(limit) => error(
            py,
            &support.payload_too_large,
            &format!("request body exceeds the limit of {limit} bytes"),
        ),
        BodyError::Disconnected => error(
            py,
            &support.client_disconnected,
            "client disconnected while sending the body",
        ),
        BodyError::TimedOut => error(
            py,
            &support.request_timeout,
            "the request body was not received in time",
        ),
    }
}
