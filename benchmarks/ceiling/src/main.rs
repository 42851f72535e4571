//! Raw hyper HTTP/1.1 server with no Python: the ceiling row of the benchmark.
//!
//! Serves the same two endpoints as every peer app:
//!   GET /           -> {"message":"Hello, World!"}
//!   GET /users/{id} -> {"id":"<id>"}
//!
//! Usage: ceiling [--host H] [--port N] [--threads T]
//!
//! It does the minimum a real framework must also do (route on method and
//! path, build a JSON body, set content-type) so the gap to Cello measures
//! Cello's own overhead rather than skipped work.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const INDEX_BODY: &[u8] = br#"{"message":"Hello, World!"}"#;
const NOT_FOUND_BODY: &[u8] = br#"{"detail":"Not Found"}"#;

struct Options {
    host: String,
    port: u16,
    threads: usize,
}

fn parse_args() -> Result<Options, String> {
    let mut options = Options {
        host: "127.0.0.1".to_owned(),
        port: 8000,
        threads: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--host" => options.host = value()?,
            "--port" => options.port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--threads" => {
                options.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?;
                if options.threads == 0 {
                    return Err("--threads must be at least 1".to_owned());
                }
            }
            "-h" | "--help" => {
                return Err("usage: ceiling [--host H] [--port N] [--threads T]".to_owned())
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(options)
}

fn json_response(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Builds `{"id":"<id>"}`. Only characters that would break the JSON string
/// are escaped; the benchmark sends plain ids, but a ceiling that emitted
/// invalid JSON for odd input would not be an honest ceiling.
fn user_body(id: &str) -> Bytes {
    let mut body = Vec::with_capacity(id.len() + 10);
    body.extend_from_slice(br#"{"id":""#);
    for byte in id.bytes() {
        match byte {
            b'"' => body.extend_from_slice(br#"\""#),
            b'\\' => body.extend_from_slice(br"\\"),
            0x00..=0x1f => body.extend_from_slice(format!("\\u{byte:04x}").as_bytes()),
            _ => body.push(byte),
        }
    }
    body.extend_from_slice(br#""}"#);
    Bytes::from(body)
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if request.method() != Method::GET {
        return Ok(json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            Bytes::from_static(br#"{"detail":"Method Not Allowed"}"#),
        ));
    }
    let path = request.uri().path();
    let response = if path == "/" {
        json_response(StatusCode::OK, Bytes::from_static(INDEX_BODY))
    } else if let Some(id) = path
        .strip_prefix("/users/")
        .filter(|id| !id.is_empty() && !id.contains('/'))
    {
        json_response(StatusCode::OK, user_body(id))
    } else {
        json_response(StatusCode::NOT_FOUND, Bytes::from_static(NOT_FOUND_BODY))
    };
    Ok(response)
}

async fn serve(listener: TcpListener) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Transient accept errors (e.g. EMFILE under load) must not stop
            // the server mid-benchmark.
            Err(_) => continue,
        };
        // Small responses would otherwise wait on Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    // A multi-thread runtime even for one worker, so `--threads` changes only
    // the worker count and not the scheduler kind between rows.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
        .expect("failed to build the tokio runtime");
    runtime.block_on(async move {
        let address: SocketAddr = match format!("{}:{}", options.host, options.port).parse() {
            Ok(address) => address,
            Err(error) => {
                eprintln!("bad address: {error}");
                return ExitCode::from(2);
            }
        };
        let listener = match TcpListener::bind(address).await {
            Ok(listener) => listener,
            Err(error) => {
                eprintln!("cannot bind {address}: {error}");
                return ExitCode::FAILURE;
            }
        };
        println!(
            "ceiling listening on http://{address} ({} worker thread(s))",
            options.threads
        );
        tokio::select! {
            _ = serve(listener) => {}
            // SIGINT is how the benchmark runner stops every server.
            _ = tokio::signal::ctrl_c() => {}
        }
        ExitCode::SUCCESS
    })
}
