//! The HTTP/1.1 and HTTP/2 server (TLS optional): tokio accept loop, hyper connections, limits,
//! timeouts and graceful stop.
//!
//! Generic over [`Service`], so the bindings crate plugs in Python dispatch and
//! tests plug in plain Rust services.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

pub mod access_log;
mod body;
pub mod clock;
mod conn;
mod h2_settings;
mod h2c;
pub mod http3;
mod parse_error;
mod request_body;
pub mod tls;
mod transport;
pub mod upgrade;

pub use body::{Body, Chunk, StreamAborted};
pub use conn::Timeouts;
use conn::{run_sweeper, ConnState, Expired, Registry, Switch, TrackedIo};
pub use h2_settings::Http2Settings;
use parse_error::HeadLimits;
pub use request_body::{ReadError, RequestBody};
use transport::{Inner, Io};

/// How long the last bytes of a finished connection may take to leave: a
/// client that stopped reading must not keep its task alive.
const FINISH_LIMIT: Duration = Duration::from_secs(10);

/// Addresses of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

/// Turns a request into a response. Errors must already be responses.
///
/// The response is boxed: it passes through several futures on its way to
/// hyper, and moving a pointer costs less than moving 176 bytes each time.
pub trait Service: Send + Sync + 'static {
    /// `Unpin`, so the server can drive a connection without letting hyper
    /// shut it down, and answer a request hyper could not parse (see
    /// `parse_error`).
    type Future: Future<Output = Box<http::Response<Body>>> + Send + Unpin + 'static;
    fn call(&self, req: http::Request<RequestBody>, conn: ConnInfo) -> Self::Future;
}

/// Connection-level settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Most request headers accepted; more gives 431.
    pub max_headers: usize,
    /// Largest request head in bytes; larger gives 431.
    pub max_header_size: usize,
    /// Connections served at once; further clients wait in the accept backlog.
    pub max_connections: usize,
    /// Requests served on one connection before it is closed (`None`: unlimited).
    pub max_requests_per_connection: Option<usize>,
    pub timeouts: Timeouts,
    /// How long in-flight requests may take to finish after a stop.
    pub shutdown_timeout: Duration,
    /// Serve TLS with this configuration (see [`tls::load_server_config`]).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Serve HTTP/2 too: over TLS when ALPN picks `h2`, in cleartext by
    /// prior knowledge.
    pub http2: Option<Http2Settings>,
    /// `Alt-Svc` added to every response (unless it has one): set when
    /// HTTP/3 is served too (see `http3::alt_svc`).
    pub alt_svc: Option<http::HeaderValue>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_headers: 100,
            max_header_size: 8192,
            max_connections: 10_000,
            max_requests_per_connection: None,
            timeouts: Timeouts::default(),
            shutdown_timeout: Duration::from_secs(30),
            tls: None,
            http2: None,
            alt_svc: None,
        }
    }
}

struct PerConnection<S> {
    service: Arc<S>,
    conn: ConnInfo,
    state: Arc<ConnState>,
    max_requests: Option<usize>,
    /// The TLS session, given to each request as an extension.
    tls: Option<Arc<tls::PeerTls>>,
    alt_svc: Option<&'static http::HeaderValue>,
    /// Set on a cleartext HTTP/1.1 connection of a server with HTTP/2 on:
    /// `Upgrade: h2c` is honoured, with frames up to this size.
    h2c_max_frame: Option<u32>,
}

