//! The response body type the server sends: whole bytes, a channel of
//! chunks, or a slice of a file; a streamed one may pass the middleware's
//! encoders on its way out.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use tokio::sync::mpsc;
use tokio::time::{Instant, Sleep};

use crate::http::file::{FileSlice, CHUNK};
use crate::middleware::Encoders;
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
    /// A file slice and how much of it has been sent.
    File(FileSlice, u64),
}

/// A streamed body's keepalive: `beat` goes out whenever `every` passes
/// without a chunk (an event stream's comment, so proxies see traffic).
/// A chunk only notes the time; the timer is moved once per quiet period at
/// most, never per chunk.
struct Heartbeat {
    every: Duration,
    beat: Bytes,
    last: Instant,
    /// Made on the first poll, inside the runtime (the body may be built on
    /// a thread that has none).
    timer: Option<Pin<Box<Sleep>>>,
}

impl Heartbeat {
    fn poll_beat(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        let (every, last) = (self.every, self.last);
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(last + every)));
        loop {
            std::task::ready!(timer.as_mut().poll(cx));
            let now = Instant::now();
            let due = self.last + every;
            if now >= due {
                self.last = now;
                timer.as_mut().reset(now + every);
                return Poll::Ready(Some(Ok(self.beat.clone())));
            }
            // A chunk went out since the timer was set: wait the rest.
            timer.as_mut().reset(due);
        }
    }
}

/// A response body: complete bytes, or chunks arriving over a channel.
///
/// A producer that fails mid-stream sends `Err(StreamAborted)`: hyper then
/// drops the connection instead of ending the body cleanly, so the client
/// can tell the response is incomplete. The body also carries the guard that
/// marks its request finished when the body is done with.
pub struct Body {
    kind: Kind,
    /// Set for a streamed body whose chunks are transformed on the way out;
    /// taken once they have been told the body ended.
    encoders: Option<Encoders>,
    guard: Option<RequestGuard>,
    on_drop: Option<Box<dyn FnOnce() + Send + Sync>>,
    heartbeat: Option<Box<Heartbeat>>,
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

    /// A file slice, read chunk by chunk as the connection takes it. The
    /// reads are synchronous: from the page cache they cost less than
    /// handing each one to another thread would.
    pub fn file(slice: FileSlice) -> Self {
        Body::from_kind(Kind::File(slice, 0))
    }

    fn from_kind(kind: Kind) -> Self {
        Body {
            kind,
            encoders: None,
            guard: None,
            on_drop: None,
            heartbeat: None,
        }
    }

