//! HTTP/1.1's upgrade to cleartext HTTP/2 (`Upgrade: h2c`, RFC 7540 §3.2).
//!
//! The request that asks for the upgrade is answered with a 101, and its
//! response then goes out on HTTP/2 stream 1. hyper's HTTP/2 server only
//! answers streams it reads, so the request is replayed to it as what a
//! prior-knowledge client would have sent: the client's own preface and
//! SETTINGS, then a HEADERS frame for stream 1 made here from the HTTP/1.1
//! head, then the rest of what the client sends.
//!
//! RFC 9113 deprecates this upgrade, but clients still offer it (`curl
//! --http2` on an `http://` URL). A request with a body, or one whose head
//! does not fit one frame, keeps HTTP/1.1: a server may ignore `Upgrade`.

use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, HOST, TE, TRANSFER_ENCODING, UPGRADE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode, Version};

/// What a 101 to h2c carries to the connection: the upgrade request as
/// stream 1's HEADERS frame.
#[derive(Clone)]
pub(crate) struct Stream1(pub(crate) Bytes);

const HTTP2_SETTINGS: HeaderName = HeaderName::from_static("http2-settings");

use crate::server::transport::FRAME_HEADER_LEN;

/// HTTP/2 frame types and flags used here (RFC 9113 §6).
const HEADERS: u8 = 0x1;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;

/// The 101 for a request that asks for h2c and can have it, with the frame
/// that replays the request as stream 1; `None` keeps HTTP/1.1.
/// `max_frame_size` is the server's own SETTINGS_MAX_FRAME_SIZE.
pub(crate) fn accept<B>(req: &Request<B>, max_frame_size: u32) -> Option<Response<()>> {
    if req.version() != Version::HTTP_11 || !asks_for_h2c(req.headers()) || has_body(req) {
        return None;
    }
    let block = header_block(req)?;
    if block.len() > max_frame_size as usize {
        return None;
    }
    let mut frame = BytesMut::with_capacity(FRAME_HEADER_LEN + block.len());
    put_frame_header(
        &mut frame,
        block.len(),
        HEADERS,
        END_STREAM | END_HEADERS,
        1,
    );
    frame.extend_from_slice(&block);
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("h2c"));
    response.extensions_mut().insert(Stream1(frame.freeze()));
    Some(response)
}

/// `Upgrade` names h2c, `Connection` names both `Upgrade` and
/// `HTTP2-Settings`, and there is exactly one well-formed `HTTP2-Settings`.
fn asks_for_h2c(headers: &HeaderMap) -> bool {
    let has_token = |name: HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(UPGRADE, "h2c")
        || !has_token(CONNECTION, "upgrade")
        || !has_token(CONNECTION, "http2-settings")
    {
        return false;
    }
    let mut settings = headers.get_all(HTTP2_SETTINGS).iter();
    let (Some(value), None) = (settings.next(), settings.next()) else {
        return false;
    };
    // A SETTINGS payload, base64url without padding: six bytes per setting.
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.as_bytes())
        .is_ok_and(|payload| payload.len() % 6 == 0)
}