impl<S: Service> hyper::service::Service<http::Request<Incoming>> for PerConnection<S> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Tracked<S::Future>;

    fn call(&self, mut req: http::Request<Incoming>) -> Self::Future {
        if let Some(tls) = &self.tls {
            req.extensions_mut().insert(tls.clone());
        }
        let guard = self.state.request_started();
        let last = self
            .max_requests
            .is_some_and(|max| self.state.requests.load(Ordering::Relaxed) >= max);
        // The connection's last allowed request closes it rather than switch.
        let switch = self.h2c_max_frame.filter(|_| !last).and_then(|max| {
            req.headers()
                .contains_key(http::header::UPGRADE)
                .then(|| h2c::accept(&req, max))
                .flatten()
        });
        let (inner, now) = match switch {
            Some(switch) => (None, Some(Box::new(switch.map(|()| Body::empty())))),
            None => (
                Some(self.service.call(req.map(RequestBody::from), self.conn)),
                None,
            ),
        };
        Tracked {
            inner,
            now,
            guard: Some(guard),
            last,
            alt_svc: self.alt_svc,
        }
    }
}

/// The service future plus the bookkeeping every response gets: the request
/// guard moves into the body, and the last allowed request closes the connection.
pub struct Tracked<F> {
    inner: Option<F>,
    /// A response the server makes itself (the 101 to h2c), in place of `inner`'s.
    now: Option<Box<http::Response<Body>>>,
    guard: Option<crate::server::conn::RequestGuard>,
    last: bool,
    alt_svc: Option<&'static http::HeaderValue>,
}

impl<F: Future<Output = Box<http::Response<Body>>>> Future for Tracked<F> {
    type Output = Result<http::Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `inner` is structurally pinned and never moved; the other
        // fields are Unpin and only taken or read.
        let this = unsafe { self.get_unchecked_mut() };
        let answer = match (this.now.take(), this.inner.as_mut()) {
            (Some(response), _) => Poll::Ready(response),
            (None, Some(inner)) => unsafe { Pin::new_unchecked(inner) }.poll(cx),
            (None, None) => unreachable!("a Tracked future polled after it completed"),
        };
        answer.map(|mut response| {
            if this.last {
                response.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            if let Some(alt_svc) = this.alt_svc {
                response
                    .headers_mut()
                    .entry(http::header::ALT_SVC)
                    .or_insert_with(|| alt_svc.clone());
            }
            if let Some(guard) = this.guard.take() {
                let switching = response.status() == http::StatusCode::SWITCHING_PROTOCOLS;
                // Taken out even without a 101: dropping it tells its receiver no.
                if let Some(to) = response.extensions_mut().remove::<upgrade::UpgradeTo>() {
                    if let (true, Some(to)) = (switching, to.take()) {
                        guard.state().set_upgrade(Switch::HandOver(to));
                    }
                } else if let (true, Some(h2c::Stream1(frame))) =
                    (switching, response.extensions_mut().remove())
                {
                    guard.state().set_upgrade(Switch::Http2(frame));
                }
                response.body_mut().set_guard(guard);
            }
            Ok(*response)
        })
    }
}

/// Binds a listening socket (`SO_REUSEADDR`, non-blocking) before any runtime
/// exists, so it can be shared by forked workers.
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

