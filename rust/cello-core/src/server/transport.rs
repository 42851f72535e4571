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
/// An HTTP/2 frame's fixed header, and the SETTINGS frame's type (RFC 9113 §4.1, §6.5).
pub(crate) const FRAME_HEADER_LEN: usize = 9;
pub(crate) const SETTINGS: u8 = 0x4;

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

impl Io {
    /// After a 101 to h2c: reads the client's preface and first frame (its
    /// SETTINGS), after `already` (what HTTP/1.1 had read ahead), then puts
    /// `stream1` after them, to be read as if the client had sent it. False
    /// when the client does not start HTTP/2 as it must.
    pub(crate) async fn replay_after_settings(&mut self, already: Bytes, stream1: Bytes) -> bool {
        // SETTINGS carries six bytes per setting; no client sends many.
        const MAX_SETTINGS: usize = 6 * 64;
        let mut seen = Vec::from(&already[..]);
        seen.extend_from_slice(&self.prefix);
        let head = PREFACE.len() + FRAME_HEADER_LEN;
        let settings_end = loop {
            let compared = seen.len().min(PREFACE.len());
            if seen[..compared] != PREFACE[..compared] {
                return false;
            }
            if seen.len() >= head {
                let frame = &seen[PREFACE.len()..head];
                let length = usize::from(frame[0]) << 16
                    | usize::from(frame[1]) << 8
                    | usize::from(frame[2]);
                if frame[3] != SETTINGS || length > MAX_SETTINGS {
                    return false;
                }
                if seen.len() >= head + length {
                    break head + length;
                }
            }
            let mut buf = [0u8; 512];
            let n = match &mut self.inner {
                Inner::Plain(s) => s.read(&mut buf).await,
                Inner::Tls(s) => s.read(&mut buf).await,
            };
            match n {
                Ok(0) | Err(_) => return false,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        };
        let mut replay = Vec::with_capacity(seen.len() + stream1.len());
        replay.extend_from_slice(&seen[..settings_end]);
        replay.extend_from_slice(&stream1);
        replay.extend_from_slice(&seen[settings_end..]);
        self.prefix = Bytes::from(replay);
        true
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
