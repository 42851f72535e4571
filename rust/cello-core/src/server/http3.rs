//! HTTP/3: a QUIC endpoint (quinn) on the UDP port of the TCP listener,
//! speaking HTTP/3 (h3) and handing each request to the same [`Service`]
//! as HTTP/1.1, with its body as a [`RequestBody`].
//!
//! A stop sends GOAWAY on every connection (no new requests), lets the
//! requests in flight finish within the shutdown timeout, then closes the
//! endpoint with `H3_NO_ERROR`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes};
use h3::server::RequestStream;
use hyper::body::SizeHint;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use super::body::Body;
use super::request_body::{ReadError, RequestBody};
use super::{ConnInfo, Service};

/// `H3_NO_ERROR` (RFC 9114 §8.1): the code a graceful close carries.
const H3_NO_ERROR: u32 = 0x100;

/// How long closing connections may take to tell their peers, after the
/// shutdown timeout.
const CLOSE_LIMIT: Duration = Duration::from_secs(1);

/// The least time a connection closed by a stop waits for its last
/// responses to be acknowledged.
const LINGER_MIN: Duration = Duration::from_millis(50);

/// The QUIC transport settings of `Http3Config`.
#[derive(Debug, Clone)]
pub struct Http3Settings {
    /// A connection with no traffic for this long is closed.
    pub max_idle_timeout: Duration,
    /// Largest UDP payload received, and the ceiling of path MTU discovery
    /// for what is sent (1200 to 65527).
    pub max_udp_payload_size: u16,
    /// Requests (bidirectional streams) a client may have open at once.
    pub initial_max_streams_bidi: u32,
    /// Accept 0-RTT early data from resuming clients (replayable: see
    /// docs/http3.md).
    pub enable_0rtt: bool,
}

impl Default for Http3Settings {
    fn default() -> Self {
        Http3Settings {
            max_idle_timeout: Duration::from_secs(30),
            max_udp_payload_size: 1350,
            initial_max_streams_bidi: 100,
            enable_0rtt: false,
        }
    }
}

/// Limits shared with the TCP server's `ServerConfig`.
#[derive(Debug, Clone)]
pub struct Http3Limits {
    /// QUIC connections served at once; more are refused.
    pub max_connections: usize,
    /// Largest request header section (QPACK-decoded) accepted.
    pub max_header_size: usize,
    /// How long in-flight requests may take to finish after a stop.
    pub shutdown_timeout: Duration,
}

/// The `Alt-Svc` value TCP responses carry to announce HTTP/3 on `port`.
pub fn alt_svc(port: u16) -> http::HeaderValue {
    http::HeaderValue::from_str(&format!("h3=\":{port}\"; ma=86400"))
        .expect("a port number makes a valid header value")
}

/// Binds the UDP socket HTTP/3 listens on. `reuse_port` lets each worker
/// process bind its own socket on one port; the kernel then keeps a
/// client's datagrams on one socket (it hashes the address pair).
pub fn bind_udp(addr: SocketAddr, reuse_port: bool) -> io::Result<std::net::UdpSocket> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::DGRAM, Some(socket2::Protocol::UDP))?;
    if reuse_port {
        set_reuse_port(&socket)?;
    }
    socket.bind(&addr.into())?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// `SO_REUSEPORT` through libc: socket2 offers it only with its `all`
/// feature, which would rebuild tokio's copy of socket2 too.
#[cfg(unix)]
fn set_reuse_port(socket: &socket2::Socket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket descriptor, and a pointer to a c_int of the
    // length given.
    let done = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_REUSEPORT,
            (&on as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if done == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(unix))]
fn set_reuse_port(_socket: &socket2::Socket) -> io::Result<()> {
    Err(io::Error::other("HTTP/3 with workers needs SO_REUSEPORT"))
}

