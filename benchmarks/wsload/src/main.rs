//! wsload: WebSocket load for the benchmark's WebSocket tables.
//!
//! ```text
//! wsload check --url ws://127.0.0.1:PORT/echo
//! wsload echo  --url URL [--connections 64] [--duration 3] [--warmup 1] [--size 32] [--threads 2]
//! wsload idle  --url URL [--connections 10000] [--concurrency 128] [--max-hold 60] [--threads 2]
//! ```
//!
//! `check` sends one text and one binary message on one connection and
//! wants each echoed back unchanged.
//!
//! `echo` opens the connections, warms up, prints `START` when the timed
//! window begins and `STOP` when it ends (the runner samples the server's
//! CPU time at those lines), then closes everything. Each connection sends
//! a text message of `size` bytes, waits for its echo, checks it and sends
//! the next: the round trip of every echo completed inside the window is
//! recorded.
//!
//! `idle` opens `connections` WebSocket connections (at most `concurrency`
//! handshakes at a time), prints `OPEN <n>` once all have been tried, and
//! holds them until stdin reaches end of file or a line arrives (the
//! runner measures the server's memory meanwhile), or `max-hold` seconds
//! pass; then it closes them.
//!
//! Each mode ends with one line `WSLOAD_JSON {...}` with its figures and
//! exits 0, or prints `WSLOAD_ERROR <why>` to stderr and exits 1. Every
//! mode stops by itself: connect and close steps have timeouts and the
//! hold is bounded.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncBufReadExt;
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};
use tokio_tungstenite::tungstenite::protocol::Message;
use tokio_tungstenite::{client_async, WebSocketStream};

type Ws = WebSocketStream<TcpStream>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

struct Options {
    mode: String,
    url: String,
    connections: usize,
    duration: f64,
    warmup: f64,
    size: usize,
    threads: usize,
    concurrency: usize,
    max_hold: f64,
}

fn parse_args() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mode = args
        .next()
        .ok_or("usage: wsload check|echo|idle --url URL [options]")?;
    let mut flags: HashMap<String, String> = HashMap::new();
    while let Some(flag) = args.next() {
        let name = flag
            .strip_prefix("--")
            .ok_or_else(|| format!("unexpected argument {flag:?}"))?;
        let value = args
            .next()
            .ok_or_else(|| format!("--{name} needs a value"))?;
        flags.insert(name.to_string(), value);
    }
    fn take<T: std::str::FromStr>(
        flags: &mut HashMap<String, String>,
        name: &str,
        default: T,
    ) -> Result<T, String> {
        match flags.remove(name) {
            None => Ok(default),
            Some(raw) => raw
                .parse()
                .map_err(|_| format!("--{name}: cannot read {raw:?}")),
        }
    }
    let idle = mode == "idle";
    let options = Options {
        url: flags.remove("url").ok_or("--url is required")?,
        connections: take(&mut flags, "connections", if idle { 10_000 } else { 64 })?,
        duration: take(&mut flags, "duration", 3.0)?,
        warmup: take(&mut flags, "warmup", 1.0)?,
        size: take(&mut flags, "size", 32)?,
        threads: take(&mut flags, "threads", 2)?,
        concurrency: take(&mut flags, "concurrency", 128)?,
        max_hold: take(&mut flags, "max-hold", 60.0)?,
        mode,
    };
    if let Some(name) = flags.keys().next() {
        return Err(format!("unknown option --{name}"));
    }
    if !matches!(options.mode.as_str(), "check" | "echo" | "idle") {
        return Err(format!("unknown mode {:?}", options.mode));
    }
    if options.connections == 0 || options.threads == 0 || options.concurrency == 0 {
        return Err("--connections, --threads and --concurrency must be at least 1".into());
    }
    let duration_ok = options.duration > 0.0 && options.duration <= 600.0;
    if !duration_ok || !(0.0..=600.0).contains(&options.warmup) {
        return Err("--duration must be in (0, 600] and --warmup in [0, 600] seconds".into());
    }
    if !(options.max_hold > 0.0 && options.max_hold <= 3600.0) {
        return Err("--max-hold must be in (0, 3600] seconds".into());
    }
    Ok(options)
}

/// `ws://host:port/path` → the `host:port` to dial. Only plain ws://.
fn authority(url: &str) -> Result<String, String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("only ws:// URLs are supported, not {url:?}"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(format!("no host in {url:?}"));
    }
    Ok(if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    })
}

