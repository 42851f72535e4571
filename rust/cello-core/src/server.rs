//! The HTTP/1.1 server: tokio accept loop, hyper connections, graceful stop.
//!
//! Generic over [`Service`], so the bindings crate plugs in Python dispatch and
//! tests plug in plain Rust closures.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A response body: complete bytes, or chunks arriving over a channel.
///
/// A producer that fails mid-stream sends `Err(StreamAborted)`: hyper then
/// drops the connection instead of ending the body cleanly, so the client
/// can tell the response is incomplete.
pub enum Body {
    Full(Option<Bytes>),
    Channel(mpsc::Receiver<Result<Bytes, StreamAborted>>),
}

/// The producer of a streamed body stopped before finishing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamAborted;

impl std::fmt::Display for StreamAborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response stream aborted by its producer")
    }
}

impl std::error::Error for StreamAborted {}

impl Body {
    pub fn empty() -> Self {
        Body::Full(None)
    }

    pub fn full(bytes: impl Into<Bytes>) -> Self {
        let bytes = bytes.into();
        if bytes.is_empty() {
            Body::Full(None)
        } else {
            Body::Full(Some(bytes))
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
        match self.get_mut() {
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Channel(rx) => rx.poll_recv(cx).map(|c| c.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Channel(_) => SizeHint::default(),
        }
    }
}

/// Addresses of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// Turns a request into a response. Errors must already be responses.
pub trait Service: Send + Sync + 'static {
    type Future: Future<Output = http::Response<Body>> + Send + 'static;
    fn call(&self, req: http::Request<Incoming>, conn: ConnInfo) -> Self::Future;
}

struct PerConnection<S> {
    service: Arc<S>,
    conn: ConnInfo,
}

impl<S: Service> hyper::service::Service<http::Request<Incoming>> for PerConnection<S> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = OkFuture<S::Future>;

    fn call(&self, req: http::Request<Incoming>) -> Self::Future {
        OkFuture(self.service.call(req, self.conn))
    }
}

/// Wraps an infallible response future into hyper's `Result`.
pub struct OkFuture<F>(F);

impl<F: Future> Future for OkFuture<F> {
    type Output = Result<F::Output, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: structural pinning of the only field; it is never moved out.
        let inner = unsafe { self.map_unchecked_mut(|s| &mut s.0) };
        inner.poll(cx).map(Ok)
    }
}

/// Connection-level settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most request headers accepted; more gives 431.
    pub max_headers: usize,
    /// How long in-flight connections may take to finish after a stop.
    pub shutdown_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_headers: 100,
            shutdown_timeout: Duration::from_secs(30),
        }
    }
}

/// Binds a listening socket (`SO_REUSEADDR`, non-blocking) before any runtime
/// exists, so it can be shared by forked workers later.
pub fn bind(host: &str, port: u16) -> io::Result<std::net::TcpListener> {
    let addr = (host, port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "host resolved to nothing"))?;
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// Serves connections until `stop` resolves, then lets open connections
/// finish (bounded by `shutdown_timeout`).
pub async fn serve<S, F>(
    listener: std::net::TcpListener,
    service: Arc<S>,
    config: ServerConfig,
    stop: F,
) -> io::Result<()>
where
    S: Service,
    F: Future<Output = ()>,
{
    let listener = TcpListener::from_std(listener)?;
    let local = listener.local_addr()?;
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    // No `pipeline_flush`: with it, hyper never flushes the automatic 400/431
    // it writes for unparsable requests. Pipelined requests work without it.
    builder.keep_alive(true).max_headers(config.max_headers);
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // Per-connection failures (e.g. the peer reset before accept,
                // or fd exhaustion) must not stop the server.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let svc = PerConnection {
            service: service.clone(),
            conn: ConnInfo { peer, local },
        };
        let conn = builder.serve_connection(TokioIo::new(stream), svc);
        let watched = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = watched.await;
        });
    }
    drop(listener);
    let _ = tokio::time::timeout(config.shutdown_timeout, graceful.shutdown()).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Ready;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Echo;

    impl Service for Echo {
        type Future = Ready<http::Response<Body>>;
        fn call(&self, req: http::Request<Incoming>, conn: ConnInfo) -> Self::Future {
            let text = format!("{} {} from {}", req.method(), req.uri(), conn.peer.ip());
            std::future::ready(http::Response::new(Body::full(text)))
        }
    }

    #[tokio::test]
    async fn serves_pipelined_keep_alive_requests_then_stops() {
        let listener = bind("127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            Arc::new(Echo),
            ServerConfig::default(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        client.read_to_string(&mut reply).await.unwrap();
        assert!(reply.contains("GET /a from 127.0.0.1"), "{reply}");
        assert!(reply.contains("GET /b from 127.0.0.1"), "{reply}");
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn streamed_body_arrives_chunked() {
        let (tx, rx) = mpsc::channel(2);
        tokio::spawn(async move {
            for part in ["one", "two"] {
                tx.send(Ok(Bytes::from(part))).await.unwrap();
            }
        });
        let collected = http_body_util::BodyExt::collect(Body::Channel(rx))
            .await
            .unwrap()
            .to_bytes();
        assert_eq!(collected, "onetwo");
    }
}