/// The QUIC endpoint: ALPN `h3`, TLS 1.3, the transport settings.
fn endpoint(
    socket: std::net::UdpSocket,
    mut tls: rustls::ServerConfig,
    settings: &Http3Settings,
) -> io::Result<quinn::Endpoint> {
    let invalid = |e: String| io::Error::new(io::ErrorKind::InvalidInput, e);
    tls.alpn_protocols = vec![b"h3".to_vec()];
    tls.max_early_data_size = if settings.enable_0rtt { u32::MAX } else { 0 };
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
        .map_err(|e| invalid(format!("TLS setup for HTTP/3 failed: {e}")))?;
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    let idle = quinn::IdleTimeout::try_from(settings.max_idle_timeout)
        .map_err(|_| invalid("max_idle_timeout is too long".into()))?;
    transport
        .max_idle_timeout(Some(idle))
        .max_concurrent_bidi_streams(settings.initial_max_streams_bidi.into());
    let payload = settings.max_udp_payload_size;
    let mut mtu = quinn::MtuDiscoveryConfig::default();
    mtu.upper_bound(payload);
    transport
        .initial_mtu(payload.min(1200))
        .mtu_discovery_config(Some(mtu));
    server.transport_config(Arc::new(transport));
    let mut config = quinn::EndpointConfig::default();
    config
        .max_udp_payload_size(payload)
        .map_err(|e| invalid(format!("max_udp_payload_size {payload}: {e}")))?;
    let runtime =
        quinn::default_runtime().ok_or_else(|| io::Error::other("HTTP/3 needs a tokio runtime"))?;
    quinn::Endpoint::new(config, Some(server), socket, runtime)
}

/// Serves HTTP/3 on `socket` until `stop` resolves, then stops as the
/// module documentation says.
pub async fn serve<S, F>(
    socket: std::net::UdpSocket,
    tls: rustls::ServerConfig,
    settings: Http3Settings,
    limits: Http3Limits,
    service: Arc<S>,
    stop: F,
) -> io::Result<()>
where
    S: Service,
    F: Future<Output = ()>,
{
    let endpoint = endpoint(socket, tls, &settings)?;
    let local = endpoint.local_addr()?;
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stopping_tx, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            incoming = endpoint.accept() => {
                let Some(incoming) = incoming else { break };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    incoming.refuse();
                    continue;
                };
                connections.spawn(connection(
                    incoming,
                    service.clone(),
                    local,
                    settings.enable_0rtt,
                    limits.max_header_size as u64,
                    stopping.clone(),
                    permit,
                ));
            }
        }
    }
    // New connections are refused from here on; the open ones get GOAWAY.
    endpoint.set_server_config(None);
    let _ = stopping_tx.send(true);
    let drained = async { while connections.join_next().await.is_some() {} };
    let _ = tokio::time::timeout(limits.shutdown_timeout, drained).await;
    connections.shutdown().await;
    endpoint.close(H3_NO_ERROR.into(), b"server stopped");
    let _ = tokio::time::timeout(CLOSE_LIMIT, endpoint.wait_idle()).await;
    Ok(())
}

async fn handshake(incoming: quinn::Incoming, zero_rtt: bool) -> Option<quinn::Connection> {
    let connecting = incoming.accept().ok()?;
    if zero_rtt {
        // Serve what came in early data without waiting for the handshake.
        return match connecting.into_0rtt() {
            Ok((connection, _)) => Some(connection),
            Err(connecting) => connecting.await.ok(),
        };
    }
    connecting.await.ok()
}