/// Serves connections until `stop` resolves, then stops accepting, closes
/// idle connections and lets busy ones finish (bounded by `shutdown_timeout`);
/// those still open then are closed.
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
    listener.set_nonblocking(true)?;
    let listener = TcpListener::from_std(listener)?;
    let local = listener.local_addr()?;
    let mut builder = http1::Builder::new();
    // No `pipeline_flush`: with it, hyper never flushes the automatic 400/431
    // it writes for unparsable requests (which `parse_error` turns into
    // problem responses). Pipelined requests work without it.
    builder
        .keep_alive(true)
        .max_headers(config.max_headers)
        .max_header_size(config.max_header_size)
        .header_read_timeout(None);
    let protocols = Arc::new(Protocols {
        http1: builder,
        http2: config.http2.as_ref().map(|h2| h2.builder()),
        h2c_max_frame: config.http2.as_ref().map(|h2| h2.max_frame_size),
        tls: config.tls.clone().map(tokio_rustls::TlsAcceptor::from),
        // A client that connects and never finishes its handshake is cut
        // off like one that never finishes its request head.
        handshake_limit: config.timeouts.header_read.unwrap_or(HANDSHAKE_LIMIT),
        limits: HeadLimits {
            max_headers: config.max_headers,
            max_header_size: config.max_header_size,
        },
    });
    // One small value per server start, so each response copies a pointer.
    let alt_svc: Option<&'static http::HeaderValue> =
        config.alt_svc.map(|value| &*Box::leak(Box::new(value)));
    let permits = Arc::new(Semaphore::new(config.max_connections.max(1)));
    // Each connection task holds a sender; `recv` returns None once all are gone.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    // Every connection is registered, so a stop can reach each one through
    // the channel its deadlines use: a connection task then waits on its
    // socket and that one channel, which costs nothing per request. (A
    // shared watch channel would take a lock on every wake-up.) The sweeper
    // also forgets closed connections.
    let registry = Arc::new(Registry::default());
    tokio::spawn(run_sweeper(Arc::downgrade(&registry), config.timeouts));
    tokio::pin!(stop);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit.expect("semaphore never closes"),
            () = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                // A failed accept (peer reset, fd exhaustion) must not stop the server.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let _ = stream.set_nodelay(true);
        let (state, expired) = ConnState::new();
        let svc = PerConnection {
            service: service.clone(),
            conn: ConnInfo { peer, local },
            state: state.clone(),
            max_requests: config.max_requests_per_connection,
            tls: None,
            alt_svc,
            h2c_max_frame: None,
        };
        let protocols = protocols.clone();
        let alive = alive_tx.clone();
        let conn_state = state.clone();
        let task = tokio::spawn(async move {
            let _permit = permit;
            let _alive = alive;
            connection(stream, svc, state, expired, &protocols).await;
        });
        registry.add(&conn_state, Some(task.abort_handle()));
    }
    drop(listener);
    registry.stop_all();
    drop(alive_tx);
    let _ = tokio::time::timeout(config.shutdown_timeout, alive_rx.recv()).await;
    registry.abort_all();
    Ok(())
}

/// How long a TLS handshake may take when no header-read timeout is set.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// How the server speaks on its connections, shared by all of them.
struct Protocols {
    http1: http1::Builder,
    /// Set when HTTP/2 is on: by ALPN over TLS, by prior knowledge without.
    http2: Option<http2::Builder<TokioExecutor>>,
    /// With HTTP/2 on: the largest frame it reads, which bounds the
    /// request an h2c upgrade replays (see `h2c`).
    h2c_max_frame: Option<u32>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    handshake_limit: Duration,
    limits: HeadLimits,
}

