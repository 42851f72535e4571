//! Door 1's request bodies: reading them before a handler runs, and
//! discarding what nobody read so the connection can be reused.

use std::time::Duration;

use cello_core::server::Body;
use cello_core::server::RequestBody;
use hyper::body::Body as _;

use crate::types::body::{read_limited, read_spooled, BodyError, BodyState};

/// Methods whose bodies are left on the socket until the handler asks.
pub(crate) fn body_is_lazy(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::DELETE
    )
}

/// Reads an eagerly-read body within the body timeout.
pub(crate) async fn read_body(
    incoming: RequestBody,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<bytes::Bytes, BodyError> {
    match timeout {
        Some(d) => tokio::time::timeout(d, read_limited(incoming, limit))
            .await
            .unwrap_or(Err(BodyError::TimedOut)),
        None => read_limited(incoming, limit).await,
    }
}

/// Reads a body before its handler runs. For methods whose bodies are read
/// only on demand (`lazy`), a failed read is kept, to be raised only if the
/// handler asks for the body; for the others it is the answer. A `spool`ed
/// body (multipart) goes to disk past a threshold instead of into memory.
pub(crate) async fn read_first(
    incoming: RequestBody,
    lazy: bool,
    spool: bool,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<BodyState, BodyError> {
    let read = if spool {
        match timeout {
            Some(d) => tokio::time::timeout(d, read_spooled(incoming, limit))
                .await
                .unwrap_or(Err(BodyError::TimedOut)),
            None => read_spooled(incoming, limit).await,
        }
    } else {
        read_body(incoming, limit, timeout)
            .await
            .map(BodyState::Ready)
    };
    match read {
        Ok(body) => Ok(body),
        Err(e) if lazy => Ok(BodyState::Failed(e)),
        Err(e) => Err(e),
    }
}

/// Marks a response as the connection's last (a request body is left on it).
pub(crate) fn close_after(response: &mut http::Response<Body>) {
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
}

/// The last step of a refusal answered through Python: what is left of the
/// request body is discarded, or the connection closed when it is too large.
pub(crate) async fn finish_unread(
    incoming: RequestBody,
    too_long: bool,
    limit: usize,
    timeout: Option<Duration>,
    mut response: http::Response<Body>,
) -> http::Response<Body> {
    if incoming.is_end_stream() {
        return response;
    }
    if too_long {
        close_after(&mut response);
        return response;
    }
    discard_then(incoming, limit, timeout, response).await
}

/// Reads and drops a body nobody read, then returns `response`; a body that
/// is too large or too slow is left, and the connection closed after the
/// response, as it cannot be reused with a body still on it.
pub(crate) async fn discard_then(
    incoming: RequestBody,
    limit: usize,
    timeout: Option<Duration>,
    mut response: http::Response<Body>,
) -> http::Response<Body> {
    if read_body(incoming, limit, timeout).await.is_err() {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}