/// One QUIC connection: accepts its requests until the client closes it or
/// a stop sends GOAWAY and its last request finishes.
async fn connection<S: Service>(
    incoming: quinn::Incoming,
    service: Arc<S>,
    local: SocketAddr,
    zero_rtt: bool,
    max_field_section_size: u64,
    mut stopping: watch::Receiver<bool>,
    _permit: tokio::sync::OwnedSemaphorePermit,
) {
    let Some(quic) = handshake(incoming, zero_rtt).await else {
        return;
    };
    let conn = ConnInfo {
        peer: quic.remote_address(),
        local,
    };
    let built = h3::server::builder()
        .max_field_section_size(max_field_section_size)
        .build::<_, Bytes>(h3_quinn::Connection::new(quic.clone()))
        .await;
    let Ok(mut h3) = built else {
        return;
    };
    // Dropped with this task, which aborts requests still running when the
    // shutdown timeout has passed.
    let mut requests = JoinSet::new();
    let mut going_away = false;
    loop {
        // After GOAWAY, h3 waits for the client to close; the server closes
        // as soon as its last request is done.
        if going_away && requests.is_empty() {
            break;
        }
        tokio::select! {
            accepted = h3.accept() => match accepted {
                Ok(Some(resolver)) => {
                    requests.spawn(request(resolver, service.clone(), conn, quic.clone()));
                }
                // Ok(None): the client or a GOAWAY ended the connection.
                Ok(None) | Err(_) => break,
            },
            Some(_) = requests.join_next(), if !requests.is_empty() => {}
            // The one change a stop makes (an error: the server is gone).
            _ = stopping.changed(), if !going_away => {
                going_away = true;
                // GOAWAY: the requests accepted so far are served, no others.
                if h3.shutdown(1).await.is_err() {
                    break;
                }
            }
        }
    }
    while requests.join_next().await.is_some() {}
    if going_away {
        // A close discards stream data not yet acknowledged: give the last
        // responses a few round trips to arrive (or the client time to close).
        let linger = (quic.rtt() * 3).clamp(LINGER_MIN, CLOSE_LIMIT);
        let _ = tokio::time::timeout(linger, quic.closed()).await;
    }
    quic.close(H3_NO_ERROR.into(), b"");
}

type SendHalf = RequestStream<h3_quinn::SendStream<Bytes>, Bytes>;

/// One request: its head read, the service called, its response sent.
async fn request<S: Service>(
    resolver: h3::server::RequestResolver<h3_quinn::Connection, Bytes>,
    service: Arc<S>,
    conn: ConnInfo,
    quic: quinn::Connection,
) {
    let Ok((req, stream)) = resolver.resolve_request().await else {
        return;
    };
    let (send, recv) = stream.split();
    let (mut parts, ()) = req.into_parts();
    let head_only = parts.method == http::Method::HEAD;
    // ASGI apps and handlers find the authority where HTTP/1.1 puts it.
    if !parts.headers.contains_key(http::header::HOST) {
        let authority = parts.uri.authority().map(|a| a.as_str().to_owned());
        if let Some(value) = authority.and_then(|a| http::HeaderValue::from_str(&a).ok()) {
            parts.headers.insert(http::header::HOST, value);
        }
    }
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let body = RequestBody::http3(H3Body {
        recv,
        declared,
        done: false,
    });
    let call = service.call(http::Request::from_parts(parts, body), conn);
    // A client that closes the connection abandons its requests: their
    // futures (and streamed bodies) are dropped, as on a TCP disconnect.
    tokio::select! {
        response = call => respond(send, *response, head_only, &quic).await,
        _ = quic.closed() => {}
    }
}

/// Fields HTTP/3 forbids (RFC 9114 §4.2): they describe a TCP connection.
const CONNECTION_FIELDS: [http::header::HeaderName; 4] = [
    http::header::CONNECTION,
    http::header::TRANSFER_ENCODING,
    http::header::UPGRADE,
    http::header::HeaderName::from_static("keep-alive"),
];

/// The response head HTTP/3 sends for `response`: connection fields
/// removed, `content-length` and `date` added as hyper adds them for TCP.
fn h3_head(response: &mut http::Response<Body>) -> http::Response<()> {
    let mut head = http::Response::new(());
    *head.status_mut() = response.status();
    let mut headers = std::mem::take(response.headers_mut());
    for name in &CONNECTION_FIELDS {
        headers.remove(name);
    }
    let status = response.status();
    let bodyless = status.is_informational()
        || status == http::StatusCode::NO_CONTENT
        || status == http::StatusCode::NOT_MODIFIED;
    if !bodyless && !headers.contains_key(http::header::CONTENT_LENGTH) {
        if let Some(len) = response.body().exact_len() {
            headers.insert(http::header::CONTENT_LENGTH, len.into());
        }
    }
    if !headers.contains_key(http::header::DATE) {
        let now = httpdate::fmt_http_date(std::time::SystemTime::now());
        if let Ok(value) = http::HeaderValue::from_str(&now) {
            headers.insert(http::header::DATE, value);
        }
    }
    *head.headers_mut() = headers;
    head
}