/// One connection from accept to close: the TLS handshake (when serving
/// TLS), then HTTP/2 or HTTP/1.1, then an upgraded connection's hand-over.
async fn connection<S: Service>(
    stream: tokio::net::TcpStream,
    mut svc: PerConnection<S>,
    state: Arc<ConnState>,
    mut expired: tokio::sync::oneshot::Receiver<Expired>,
    protocols: &Protocols,
) {
    // Over TLS, ALPN says which protocol (None: the client did not say).
    let (mut io, alpn_h2) = match &protocols.tls {
        None => (Io::new(Inner::Plain(stream)), None),
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(protocols.handshake_limit, acceptor.accept(stream));
            // A failed or slow handshake just closes the connection: it is
            // the client's problem, and logging each would let any scanner
            // fill the log.
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(_)) | Err(_) => return,
                },
                _ = &mut expired => return,
            };
            let session = tls.get_ref().1;
            let h2 = session.alpn_protocol().map(|p| p == b"h2");
            svc.tls = Some(Arc::new(tls::PeerTls::of(session)));
            (Io::new(Inner::Tls(Box::new(tls))), h2)
        }
    };
    let http2 = match (&protocols.http2, alpn_h2) {
        (None, _) | (Some(_), Some(false)) => None,
        (Some(builder), Some(true)) => Some(builder),
        // Cleartext, or TLS without ALPN: HTTP/2 by prior knowledge starts
        // with its preface.
        (Some(builder), None) => {
            let preface = tokio::select! {
                preface = io.starts_with_preface() => preface,
                _ = &mut expired => return,
            };
            match preface {
                None => return,
                Some(true) => Some(builder),
                Some(false) => None,
            }
        }
    };
    if let Some(builder) = http2 {
        serve_http2(io, svc, state, expired, builder).await;
        return;
    }
    if protocols.tls.is_none() {
        svc.h2c_max_frame = protocols.h2c_max_frame;
    }
    let io = TokioIo::new(TrackedIo::new(io, state.clone()));
    let mut conn = protocols.http1.serve_connection(io, svc);
    let mut watching = true;
    // Without shutdown: the socket must still be open for the
    // problem answer to a request hyper could not parse.
    let ended = loop {
        tokio::select! {
            biased;
            ended = std::future::poll_fn(|cx| conn.poll_without_shutdown(cx)) => break ended,
            why = &mut expired, if watching => {
                watching = false;
                match why {
                    Ok(Expired::Idle | Expired::Stopping) => {
                        Pin::new(&mut conn).graceful_shutdown()
                    }
                    Ok(Expired::Stalled) => return,
                    Err(_) => {}
                }
            }
        }
    };
    let upgrade = state.take_upgrade();
    let parts = conn.into_parts();
    match (&ended, upgrade, &protocols.http2) {
        (Ok(()), Some(Switch::HandOver(to)), _) => {
            let io = parts.io.into_inner();
            hand_over(io, parts.read_buf, to, &state, expired, watching).await;
            return;
        }
        // Not once a stop or deadline has fired: the 101 was the last answer.
        (Ok(()), Some(Switch::Http2(stream1)), Some(builder)) if watching => {
            let mut io = parts.io.into_inner().into_inner();
            let mut svc = parts.service;
            svc.h2c_max_frame = None;
            // The client's preface is due at once: as slow as a TLS handshake, it is cut off.
            let replay = tokio::time::timeout(
                protocols.handshake_limit,
                io.replay_after_settings(parts.read_buf, stream1),
            );
            let replayed = tokio::select! {
                replayed = replay => matches!(replayed, Ok(true)),
                _ = &mut expired => false,
            };
            if replayed {
                serve_http2(io, svc, state, expired, builder).await;
            }
            return;
        }
        _ => {}
    }
    let io = parts.io.into_inner();
    let _ = tokio::time::timeout(FINISH_LIMIT, io.finish(&ended, protocols.limits)).await;
}

/// Serves an HTTP/2 connection. Idle or stopping, it is closed gracefully
/// (GOAWAY, streams in flight finish); stalled, it is dropped.
async fn serve_http2<S: Service>(
    io: Io,
    svc: PerConnection<S>,
    state: Arc<ConnState>,
    mut expired: tokio::sync::oneshot::Receiver<Expired>,
    builder: &http2::Builder<TokioExecutor>,
) {
    let io = TokioIo::new(TrackedIo::for_http2(io, state));
    let conn = builder.serve_connection(io, svc);
    tokio::pin!(conn);
    let mut watching = true;
    loop {
        tokio::select! {
            biased;
            _ = conn.as_mut() => return,
            why = &mut expired, if watching => {
                watching = false;
                match why {
                    Ok(Expired::Idle | Expired::Stopping) => conn.as_mut().graceful_shutdown(),
                    Ok(Expired::Stalled) => return,
                    Err(_) => {}
                }
            }
        }
    }
}

