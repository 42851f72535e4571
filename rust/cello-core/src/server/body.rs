//! The response body type the server sends: whole bytes or a channel of chunks.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;

use crate::server::conn::RequestGuard;

/// The producer of a streamed body stopped before finishing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAborted;

impl std::fmt::Display for StreamAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response stream aborted by its producer")
    }
}

impl std::error::Error for StreamAborted {}

/// A chunk sent through a streaming body's channel.
pub type Chunk = Result<Bytes, StreamAborted>;

enum Kind {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Chunk>),
}

/// A response body: complete bytes, or chunks arriving over a channel.
///
/// A producer that fails mid-stream sends `Err(StreamAborted)`: hyper then
/// drops the connection instead of ending the body cleanly, so the client
/// can tell the response is incomplete. The body also carries the guard that
/// marks its request finished when the body is done with.
pub struct Body {
    kind: Kind,
    guard: Option<RequestGuard>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for Body {
    fn drop(&mut self) {
        if let Some(hook) = self.on_drop.take() {
            hook();
        }
    }
}

impl Body {
    pub fn empty() -> Self {
        Body::from_kind(Kind::Full(None))
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        Body::from_kind(Kind::Full((!bytes.is_empty()).then_some(bytes)))
    }

    /// A body fed chunk by chunk through `rx`.
    pub fn channel(rx: mpsc::Receiver<Chunk>) -> Self {
        Body::from_kind(Kind::Channel(rx))
    }

    fn from_kind(kind: Kind) -> Self {
        Body {
            kind,
            guard: None,
            on_drop: None,
        }
    }

    /// Runs `hook` when the server is done with the body: sent completely,
    /// or abandoned because the client went away.
    pub fn on_drop(mut self, hook: impl FnOnce() + Send + Sync + 'static) -> Self {
        self.on_drop = Some(Box::new(hook));
        self
    }

    pub(crate) fn set_guard(&mut self, guard: RequestGuard) {
        self.guard = Some(guard);
    }

    /// The exact length, when the body is complete bytes.
    pub fn exact_len(&self) -> Option<u64> {
        match &self.kind {
            Kind::Full(None) => Some(0),
            Kind::Full(Some(b)) => Some(b.len() as u64),
            Kind::Channel(_) => None,
        }
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = StreamAborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StreamAborted>>> {
        let this = self.get_mut();
        let polled = match &mut this.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Kind::Channel(rx) => rx.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data))),
        };
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            this.guard.take();
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self.exact_len() {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streamed_body_arrives_in_order() {
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            for part in ["one", "two"] {
                tx.send(Ok(Bytes::from(part))).await.unwrap();
            }
        });
        let collected = http_body_util::BodyExt::collect(Body::channel(rx))
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(collected, "onetwo");
    }

    #[tokio::test]
    async fn aborted_stream_is_an_error() {
        let (tx, rx) = mpsc::channel(2);
        tx.send(Ok(Bytes::from("part"))).await.unwrap();
        tx.send(Err(StreamAborted)).await.unwrap();
        drop(tx);
        let result = http_body_util::BodyExt::collect(Body::channel(rx)).await;
        assert!(result.is_err());
    }

    #[test]
    fn drop_hook_runs_once_when_the_body_is_dropped() {
        let (tx, rx) = std::sync::mpsc::channel();
        let body = Body::full("x").on_drop(move || tx.send(()).unwrap());
        drop(body);
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn full_body_knows_its_length() {
        assert_eq!(Body::full("abc").exact_len(), Some(3));
        assert_eq!(Body::empty().exact_len(), Some(0));
        assert!(hyper::body::Body::is_end_stream(&Body::full("")));
    }
}
