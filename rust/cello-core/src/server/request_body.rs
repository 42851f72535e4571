//! The request body a [`Service`](super::Service) reads: hyper's body for a
//! TCP connection, or an HTTP/3 request stream's data. One type, so both
//! protocols feed the same pipeline.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};

use super::http3::H3Body;

/// Why a request body could not be read to its end (the client left or
/// broke the framing).
pub type ReadError = Box<dyn std::error::Error + Send + Sync>;

enum Kind {
    Hyper(Incoming),
    // Boxed: the HTTP/3 stream is larger than hyper's body, and the common
    // request should not carry its size.
    Http3(Box<H3Body>),
}

/// A request's body as it arrives.
pub struct RequestBody(Kind);

impl From<Incoming> for RequestBody {
    #[inline]
    fn from(incoming: Incoming) -> Self {
        RequestBody(Kind::Hyper(incoming))
    }
}

impl RequestBody {
    pub(crate) fn http3(body: H3Body) -> Self {
        RequestBody(Kind::Http3(Box::new(body)))
    }
}

impl hyper::body::Body for RequestBody {
    type Data = Bytes;
    type Error = ReadError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ReadError>>> {
        match &mut self.get_mut().0 {
            Kind::Hyper(incoming) => Pin::new(incoming)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(Into::into))),
            Kind::Http3(body) => body.poll_data(cx).map(|f| f.map(|r| r.map(Frame::data))),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Kind::Hyper(incoming) => incoming.is_end_stream(),
            Kind::Http3(body) => body.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match &self.0 {
            Kind::Hyper(incoming) => incoming.size_hint(),
            Kind::Http3(body) => body.size_hint(),
        }
    }
}

impl std::fmt::Debug for RequestBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Kind::Hyper(_) => f.write_str("RequestBody(HTTP/1.1)"),
            Kind::Http3(_) => f.write_str("RequestBody(HTTP/3)"),
        }
    }
}