async fn respond(
    mut send: SendHalf,
    mut response: http::Response<Body>,
    head_only: bool,
    quic: &quinn::Connection,
) {
    let head = h3_head(&mut response);
    if send.send_response(head).await.is_err() {
        return;
    }
    let mut body = response.into_body();
    if !head_only {
        loop {
            let frame = std::future::poll_fn(|cx| {
                hyper::body::Body::poll_frame(std::pin::Pin::new(&mut body), cx)
            });
            let frame = tokio::select! {
                frame = frame => frame,
                _ = quic.closed() => return,
            };
            match frame {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        if send.send_data(data).await.is_err() {
                            return;
                        }
                    }
                }
                // The producer failed: a reset, so the client can tell the
                // response is incomplete.
                Some(Err(_)) => {
                    send.stop_stream(h3::error::Code::H3_INTERNAL_ERROR);
                    return;
                }
            }
        }
    }
    drop(body);
    let _ = send.finish().await;
}

/// The request body of an HTTP/3 stream.
pub(crate) struct H3Body {
    recv: RequestStream<h3_quinn::RecvStream, Bytes>,
    /// The `content-length` the request declared.
    declared: Option<u64>,
    done: bool,
}

impl H3Body {
    pub(crate) fn poll_data(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, ReadError>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let polled = std::task::ready!(self.recv.poll_recv_data(cx));
        Poll::Ready(match polled {
            Ok(Some(mut data)) => Some(Ok(data.copy_to_bytes(data.remaining()))),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(Box::new(e)))
            }
        })
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.done || self.declared == Some(0)
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        match self.declared {
            Some(n) => SizeHint::with_exact(n),
            None => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alt_svc_names_the_port_for_a_day() {
        assert_eq!(alt_svc(8443), "h3=\":8443\"; ma=86400");
    }

    #[test]
    fn the_head_drops_connection_fields_and_adds_length_and_date() {
        let mut response = http::Response::new(Body::full("hello"));
        for (name, value) in [
            ("connection", "close"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("x-kept", "yes"),
        ] {
            response.headers_mut().insert(
                http::header::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        let head = h3_head(&mut response);
        let headers = head.headers();
        assert!(headers.get("connection").is_none());
        assert!(headers.get("keep-alive").is_none());
        assert!(headers.get("transfer-encoding").is_none());
        assert_eq!(headers["x-kept"], "yes");
        assert_eq!(headers["content-length"], "5");
        assert!(headers.contains_key("date"));
    }

    #[test]
    fn bodyless_statuses_get_no_length_and_a_given_length_is_kept() {
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::NO_CONTENT;
        assert!(h3_head(&mut response)
            .headers()
            .get("content-length")
            .is_none());
        let mut response = http::Response::new(Body::empty());
        response
            .headers_mut()
            .insert(http::header::CONTENT_LENGTH, 42.into());
        assert_eq!(h3_head(&mut response).headers()["content-length"], "42");
    }

    #[tokio::test]
    async fn a_bad_payload_size_is_refused_when_the_endpoint_is_made() {
        // A resolver without certificates: the transport checks fail first.
        let socket = bind_udp("127.0.0.1:0".parse().unwrap(), false).unwrap();
        #[allow(deprecated)] // ring, as the server's TLS uses (server/tls.rs)
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .unwrap()
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(NoCert));
        let settings = Http3Settings {
            max_udp_payload_size: 1000,
            ..Http3Settings::default()
        };
        let err = endpoint(socket, tls, &settings).unwrap_err();
        assert!(
            err.to_string().contains("max_udp_payload_size 1000"),
            "{err}"
        );
    }

    #[derive(Debug)]
    struct NoCert;

    impl rustls::server::ResolvesServerCert for NoCert {
        fn resolve(
            &self,
            _hello: rustls::server::ClientHello<'_>,
        ) -> Option<Arc<rustls::sign::CertifiedKey>> {
            None
        }
    }
}
