use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::{connector, exchange, parse_url, Engine, Failure};

#[test]
fn urls_must_be_absolute_http_or_https() {
    assert!(parse_url("http://127.0.0.1:8000/x?y=1").is_ok());
    assert!(parse_url("https://example.com").is_ok());
    for (url, why) in [
        ("ftp://example.com/", "the scheme must be http or https"),
        ("/relative", "it must start with http:// or https://"),
        ("example.com", "it must start with http:// or https://"),
        ("http://", "invalid URL"),
        ("http://exa mple.com/", "invalid URL"),
    ] {
        let err = parse_url(url).unwrap_err();
        assert!(err.contains(why), "{url}: {err}");
    }
}

fn engine(max_response_size: usize) -> Arc<Engine> {
    let client = Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .build(connector(None, Duration::from_secs(5)).unwrap());
    Arc::new(Engine {
        client,
        max_response_size,
    })
}

/// A server that answers every connection with `response` once it has read
/// the request head.
async fn serve(response: &'static [u8]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buffer = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buffer[..n]),
                    }
                }
                let _ = socket.write_all(response).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{address}/")
}

fn get(url: &str) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::new(Bytes::new())).unwrap()
}

#[tokio::test]
async fn reads_status_headers_and_body() {
    let url = serve(b"HTTP/1.1 201 Created\r\nX-One: 1\r\nContent-Length: 2\r\n\r\nok").await;
    let answer = exchange(engine(1024), get(&url)).await.ok().unwrap();
    assert_eq!(answer.status, 201);
    assert_eq!(answer.reason, "Created");
    assert!(answer
        .headers
        .contains(&("x-one".to_owned(), "1".to_owned())));
    assert_eq!(&answer.body[..], b"ok");
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_before_reading() {
    let url = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n").await;
    let (failure, message) = exchange(engine(10), get(&url)).await.err().unwrap();
    assert_eq!(failure, Failure::TooLarge);
    assert!(
        message.contains("max_response_size (10 bytes)"),
        "{message}"
    );
}

#[tokio::test]
async fn an_undeclared_body_over_the_cap_is_refused_while_reading() {
    let url = serve(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n0123456789abcdef").await;
    let (failure, _) = exchange(engine(10), get(&url)).await.err().unwrap();
    assert_eq!(failure, Failure::TooLarge);
}

#[tokio::test]
async fn garbage_is_a_protocol_error() {
    let url = serve(b"NOT HTTP AT ALL\r\n\r\n").await;
    let (failure, message) = exchange(engine(10), get(&url)).await.err().unwrap();
    assert_eq!(failure, Failure::Protocol, "{message}");
}

#[tokio::test]
async fn a_refused_connection_is_a_connection_error() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let (failure, message) = exchange(engine(10), get(&format!("http://{address}/")))
        .await
        .err()
        .unwrap();
    assert_eq!(failure, Failure::Connection);
    assert!(message.contains(&address.to_string()), "{message}");
}

#[tokio::test]
async fn a_head_answer_s_length_is_not_a_body() {
    let url = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\n").await;
    let head = Request::head(&url).body(Full::new(Bytes::new())).unwrap();
    let answer = exchange(engine(10), head).await.ok().unwrap();
    assert_eq!(answer.status, 200);
    assert!(answer.body.is_empty());
}
