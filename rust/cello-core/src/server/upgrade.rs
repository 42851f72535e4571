//! Handing a connection over after a `101 Switching Protocols` response.
//!
//! The server drives hyper without letting it shut the socket down (see
//! `parse_error`), so hyper's own upgrade future never completes. Instead a
//! service that answers 101 puts an [`UpgradeTo`] in the response's
//! extensions; once hyper has written the response, the connection task
//! takes the socket and whatever hyper read past the request head, and sends
//! them as an [`Upgraded`] to whoever holds the receiver.
//!
//! The connection still counts as open for the server: it holds its
//! connection permit, a graceful stop is passed on through
//! [`Upgraded::closing`], and the stop waits (up to its timeout) until the
//! `Upgraded` is dropped.

use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::oneshot;

/// Why the server wants an upgraded connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closing {
    /// The server is stopping: close cleanly (WebSocket close 1001).
    GoingAway,
    /// A write waited past the write timeout: the client stopped reading.
    Stalled,
}

/// Put in a 101 response's extensions to receive the connection once the
/// response is on the wire.
/// (`Clone` as extensions must be; the clones share the one sender.)
#[derive(Clone)]
pub struct UpgradeTo(Arc<Mutex<Option<oneshot::Sender<Upgraded>>>>);

impl UpgradeTo {
    /// The extension, and the receiver the connection arrives on. The
    /// receiver errs if the client left before the 101 was written.
    pub fn new() -> (Self, oneshot::Receiver<Upgraded>) {
        let (tx, rx) = oneshot::channel();
        (UpgradeTo(Arc::new(Mutex::new(Some(tx)))), rx)
    }

    pub(crate) fn take(&self) -> Option<oneshot::Sender<Upgraded>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

/// An object-safe socket.
pub trait Socket: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Socket for T {}

/// The connection after a 101: reads give first what hyper had already
/// read past the request head, then the socket's bytes.
pub struct Upgraded {
    io: Box<dyn Socket>,
    read_buf: Bytes,
    /// Fires when the server wants the connection closed.
    pub closing: oneshot::Receiver<Closing>,
    /// Dropped with the connection: tells the server it is gone.
    _done: oneshot::Sender<()>,
}

impl Upgraded {
    pub(crate) fn new(
        io: Box<dyn Socket>,
        read_buf: Bytes,
        closing: oneshot::Receiver<Closing>,
        done: oneshot::Sender<()>,
    ) -> Self {
        Upgraded {
            io,
            read_buf,
            closing,
            _done: done,
        }
    }
}

impl Upgraded {
    /// Takes the receiver of the server's close request, for a task that
    /// waits on it while the connection itself is used elsewhere.
    pub fn take_closing(&mut self) -> oneshot::Receiver<Closing> {
        std::mem::replace(&mut self.closing, oneshot::channel().1)
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.read_buf.has_remaining() {
            let n = this.read_buf.len().min(buf.remaining());
            buf.put_slice(&this.read_buf[..n]);
            this.read_buf.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
