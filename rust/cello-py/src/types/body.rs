//! Request bodies: what a `Request` holds of its body (read, pending on the
//! socket, or failed), reading one within a limit, and the exception a
//! handler sees when it could not be read.

use bytes::Bytes;
use cello_core::http::multipart::{Spool, SpoolFile, Spooled};
use cello_core::server::RequestBody;
use http_body_util::BodyExt;
use pyo3::prelude::*;

use crate::ffi::support::{error, support};

/// The body: read already, still on the socket, or consumed by a failure.
pub enum BodyState {
    Ready(Bytes),
    /// A large multipart body, streamed to an unlinked temporary file as it
    /// arrived (see `read_spooled`).
    Spooled(SpoolFile),
    /// Read ahead for a handler on an I/O thread, and that read failed: the
    /// error is raised only if the handler asks for the body.
    Failed(BodyError),
    Pending {
        incoming: RequestBody,
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
pub async fn read_limited(mut incoming: RequestBody, limit: usize) -> Result<Bytes, BodyError> {
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

/// How much of a multipart body stays in memory before the rest goes to a
/// spool file.
pub const SPOOL_THRESHOLD: usize = 1024 * 1024;

/// Whether a body is read into a spool rather than into memory: multipart
/// forms, the bodies that carry files.
pub fn spools(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Reads `incoming` to the end like `read_limited`, keeping what passes
/// `SPOOL_THRESHOLD` in a spool file instead of memory.
pub async fn read_spooled(mut incoming: RequestBody, limit: usize) -> Result<BodyState, BodyError> {
    let mut spool = Spool::new(SPOOL_THRESHOLD, None);
    while let Some(frame) = incoming.frame().await {
        let frame = frame.map_err(|_| BodyError::Disconnected)?;
        if let Ok(data) = frame.into_data() {
            if spool.len() + data.len() as u64 > limit as u64 {
                return Err(BodyError::TooLarge(limit));
            }
            // The spool keeps a body in memory when the disk refuses it, so
            // the only failure left is reading back what it wrote: the body
            // is then lost, as if the client had gone.
            spool.write(&data).map_err(|_| BodyError::Disconnected)?;
        }
    }
    Ok(match spool.finish() {
        Spooled::Memory(bytes) => BodyState::Ready(bytes),
        Spooled::File(file) => BodyState::Spooled(file),
    })
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
