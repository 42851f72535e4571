//! A connection's byte stream: plain TCP or TLS over it, with the bytes read
//! while telling HTTP/2's preface from an HTTP/1 request given back first.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// What an HTTP/2 connection starts with (RFC 9113 §3.4).
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

pub(crate) enum Inner {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

pub(crate) struct Io {
    /// Read already, to be read again first.
    prefix: Bytes,
    inner: Inner,
}

impl Io {
    pub(crate) fn new(inner: Inner) -> Self {
        Io {
            prefix: Bytes::new(),
            inner,
        }
    }

    /// Reads until the first bytes are HTTP/2's preface (true) or cannot
    /// be (false); `None` when the client closed before saying anything.
    pub(crate) async fn starts_with_preface(&mut self) -> Option<bool> {
        let mut seen = Vec::with_capacity(PREFACE.len());
        let mut buf = [0u8; 24];
        let answer = loop {
            let want = PREFACE.len() - seen.len();
            let n = match &mut self.inner {
                Inner::Plain(s) => s.read(&mut buf[..want]).await,
                Inner::Tls(s) => s.read(&mut buf[..want]).await,
            };
            match n {
                Ok(0) | Err(_) if seen.is_empty() => return None,
                Ok(0) | Err(_) => break false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            if !PREFACE.starts_with(&seen) {
                break false;
            }
            if seen.len() == PREFACE.len() {
                break true;
            }
        };
        self.prefix = Bytes::from(seen);
        Some(answer)
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.prefix.is_empty() {
            let n = this.prefix.len().min(buf.remaining());
            buf.put_slice(&this.prefix[..n]);
            this.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        match &mut this.inner {
            Inner::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_write(cx, data),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, data),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.inner {
            Inner::Plain(s) => s.is_write_vectored(),
            Inner::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_flush(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().inner {
            Inner::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Inner::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