/// Gives an upgraded connection to its new owner, then stays with it until
/// it is dropped: the connection keeps its permit, stays busy for the
/// sweeper (no idle deadline), and hears of a stop or a stalled write.
async fn hand_over(
    io: TrackedIo<Io>,
    read_buf: bytes::Bytes,
    to: tokio::sync::oneshot::Sender<upgrade::Upgraded>,
    state: &Arc<ConnState>,
    mut expired: tokio::sync::oneshot::Receiver<Expired>,
    watching: bool,
) {
    let _busy = state.request_started();
    let (closing_tx, closing_rx) = tokio::sync::oneshot::channel();
    let (done_tx, mut done_rx) = tokio::sync::oneshot::channel::<()>();
    let upgraded = upgrade::Upgraded::new(Box::new(io), read_buf, closing_rx, done_tx);
    if to.send(upgraded).is_err() {
        return;
    }
    let mut closing_tx = Some(closing_tx);
    let mut watching = watching;
    loop {
        tokio::select! {
            _ = &mut done_rx => return,
            why = &mut expired, if watching => {
                watching = false;
                let why = match why {
                    Ok(Expired::Stopping) => upgrade::Closing::GoingAway,
                    Ok(Expired::Stalled) => upgrade::Closing::Stalled,
                    // Idle cannot fire while the connection is busy.
                    Ok(Expired::Idle) | Err(_) => continue,
                };
                if let Some(tx) = closing_tx.take() {
                    let _ = tx.send(why);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Ready;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    struct Echo;

    impl Service for Echo {
        type Future = Ready<Box<http::Response<Body>>>;
        fn call(&self, req: http::Request<RequestBody>, conn: ConnInfo) -> Self::Future {
            let text = format!("{} {} from {}", req.method(), req.uri(), conn.peer.ip());
            std::future::ready(Box::new(http::Response::new(Body::full(text))))
        }
    }

    /// Answers every request the way hyper answers one it cannot parse.
    struct LooksLikeHyper;

    impl Service for LooksLikeHyper {
        type Future = Ready<Box<http::Response<Body>>>;
        fn call(&self, _req: http::Request<RequestBody>, _conn: ConnInfo) -> Self::Future {
            let mut response = http::Response::new(Body::empty());
            *response.status_mut() = http::StatusCode::BAD_REQUEST;
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
            std::future::ready(Box::new(response))
        }
    }

    async fn start(
        config: ServerConfig,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        start_service(Echo, config).await
    }

    async fn start_service<S: Service>(
        service: S,
        config: ServerConfig,
    ) -> (
        SocketAddr,
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let listener = bind("127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, Arc::new(service), config, async move {
            let _ = stop_rx.await;
        }));
        (addr, stop_tx, server)
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(request).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), read_all(&mut client))
            .await
            .expect("the server closed the connection")
    }

    /// The status and problem body of a raw answer, checking its framing.
    fn problem(reply: &str) -> (u16, serde_json::Value) {
        let (head, body) = reply.split_once("\r\n\r\n").expect("a complete answer");
        assert!(
            head.contains("\r\ncontent-type: application/problem+json\r\n"),
            "{reply}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{reply}");
        assert!(
            head.contains(&format!("\r\ncontent-length: {}\r\n", body.len())),
            "{reply}"
        );
        assert!(head.contains("\r\ndate: "), "{reply}");
        let status = head[9..12].parse().unwrap();
        (status, serde_json::from_str(body).unwrap())
    }

    #[tokio::test]
    async fn unparsable_requests_get_problem_bodies() {
        let (addr, stop, server) = start(ServerConfig::default()).await;
        for request in [
            &b"NOT A REQUEST\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        ] {
            let (status, body) = problem(&exchange(addr, request).await);
            assert_eq!(status, 400);
            assert_eq!(body["title"], "Bad Request");
            let detail = body["detail"].as_str().unwrap();
            assert!(
                detail.starts_with("the request could not be parsed: "),
                "{detail}"
            );
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn heads_over_the_limits_get_431_problems() {
        let config = ServerConfig {
            max_headers: 4,
            max_header_size: 1024,
            ..ServerConfig::default()
        };
        let (addr, stop, server) = start(config).await;
        let many = b"GET / HTTP/1.1\r\nHost: x\r\na: 1\r\nb: 1\r\nc: 1\r\nd: 1\r\n\r\n";
        let large = format!(
            "GET / HTTP/1.1\r\nHost: x\r\nbig: {}\r\n\r\n",
            "v".repeat(2000)
        );
        for request in [&many[..], large.as_bytes()] {
            let (status, body) = problem(&exchange(addr, request).await);
            assert_eq!(status, 431);
            assert_eq!(
                body["detail"],
                "the request head is over the server's limits of 4 header fields and 1024 bytes"
            );
        }
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_target_over_hypers_uri_limit_is_a_414_problem() {
        let config = ServerConfig {
            max_header_size: 128 * 1024,
            ..ServerConfig::default()
        };
        let (addr, stop, server) = start(config).await;
        let request = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
        let (status, body) = problem(&exchange(addr, request.as_bytes()).await);
        assert_eq!(status, 414);
        assert_eq!(body["detail"], "the request target is too long");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn an_unparsable_request_after_a_served_one_gets_a_problem_too() {
        let (addr, stop, server) = start(ServerConfig::default()).await;
        let reply = exchange(
            addr,
            b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nNOT A REQUEST\r\n\r\n",
        )
        .await;
        let (first, second) = reply.split_at(reply.find("HTTP/1.1 400").expect("a 400"));
        assert!(first.contains("GET /a from 127.0.0.1"), "{reply}");
        assert_eq!(problem(second).0, 400);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_response_shaped_like_hypers_own_answer_is_sent_unchanged() {
        let (addr, stop, server) = start_service(LooksLikeHyper, ServerConfig::default()).await;
        let reply = exchange(addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
        let expected =
            "HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: ";
        assert!(reply.starts_with(expected), "{reply}");
        assert!(reply.ends_with(" GMT\r\n\r\n"), "{reply}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    async fn read_all(client: &mut tokio::net::TcpStream) -> String {
        let mut reply = String::new();
        let _ = client.read_to_string(&mut reply).await;
        reply
    }

    #[tokio::test]
    async fn serves_pipelined_keep_alive_requests_then_stops() {
        let (addr, stop, server) = start(ServerConfig::default()).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let reply = read_all(&mut client).await;
        assert!(reply.contains("GET /a from 127.0.0.1"), "{reply}");
        assert!(reply.contains("GET /b from 127.0.0.1"), "{reply}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn slow_headers_are_cut_off_but_idle_keep_alive_is_not() {
        let config = ServerConfig {
            timeouts: Timeouts {
                header_read: Some(Duration::from_millis(100)),
                idle: Some(Duration::from_secs(10)),
                write: None,
            },
            ..ServerConfig::default()
        };
        let (addr, stop, server) = start(config).await;
        // Half a request head, then silence: closed after the header timeout.
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        assert_eq!(read_all(&mut slow).await, "");
        // An idle connection outlives the header timeout and still works.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        idle.write_all(b"GET /late HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        assert!(read_all(&mut idle).await.contains("GET /late"));
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn idle_connections_are_closed_after_the_idle_timeout() {
        let config = ServerConfig {
            timeouts: Timeouts {
                idle: Some(Duration::from_millis(100)),
                ..Timeouts::default()
            },
            ..ServerConfig::default()
        };
        let (addr, stop, server) = start(config).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let reply = read_all(&mut client).await; // returns once the server closes
        assert!(reply.contains("GET /a"), "{reply}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn a_stop_closes_idle_keep_alive_connections_without_any_timeout_set() {
        let (addr, stop, server) = start(ServerConfig::default()).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut first = [0u8; 512];
        let n = client.read(&mut first).await.unwrap();
        assert!(String::from_utf8_lossy(&first[..n]).contains("GET /a"));
        // The connection is idle and kept alive; the stop must close it (the
        // default shutdown timeout is 30 s, so waiting it out would hang here).
        stop.send(()).unwrap();
        let rest = tokio::time::timeout(Duration::from_secs(10), read_all(&mut client))
            .await
            .expect("the idle connection was closed by the stop");
        assert_eq!(rest, "");
        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("the server returned without waiting for the shutdown timeout")
            .unwrap()
            .unwrap();
    }

    /// Streams a body whose sender it hands to the test.
    struct Streaming(std::sync::Mutex<Option<mpsc::Sender<Chunk>>>);

    impl Service for Streaming {
        type Future = Ready<Box<http::Response<Body>>>;
        fn call(&self, _req: http::Request<RequestBody>, _conn: ConnInfo) -> Self::Future {
            let (tx, rx) = mpsc::channel(4);
            *self.0.lock().unwrap() = Some(tx);
            std::future::ready(Box::new(http::Response::new(Body::channel(rx))))
        }
    }

    /// A handler that never answers; `called` says when it was.
    struct Stuck {
        called: Arc<tokio::sync::Notify>,
    }

    impl Service for Stuck {
        type Future = std::future::Pending<Box<http::Response<Body>>>;
        fn call(&self, _req: http::Request<RequestBody>, _conn: ConnInfo) -> Self::Future {
            self.called.notify_one();
            std::future::pending()
        }
    }

    #[tokio::test]
    async fn a_client_leaving_drops_a_streamed_body_that_waits_for_its_next_chunk() {
        // Streamed responses rely on this to learn that their client left
        // while the producer is idle: hyper keeps reading the connection
        // while the body waits, sees EOF and drops the body's receiver.
        let service = Arc::new(Streaming(std::sync::Mutex::new(None)));
        let listener = bind("127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let config = ServerConfig::default();
        let server = tokio::spawn(serve(listener, service.clone(), config, async move {
            let _ = stop_rx.await;
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let tx = loop {
            if let Some(tx) = service.0.lock().unwrap().take() {
                break tx;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        tx.send(Ok(bytes::Bytes::from("first"))).await.unwrap();
        let mut head = [0u8; 512];
        let n = client.read(&mut head).await.unwrap();
        assert!(String::from_utf8_lossy(&head[..n]).contains("200 OK"));
        drop(client);
        tokio::time::timeout(Duration::from_secs(10), tx.closed())
            .await
            .expect("the body was dropped when the client left");
        stop_tx.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn connections_still_busy_after_the_shutdown_timeout_are_closed() {
        let config = ServerConfig {
            shutdown_timeout: Duration::from_millis(50),
            ..ServerConfig::default()
        };
        let listener = bind("127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let called = Arc::new(tokio::sync::Notify::new());
        let service = Arc::new(Stuck {
            called: called.clone(),
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, service, config, async move {
            let _ = stopped.await;
        }));
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /stuck HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        called.notified().await;
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        // The runtime lives on (as the event loop's does): the connection
        // must be closed by the server, not by the runtime going away.
        let rest = tokio::time::timeout(Duration::from_secs(10), read_all(&mut client))
            .await
            .expect("the busy connection was closed once the server stopped waiting");
        assert_eq!(rest, "");
    }

    #[tokio::test]
    async fn max_requests_per_connection_closes_the_connection() {
        let config = ServerConfig {
            max_requests_per_connection: Some(2),
            ..ServerConfig::default()
        };
        let (addr, stop, server) = start(config).await;
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\nGET /3 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let reply = read_all(&mut client).await;
        assert!(reply.contains("GET /2"), "{reply}");
        assert!(!reply.contains("GET /3"), "{reply}");
        assert!(reply.contains("connection: close"), "{reply}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn excess_connections_wait_for_a_slot() {
        let config = ServerConfig {
            max_connections: 1,
            ..ServerConfig::default()
        };
        let (addr, stop, server) = start(config).await;
        let mut first = tokio::net::TcpStream::connect(addr).await.unwrap();
        first
            .write_all(b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let n = first.read(&mut buf).await.unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).contains("GET /1"));
        // The second connection is accepted by the kernel but not served yet.
        let mut second = tokio::net::TcpStream::connect(addr).await.unwrap();
        second
            .write_all(b"GET /2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let waited = tokio::time::timeout(Duration::from_millis(200), second.read(&mut buf)).await;
        assert!(
            waited.is_err(),
            "second connection was served while the first held the only slot"
        );
        drop(first);
        assert!(read_all(&mut second).await.contains("GET /2"));
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