fn has_body<B>(req: &Request<B>) -> bool {
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// The request head as an HPACK block: literals that never touch the
/// dynamic table, so the decoder's state stays the one the client's encoder
/// expects for its own streams.
fn header_block<B>(req: &Request<B>) -> Option<BytesMut> {
    let headers = req.headers();
    let authority = req
        .uri()
        .authority()
        .map(|a| a.as_str().as_bytes())
        .or_else(|| headers.get(HOST).map(HeaderValue::as_bytes));
    let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
    if req.method() == Method::CONNECT || path.is_empty() {
        return None;
    }
    let mut block = BytesMut::with_capacity(256);
    put_literal(&mut block, b":method", req.method().as_str().as_bytes());
    put_literal(&mut block, b":scheme", b"http");
    if let Some(authority) = authority {
        put_literal(&mut block, b":authority", authority);
    }
    put_literal(&mut block, b":path", path.as_bytes());
    for (name, value) in headers {
        if is_connection_specific(name, value) {
            continue;
        }
        put_literal(&mut block, name.as_str().as_bytes(), value.as_bytes());
    }
    Some(block)
}

/// Fields HTTP/2 forbids (RFC 9113 §8.2.2), and `Host`, which `:authority` carries.
fn is_connection_specific(name: &HeaderName, value: &HeaderValue) -> bool {
    if name == TE {
        return value.as_bytes() != b"trailers";
    }
    name == CONNECTION
        || name == UPGRADE
        || name == HOST
        || name == TRANSFER_ENCODING
        || name == HTTP2_SETTINGS
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// "Literal Header Field without Indexing — New Name" (RFC 7541 §6.2.2),
/// strings without Huffman coding.
fn put_literal(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    out.put_u8(0x00);
    put_string(out, name);
    put_string(out, value);
}

fn put_string(out: &mut BytesMut, s: &[u8]) {
    put_integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// An HPACK integer with an `prefix_bits`-bit prefix (RFC 7541 §5.1).
fn put_integer(out: &mut BytesMut, flags: u8, prefix_bits: u32, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.put_u8(flags | value as u8);
        return;
    }
    out.put_u8(flags | max as u8);
    value -= max;
    while value >= 0x80 {
        out.put_u8((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.put_u8(value as u8);
}

fn put_frame_header(out: &mut BytesMut, length: usize, kind: u8, flags: u8, stream: u32) {
    out.put_uint(length as u64, 3);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream & 0x7fff_ffff);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_request(extra: &[(&str, &str)]) -> Request<()> {
        let mut builder = Request::builder()
            .uri("/search?q=1")
            .header("host", "example.com:8080")
            .header("connection", "Upgrade, HTTP2-Settings")
            .header("upgrade", "h2c")
            .header("http2-settings", "AAMAAABkAAQAoAAAAAIAAAAA")
            .header("user-agent", "probe");
        for (name, value) in extra {
            builder = builder.header(*name, *value);
        }
        builder.body(()).unwrap()
    }

    /// Decodes the literals `put_literal` writes (short strings only).
    fn decode(mut block: &[u8]) -> Vec<(String, String)> {
        let mut fields = Vec::new();
        let string = |block: &mut &[u8]| {
            let len = block[0] as usize;
            assert!(len < 127);
            let s = String::from_utf8(block[1..1 + len].to_vec()).unwrap();
            *block = &block[1 + len..];
            s
        };
        while !block.is_empty() {
            assert_eq!(block[0], 0x00);
            block = &block[1..];
            let name = string(&mut block);
            let value = string(&mut block);
            fields.push((name, value));
        }
        fields
    }

    #[test]
    fn an_upgrade_request_becomes_stream_1_without_its_connection_fields() {
        let response = accept(&upgrade_request(&[("te", "trailers")]), 16_384).unwrap();
        assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
        assert_eq!(response.headers()["upgrade"], "h2c");
        let Stream1(frame) = response.extensions().get::<Stream1>().unwrap().clone();
        let length =
            usize::from(frame[0]) << 16 | usize::from(frame[1]) << 8 | usize::from(frame[2]);
        assert_eq!(length, frame.len() - FRAME_HEADER_LEN);
        assert_eq!(frame[3], HEADERS);
        assert_eq!(frame[4], END_STREAM | END_HEADERS);
        assert_eq!(&frame[5..9], &[0, 0, 0, 1]);
        let fields = decode(&frame[FRAME_HEADER_LEN..]);
        let fields: Vec<(&str, &str)> = fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "example.com:8080"),
                (":path", "/search?q=1"),
                ("user-agent", "probe"),
                ("te", "trailers"),
            ]
        );
    }

    #[test]
    fn requests_that_cannot_upgrade_keep_http_1_1() {
        let without = |name: &str| {
            let mut req = upgrade_request(&[]);
            req.headers_mut().remove(name);
            req
        };
        assert!(accept(&without("http2-settings"), 16_384).is_none());
        assert!(accept(&without("upgrade"), 16_384).is_none());
        assert!(accept(&without("connection"), 16_384).is_none());
        let mut bad_settings = upgrade_request(&[]);
        bad_settings
            .headers_mut()
            .insert(HTTP2_SETTINGS, HeaderValue::from_static("AAMAA"));
        assert!(accept(&bad_settings, 16_384).is_none());
        let twice = upgrade_request(&[("http2-settings", "")]);
        assert!(accept(&twice, 16_384).is_none());
        assert!(accept(&upgrade_request(&[("content-length", "3")]), 16_384).is_none());
        assert!(accept(
            &upgrade_request(&[("transfer-encoding", "chunked")]),
            16_384
        )
        .is_none());
        assert!(accept(&upgrade_request(&[("content-length", "0")]), 16_384).is_some());
        let mut websocket = upgrade_request(&[]);
        websocket
            .headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        assert!(accept(&websocket, 16_384).is_none());
        // A head that does not fit one frame.
        let long = "x".repeat(20_000);
        assert!(accept(&upgrade_request(&[("cookie", &long)]), 16_384).is_none());
    }

    struct Echo;

    impl crate::server::Service for Echo {
        type Future = std::future::Ready<Box<Response<crate::server::Body>>>;
        fn call(
            &self,
            req: Request<crate::server::RequestBody>,
            _conn: crate::server::ConnInfo,
        ) -> Self::Future {
            let text = format!("{} {} {:?}", req.method(), req.uri(), req.version());
            std::future::ready(Box::new(Response::new(crate::server::Body::full(text))))
        }
    }

    /// Reads frames until stream 1 ends; returns its DATA.
    async fn stream1_data(client: &mut tokio::net::TcpStream) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut data = Vec::new();
        loop {
            let mut head = [0u8; FRAME_HEADER_LEN];
            client.read_exact(&mut head).await.unwrap();
            let length =
                usize::from(head[0]) << 16 | usize::from(head[1]) << 8 | usize::from(head[2]);
            let mut payload = vec![0u8; length];
            client.read_exact(&mut payload).await.unwrap();
            let stream = u32::from_be_bytes([head[5], head[6], head[7], head[8]]);
            if stream == 1 && head[3] == 0x0 {
                data.extend_from_slice(&payload);
            }
            if stream == 1 && head[4] & END_STREAM != 0 {
                return data;
            }
        }
    }

    type Stop = tokio::sync::oneshot::Sender<()>;
    type Served = tokio::task::JoinHandle<std::io::Result<()>>;

    /// A server with HTTP/2 on, serving `Echo`.
    fn start(config: crate::server::ServerConfig) -> (std::net::SocketAddr, Stop, Served) {
        let listener = crate::server::bind("127.0.0.1", 0).unwrap();
        let addr = listener.local_addr().unwrap();
        let config = crate::server::ServerConfig {
            http2: Some(crate::server::Http2Settings::default()),
            ..config
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::server::serve(
            listener,
            std::sync::Arc::new(Echo),
            config,
            async move {
                let _ = stopped.await;
            },
        ));
        (addr, stop, server)
    }

    const UPGRADE_GET: &[u8] =
        b"GET /up?x=1 HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n\
        Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n";

    #[tokio::test]
    async fn a_client_that_does_not_start_http2_after_the_101_is_closed() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (addr, stop, server) = start(crate::server::ServerConfig::default());
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(UPGRADE_GET).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let mut reply = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.read_to_string(&mut reply),
        )
        .await
        .expect("the server closed the connection")
        .unwrap();
        // The 101, then nothing: no answer to what is not HTTP/2.
        assert!(reply.starts_with("HTTP/1.1 101 "), "{reply}");
        assert!(reply.ends_with("\r\n\r\n"), "{reply}");
        assert_eq!(reply.matches("HTTP/1.1").count(), 1, "{reply}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_last_allowed_request_is_answered_over_http_1_1() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (addr, stop, server) = start(crate::server::ServerConfig {
            max_requests_per_connection: Some(1),
            ..crate::server::ServerConfig::default()
        });
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(UPGRADE_GET).await.unwrap();
        let mut reply = String::new();
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            client.read_to_string(&mut reply),
        )
        .await
        .expect("the server closed the connection")
        .unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
        assert!(reply.contains("connection: close\r\n"), "{reply}");
        assert!(reply.ends_with("GET /up?x=1 HTTP/1.1"), "{reply}");
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn the_upgrade_request_is_answered_on_stream_1_over_http2() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (addr, stop, server) = start(crate::server::ServerConfig::default());
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client.write_all(UPGRADE_GET).await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            head.push(client.read_u8().await.unwrap());
        }
        let head = String::from_utf8(head).unwrap();
        assert!(
            head.starts_with("HTTP/1.1 101 Switching Protocols\r\n"),
            "{head}"
        );
        assert!(head.contains("upgrade: h2c\r\n"), "{head}");
        // The preface and an empty SETTINGS, as a client sends after the 101.
        let mut hello = crate::server::transport::PREFACE.to_vec();
        hello.extend_from_slice(&[0, 0, 0, crate::server::transport::SETTINGS, 0, 0, 0, 0, 0]);
        client.write_all(&hello).await.unwrap();
        let body = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream1_data(&mut client),
        )
        .await
        .expect("stream 1 answered");
        assert_eq!(body, b"GET http://a/up?x=1 HTTP/2.0");
        stop.send(()).unwrap();
        drop(client);
        server.await.unwrap().unwrap();
    }

    #[test]
    fn hpack_integers_continue_past_their_prefix() {
        let mut out = BytesMut::new();
        put_integer(&mut out, 0, 7, 126);
        put_integer(&mut out, 0, 7, 127);
        put_integer(&mut out, 0, 5, 1337);
        assert_eq!(&out[..], &[126, 127, 0, 31, 154, 10]);
    }
}