async fn connect(url: &str, address: &str) -> Result<Ws, String> {
    let attempt = async {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        tcp.set_nodelay(true).map_err(|e| format!("nodelay: {e}"))?;
        let (ws, _response) = client_async(url, tcp)
            .await
            .map_err(|e| format!("handshake: {e}"))?;
        Ok(ws)
    };
    tokio::time::timeout(CONNECT_TIMEOUT, attempt)
        .await
        .unwrap_or_else(|_| Err(format!("no handshake within {CONNECT_TIMEOUT:?}")))
}

/// The next data message (text or binary), answering nothing else: pings
/// are answered by tungstenite itself on the next read or write.
async fn next_data(ws: &mut Ws) -> Result<Message, String> {
    loop {
        let next = tokio::time::timeout(REPLY_TIMEOUT, ws.next())
            .await
            .map_err(|_| format!("no echo within {REPLY_TIMEOUT:?}"))?;
        match next {
            None => return Err("the server closed the connection".into()),
            Some(Err(e)) => return Err(format!("read: {e}")),
            Some(Ok(message @ (Message::Text(_) | Message::Binary(_)))) => return Ok(message),
            Some(Ok(Message::Close(frame))) => return Err(format!("the server closed: {frame:?}")),
            Some(Ok(_)) => continue,
        }
    }
}

async fn close(mut ws: Ws) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        if ws.close(None).await.is_ok() {
            // Read until the server's close frame (or the end).
            while let Some(Ok(_)) = ws.next().await {}
        }
    })
    .await;
}

async fn check(options: &Options, address: &str) -> Result<String, String> {
    let mut ws = connect(&options.url, address).await?;
    let text = "hello, echo ✓";
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("send: {e}"))?;
    match next_data(&mut ws).await? {
        Message::Text(got) if got.as_str() == text => {}
        other => return Err(format!("sent text {text:?}, got back {other:?}")),
    }
    let bytes: Vec<u8> = vec![0, 1, 2, 0xfe, 0xff];
    ws.send(Message::binary(bytes.clone()))
        .await
        .map_err(|e| format!("send: {e}"))?;
    match next_data(&mut ws).await? {
        Message::Binary(got) if got.as_ref() == bytes.as_slice() => {}
        other => return Err(format!("sent binary {bytes:?}, got back {other:?}")),
    }
    close(ws).await;
    Ok(r#"{"mode": "check", "ok": true}"#.to_string())
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const DONE: u8 = 2;

async fn echo_connection(
    mut ws: Ws,
    size: usize,
    phase: Arc<AtomicU8>,
) -> Result<Vec<u32>, String> {
    let payload: String = (0..size).map(|i| (b'a' + (i % 26) as u8) as char).collect();
    let mut latencies_us = Vec::new();
    loop {
        let current = phase.load(Ordering::Relaxed);
        if current == DONE {
            break;
        }
        let sent_at = Instant::now();
        ws.send(Message::text(payload.as_str()))
            .await
            .map_err(|e| format!("send: {e}"))?;
        match next_data(&mut ws).await? {
            Message::Text(got) if got.as_str() == payload => {}
            other => return Err(format!("the echo differs from the message: {other:?}")),
        }
        // Counted only if the whole round trip lies in the timed window.
        if current == MEASURE && phase.load(Ordering::Relaxed) == MEASURE {
            latencies_us.push(sent_at.elapsed().as_micros().min(u32::MAX as u128) as u32);
        }
    }
    close(ws).await;
    Ok(latencies_us)
}

fn percentile(sorted: &[u32], fraction: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() as f64) * fraction).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