    /// Sends `beat` whenever a streamed body has been quiet for `every`
    /// (nothing for a body that is not streamed).
    pub fn with_heartbeat(mut self, every: Duration, beat: Bytes) -> Self {
        if matches!(self.kind, Kind::Channel(_)) && !every.is_zero() {
            self.heartbeat = Some(Box::new(Heartbeat {
                every,
                beat,
                last: Instant::now(),
                timer: None,
            }));
        }
        self
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

    /// The exact length, when it is known before sending.
    pub fn exact_len(&self) -> Option<u64> {
        if self.encoders.as_ref().is_some_and(|e| !e.keep_length()) {
            return None;
        }
        match &self.kind {
            Kind::Full(None) => Some(0),
            Kind::Full(Some(b)) => Some(b.len() as u64),
            Kind::Channel(_) => None,
            Kind::File(slice, _) => Some(slice.len),
        }
    }

    /// The body's bytes when it is held whole in memory, leaving it empty.
    pub fn take_full(&mut self) -> Option<Bytes> {
        match &mut self.kind {
            Kind::Full(bytes) => Some(bytes.take().unwrap_or_default()),
            _ => None,
        }
    }

    /// Makes this body `bytes`, dropping what it held (a stream's producer
    /// sees its channel close).
    pub fn set_full(&mut self, bytes: Bytes) {
        self.kind = Kind::Full((!bytes.is_empty()).then_some(bytes));
        self.encoders = None;
    }

    /// Passes every chunk through `encoders` on its way out.
    pub fn encode_with(&mut self, encoders: Encoders) {
        self.encoders = Some(encoders);
    }

    fn poll_source(&mut self, cx: &mut Context<'_>) -> Poll<Option<Chunk>> {
        match &mut self.kind {
            Kind::Full(bytes) => Poll::Ready(bytes.take().map(Ok)),
            Kind::Channel(rx) => match (rx.poll_recv(cx), self.heartbeat.as_deref_mut()) {
                (Poll::Pending, Some(heartbeat)) => heartbeat.poll_beat(cx),
                (Poll::Ready(chunk), Some(heartbeat)) => {
                    heartbeat.last = Instant::now();
                    Poll::Ready(chunk)
                }
                (polled, None) => polled,
            },
            Kind::File(slice, sent) => Poll::Ready(match slice.read_at(*sent, CHUNK) {
                Ok(chunk) if chunk.is_empty() => None,
                Ok(chunk) => {
                    *sent += chunk.len() as u64;
                    Some(Ok(chunk))
                }
                Err(_) => Some(Err(StreamAborted)),
            }),
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
        let polled = loop {
            let chunk = std::task::ready!(this.poll_source(cx));
            let Some(encoders) = this.encoders.as_mut() else {
                break chunk;
            };
            match chunk {
                // An encoder may hold a chunk back (it has too little to
                // emit yet); an empty data frame would say nothing.
                Some(Ok(data)) => {
                    let encoded = encoders.chunk(data);
                    if !encoded.is_empty() {
                        break Some(Ok(encoded));
                    }
                }
                Some(Err(aborted)) => break Some(Err(aborted)),
                None => {
                    let tail = encoders.finish();
                    this.encoders = None;
                    if !tail.is_empty() {
                        break Some(Ok(tail));
                    }
                    break None;
                }
            }
        };
        if matches!(polled, None | Some(Err(_))) {
            this.guard.take();
        }
        Poll::Ready(polled.map(|r| r.map(Frame::data)))
    }

    fn is_end_stream(&self) -> bool {
        matches!(self.kind, Kind::Full(None)) && self.encoders.is_none()
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

    async fn next_data(body: &mut Body) -> Option<Bytes> {
        let frame = http_body_util::BodyExt::frame(body).await?.unwrap();
        Some(frame.into_data().unwrap())
    }

    #[tokio::test(start_paused = true)]
    async fn a_quiet_stream_beats_and_a_busy_one_does_not() {
        let (tx, rx) = mpsc::channel(4);
        let mut body =
            Body::channel(rx).with_heartbeat(Duration::from_secs(15), Bytes::from(": ka\n\n"));
        // Chunks closer together than the period: no beat between them.
        for part in ["a", "b", "c"] {
            tokio::time::advance(Duration::from_secs(10)).await;
            tx.send(Ok(Bytes::from(part))).await.unwrap();
            assert_eq!(next_data(&mut body).await.unwrap(), part);
        }
        // Quiet: a beat 15 s after the last chunk, then one every 15 s.
        let start = Instant::now();
        assert_eq!(next_data(&mut body).await.unwrap(), ": ka\n\n");
        assert_eq!(start.elapsed(), Duration::from_secs(15));
        assert_eq!(next_data(&mut body).await.unwrap(), ": ka\n\n");
        assert_eq!(start.elapsed(), Duration::from_secs(30));
        // The producer ending ends the body, beats or not.
        tx.send(Ok(Bytes::from("last"))).await.unwrap();
        drop(tx);
        assert_eq!(next_data(&mut body).await.unwrap(), "last");
        assert!(next_data(&mut body).await.is_none());
    }

    #[test]
    fn only_a_streamed_body_takes_a_heartbeat() {
        let body = Body::full("x").with_heartbeat(Duration::from_secs(1), Bytes::from("b"));
        assert!(body.heartbeat.is_none());
    }

    #[test]
    fn drop_hook_runs_once_when_the_body_is_dropped() {
        let (tx, rx) = std::sync::mpsc::channel();
        let body = Body::full("x").on_drop(move || tx.send(()).unwrap());
        drop(body);
        assert!(rx.try_recv().is_ok());
        assert!(rx.try_recv().is_err());
    }

    /// Wraps each chunk in brackets and ends the body with a full stop.
    struct Brackets;

    impl crate::middleware::Encoder for Brackets {
        fn chunk(&mut self, data: Bytes) -> Bytes {
            format!("[{}]", String::from_utf8_lossy(&data)).into()
        }

        fn finish(&mut self) -> Bytes {
            Bytes::from_static(b".")
        }
    }

    fn brackets() -> Encoders {
        let mut out = crate::middleware::Outgoing::new(200, http::HeaderMap::new(), None, false);
        out.encode_with(Box::new(Brackets));
        out.take_encoders().unwrap()
    }

    #[tokio::test]
    async fn an_encoded_stream_passes_each_chunk_and_its_end_through_the_encoders() {
        let (tx, rx) = mpsc::channel(4);
        for part in ["one", "two"] {
            tx.send(Ok(Bytes::from(part))).await.unwrap();
        }
        drop(tx);
        let mut body = Body::channel(rx);
        body.encode_with(brackets());
        assert_eq!(body.exact_len(), None);
        let collected = http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(collected, "[one][two].");
    }

    #[tokio::test]
    async fn a_file_body_sends_its_slice() {
        use std::io::Write;
        let path = std::env::temp_dir().join(format!("cello-body-file-{}", std::process::id()));
        let mut f = std::fs::File::create(&path).unwrap();
        let content: Vec<u8> = (0..(CHUNK + 10)).map(|i| (i % 251) as u8).collect();
        f.write_all(&content).unwrap();
        let file = std::sync::Arc::new(std::fs::File::open(&path).unwrap());
        std::fs::remove_file(&path).unwrap();
        let len = content.len() as u64 - 5;
        let body = Body::file(FileSlice::new(file, 5, len));
        assert_eq!(body.exact_len(), Some(len));
        let collected = http_body_util::BodyExt::collect(body)
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(&collected[..], &content[5..]);
    }

    #[test]
    fn full_body_knows_its_length() {
        assert_eq!(Body::full("abc").exact_len(), Some(3));
        assert_eq!(Body::empty().exact_len(), Some(0));
        assert!(hyper::body::Body::is_end_stream(&Body::full("")));
    }
}