async fn echo(options: &Options, address: &str) -> Result<String, String> {
    let mut sockets = Vec::with_capacity(options.connections);
    for _ in 0..options.connections {
        sockets.push(connect(&options.url, address).await?);
    }
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(echo_connection(ws, options.size, phase.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs_f64(options.warmup)).await;
    phase.store(MEASURE, Ordering::Relaxed);
    let started = Instant::now();
    println!("START");
    tokio::time::sleep(Duration::from_secs_f64(options.duration)).await;
    phase.store(DONE, Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    println!("STOP");
    let mut latencies = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(mut connection)) => latencies.append(&mut connection),
            Ok(Err(e)) => errors.push(e),
            Err(e) => errors.push(format!("task: {e}")),
        }
    }
    if let Some(first) = errors.first() {
        return Err(format!(
            "{} of {} connections failed, first: {first}",
            errors.len(),
            options.connections
        ));
    }
    latencies.sort_unstable();
    let messages = latencies.len();
    Ok(format!(
        concat!(
            r#"{{"mode": "echo", "connections": {}, "size": {}, "messages": {}, "duration_s": {:.6}, "#,
            r#""msg_per_s": {:.1}, "latency_us": {{"p50": {}, "p90": {}, "p99": {}, "max": {}}}}}"#
        ),
        options.connections,
        options.size,
        messages,
        elapsed,
        messages as f64 / elapsed,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.90),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(0),
    ))
}

async fn idle(options: &Options, address: &str) -> Result<String, String> {
    let gate = Arc::new(Semaphore::new(options.concurrency));
    let opened = Arc::new(AtomicU64::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    let holding = Arc::new(AtomicBool::new(true));
    let (release_tx, release_rx) = watch::channel(false);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(options.connections);
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Result<(), String>>();
    for _ in 0..options.connections {
        let (url, address) = (options.url.clone(), address.to_string());
        let (gate, opened, dropped, holding) = (
            gate.clone(),
            opened.clone(),
            dropped.clone(),
            holding.clone(),
        );
        let (mut release, done) = (release_rx.clone(), done_tx.clone());
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await.expect("semaphore closed");
            let result = connect(&url, &address).await;
            drop(permit);
            let mut ws = match result {
                Ok(ws) => ws,
                Err(e) => {
                    let _ = done.send(Err(e));
                    return;
                }
            };
            opened.fetch_add(1, Ordering::Relaxed);
            let _ = done.send(Ok(()));
            // Hold: read (so pings get answered) until released.
            loop {
                tokio::select! {
                    _ = release.changed() => break,
                    message = ws.next() => match message {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                            if holding.load(Ordering::Relaxed) {
                                dropped.fetch_add(1, Ordering::Relaxed);
                            }
                            return;
                        }
                        Some(Ok(_)) => {}
                    },
                }
            }
            close(ws).await;
        }));
    }
    drop(done_tx);
    let mut failures: Vec<String> = Vec::new();
    let mut tried = 0;
    while tried < options.connections {
        match done_rx.recv().await {
            Some(Ok(())) => {}
            Some(Err(e)) => failures.push(e),
            None => break,
        }
        tried += 1;
    }
    let connect_s = started.elapsed().as_secs_f64();
    let open = opened.load(Ordering::Relaxed);
    println!("OPEN {open}");
    // Hold until the runner says so (a line or EOF on stdin) or max-hold.
    let mut stdin = tokio::io::BufReader::new(tokio::io::stdin());
    let mut line = String::new();
    let _ = tokio::time::timeout(
        Duration::from_secs_f64(options.max_hold),
        stdin.read_line(&mut line),
    )
    .await;
    holding.store(false, Ordering::Relaxed);
    let dropped_during_hold = dropped.load(Ordering::Relaxed);
    let _ = release_tx.send(true);
    let closing = async {
        for task in tasks {
            let _ = task.await;
        }
    };
    let _ = tokio::time::timeout(CLOSE_TIMEOUT * 2, closing).await;
    let first_failure = failures
        .first()
        .map(|e| format!("\"{}\"", e.replace('\\', "\\\\").replace('"', "'")))
        .unwrap_or_else(|| "null".into());
    Ok(format!(
        concat!(
            r#"{{"mode": "idle", "connections": {}, "opened": {}, "failed": {}, "#,
            r#""dropped_during_hold": {}, "connect_s": {:.3}, "first_failure": {}}}"#
        ),
        options.connections,
        open,
        failures.len(),
        dropped_during_hold,
        connect_s,
        first_failure,
    ))
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("WSLOAD_ERROR {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let outcome = runtime.block_on(async {
        let address = authority(&options.url)?;
        match options.mode.as_str() {
            "check" => check(&options, &address).await,
            "echo" => echo(&options, &address).await,
            _ => idle(&options, &address).await,
        }
    });
    // Don't wait on stdin readers or stuck sockets at exit.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(json) => {
            println!("WSLOAD_JSON {json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("WSLOAD_ERROR {e}");
            ExitCode::FAILURE
        }
    }
}
