//! Door 1's entry points: binding the listener, starting the server on its
//! runtime, and the handle the event loop drives it through.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use std::io::Read;
use std::net::ToSocketAddrs;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::thread::JoinHandle;
use std::time::Duration;

use cello_core::server::{self, ServerConfig, Timeouts};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use tokio::sync::{oneshot, watch};

use super::service::NativeService;
use crate::bridge::driver::{LoopDriver, RunQueued};
use crate::bridge::eager::TaskStarter;
use crate::doors::websocket::{WsDoor, WsSettings};
use crate::ffi::support;
use crate::pipeline::app::Cello;
use crate::pipeline::queue::{Dispatcher, Queue, Wake, Work};
use crate::pipeline::{NativeIo, Runner};

fn seconds(name: &str, value: Option<f64>) -> PyResult<Option<Duration>> {
    match value {
        None => Ok(None),
        Some(v) if v.is_finite() && v > 0.0 => Ok(Some(Duration::from_secs_f64(v))),
        Some(v) => Err(PyValueError::new_err(format!(
            "{name} must be a positive number of seconds, not {v}"
        ))),
    }
}

/// Binds a listening socket and returns `(fd, host, port)`; the caller owns
/// the descriptor (worker processes inherit it across `fork`).
#[pyfunction]
pub fn bind_listener(host: &str, port: u16) -> PyResult<(i32, String, u16)> {
    let listener = server::bind(host, port)
        .map_err(|e| PyOSError::new_err(format!("cannot listen on {host}:{port}: {e}")))?;
    let local = listener.local_addr()?;
    Ok((listener.into_raw_fd(), local.ip().to_string(), local.port()))
}

/// Binds one of the HTTP/3 UDP sockets of a multi-worker server (each
/// worker gets its own, all bound with SO_REUSEPORT on `host:port`) and
/// returns its fd. The master binds them all before the first fork, so the
/// kernel's spread of clients over the sockets never changes while the
/// server runs: a QUIC connection stays with the worker that has its state.
#[pyfunction]
pub fn bind_udp_listener(host: &str, port: u16) -> PyResult<i32> {
    let addr = (host, port)
        .to_socket_addrs()
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| PyOSError::new_err(format!("cannot resolve {host}:{port}")))?;
    let socket = server::http3::bind_udp(addr, true)
        .map_err(|e| PyOSError::new_err(format!("cannot listen on UDP {addr} for HTTP/3: {e}")))?;
    Ok(socket.into_raw_fd())
}

/// Starts serving `app` on a new socket bound to `host:port`, or on the
/// listening socket `fd` (whose ownership passes here).
///
/// `event_loop` is the loop the caller runs on this thread. With `driver`
/// (that loop's `LoopDriver`, `threads` 0), connections run inside the
/// loop's waits; without, on `threads` I/O threads of their own, and the
/// loop must watch `handle.fileno()` and call `handle.drain()`. `closed` (a
/// future of that loop) resolves once the server has stopped and drained its
/// connections. Timeouts are in seconds; `None` disables one.
#[pyfunction]
#[pyo3(signature = (
    app, event_loop, start_task, closed, *, driver = None, host = "127.0.0.1", port = 0, fd = None,
    threads = 1, shutdown_timeout = 30.0, header_read_timeout = None, body_read_timeout = None,
    idle_timeout = None, write_timeout = None, handler_timeout = None, max_connections = 10000,
    max_requests_per_connection = None, max_headers = 100, max_header_size = 8192,
    websocket_app = None, ws_ping_interval = Some(20.0), ws_ping_timeout = Some(20.0),
    ws_max_message_size = 16777216, ws_max_frame_size = 16777216, ws_per_message_deflate = true,
    tls = None, http2 = None, http3 = None, udp_fd = None
))]
#[allow(clippy::too_many_arguments)]
pub fn start_server(
    app: &Cello,
    event_loop: Py<PyAny>,
    start_task: Bound<'_, PyAny>,
    closed: Py<PyAny>,
    driver: Option<&LoopDriver>,
    host: &str,
    port: u16,
    fd: Option<i32>,
    threads: usize,
    shutdown_timeout: f64,
    header_read_timeout: Option<f64>,
    body_read_timeout: Option<f64>,
    idle_timeout: Option<f64>,
    write_timeout: Option<f64>,
    handler_timeout: Option<f64>,
    max_connections: usize,
    max_requests_per_connection: Option<usize>,
    max_headers: usize,
    max_header_size: usize,
    websocket_app: Option<Py<PyAny>>,
    ws_ping_interval: Option<f64>,
    ws_ping_timeout: Option<f64>,
    ws_max_message_size: usize,
    ws_max_frame_size: usize,
    ws_per_message_deflate: bool,
    tls: Option<TlsArgs>,
    http2: Option<Http2Args>,
    http3: Option<(f64, u16, u32, bool)>,
    udp_fd: Option<i32>,
) -> PyResult<ServerHandle> {
    if driver.is_some() != (threads == 0) {
        return Err(PyValueError::new_err(
            "threads must be 0 with a driver (the server runs inside the event loop's \
             waits) and at least 1 without",
        ));
    }
    if !(shutdown_timeout.is_finite() && shutdown_timeout >= 0.0) {
        return Err(PyValueError::new_err(
            "shutdown_timeout must be a non-negative number",
        ));
    }
    if max_connections == 0 || max_headers == 0 || max_requests_per_connection == Some(0) {
        return Err(PyValueError::new_err(
            "connection and header limits must be at least 1",
        ));
    }
    let listener = match fd {
        // SAFETY: the caller hands over a listening socket it owns (documented above).
        Some(fd) => unsafe { std::net::TcpListener::from_raw_fd(fd) },
        None => server::bind(host, port)
            .map_err(|e| PyOSError::new_err(format!("cannot listen on {host}:{port}: {e}")))?,
    };
    let local = listener.local_addr()?;
    let body_timeout = seconds("body_read_timeout", body_read_timeout)?;
    let handler_timeout = seconds("handler_timeout", handler_timeout)?;
    let config = ServerConfig {
        max_headers,
        max_header_size,
        max_connections,
        max_requests_per_connection,
        timeouts: Timeouts {
            header_read: seconds("header_read_timeout", header_read_timeout)?,
            idle: seconds("idle_timeout", idle_timeout)?,
            write: seconds("write_timeout", write_timeout)?,
        },
        shutdown_timeout: Duration::from_secs_f64(shutdown_timeout),
        tls: None,
        http2: http2.map(|h2| h2.settings(max_header_size)),
        alt_svc: None,
    };
    let mut config = config;
    let tls = tls.map(|tls| tls.settings(config.http2.is_some()));
    let certs = match &tls {
        None => None,
        Some(settings) => {
            let certs = server::tls::CertStore::load(settings).map_err(tls_error)?;
            let rustls =
                server::tls::build_server_config(settings, certs.clone()).map_err(tls_error)?;
            config.tls = Some(Arc::new(rustls));
            Some(certs)
        }
    };
    // HTTP/3 shares the TCP server's certificates, so a SIGHUP reload
    // reaches both.
    let http3 = match (http3, &tls, &certs) {
        (None, _, _) => None,
        (Some(settings), Some(tls), Some(certs)) => {
            let rustls = server::tls::build_server_config(tls, certs.clone()).map_err(tls_error)?;
            Some(http3_setup(settings, rustls, local, udp_fd)?)
        }
        (Some(_), _, _) => {
            return Err(PyValueError::new_err(
                "HTTP/3 needs TLS: give tls=(cert, key, ...)",
            ))
        }
    };
    config.alt_svc = http3.as_ref().map(|_| server::http3::alt_svc(local.port()));
    let http3_limits = server::http3::Http3Limits {
        max_connections,
        max_header_size,
        shutdown_timeout: config.shutdown_timeout,
    };
    if ws_max_message_size == 0 || ws_max_frame_size == 0 {
        return Err(PyValueError::new_err(
            "WebSocket message and frame limits must be at least 1",
        ));
    }
    let websocket = Arc::new(WsDoor {
        app: websocket_app,
        settings: Arc::new(WsSettings {
            ping_interval: seconds("ws_ping_interval", ws_ping_interval)?,
            ping_timeout: seconds("ws_ping_timeout", ws_ping_timeout)?,
            max_message_size: ws_max_message_size,
            max_frame_size: ws_max_frame_size,
            per_message_deflate: ws_per_message_deflate,
        }),
    });
    let link = driver.map(|d| d.link.clone());
    let running_loop = Arc::new(support::io_thread_loop(start_task.py(), &event_loop)?);
    let (runtime, wake, wake_reader) = match driver {
        Some(driver) => (
            Runtime::Loop(driver.runtime()?),
            Wake::Loop(driver.link.clone()),
            None,
        ),
        None => {
            let (wake_reader, waker) = UnixStream::pair()?;
            wake_reader.set_nonblocking(true)?;
            waker.set_nonblocking(true)?;
            (
                Runtime::Own(io_runtime(threads, running_loop.clone())?),
                Wake::Socket(waker),
                Some(wake_reader),
            )
        }
    };
    let queue = Arc::new(Queue::new(wake));
    let py = start_task.py();
    let runner = Arc::new(Runner {
        app: app.core.clone(),
        start_task: TaskStarter::new(py, start_task.unbind()),
        event_loop,
        native: Some(NativeIo {
            runtime: runtime.handle().clone(),
            queue: queue.clone(),
            loop_thread: std::thread::current().id(),
            link: link.clone(),
            spare_request: Mutex::new(None),
        }),
        python_middleware: app.core.python_middleware(py),
    });
    let service = Arc::new(NativeService {
        app: app.core.clone(),
        runner: runner.clone(),
        queue: queue.clone(),
        runtime: runtime.handle().clone(),
        link,
        body_timeout,
        handler_timeout,
        chain: app.core.chain(),
        websocket,
    });
    let dispatcher = Arc::new(Dispatcher {
        runner,
        queue: queue.clone(),
        closed,
    });
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let serving = async move {
        // One stop for both servers: TCP and, when on, HTTP/3.
        let (stop_all, stopping) = watch::channel(false);
        tokio::spawn(async move {
            let _ = stop_rx.await;
            let _ = stop_all.send(true);
        });
        let stopped = |mut stopping: watch::Receiver<bool>| async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        let http3 = http3.map(|(socket, tls, settings)| {
            let stop = stopped(stopping.clone());
            let service = service.clone();
            tokio::spawn(server::http3::serve(
                socket,
                tls,
                settings,
                http3_limits,
                service,
                stop,
            ))
        });
        if let Err(e) = server::serve(listener, service, config, stopped(stopping)).await {
            eprintln!("cello: server error: {e}");
        }
        if let Some(http3) = http3 {
            if let Ok(Err(e)) = http3.await {
                eprintln!("cello: HTTP/3 server error: {e}");
            }
        }
        queue.push(Work::Finished);
    };
    let thread = match runtime {
        Runtime::Loop(runtime) => {
            if let Some(driver) = driver {
                let queued: Arc<dyn RunQueued> = dispatcher.clone();
                driver.add_server(&queued);
            }
            runtime.spawn(serving);
            None
        }
        Runtime::Own(runtime) => Some(std::thread::Builder::new().name("cello-io".into()).spawn(
            move || {
                support::adopt_thread(&running_loop);
                runtime.block_on(serving);
                // Streams cut off by the shutdown timeout may still hold the runtime.
                runtime.shutdown_timeout(Duration::from_secs(1));
                support::release_thread();
            },
        )?),
    };
    Ok(ServerHandle {
        dispatcher,
        wake_reader,
        stop: Mutex::new(Some(stop_tx)),
        thread: Mutex::new(thread),
        host: local.ip().to_string(),
        port: local.port(),
        certs,
    })
}

fn tls_error(e: server::tls::TlsError) -> PyErr {
    PyValueError::new_err(e.0)
}

/// `TlsConfig`'s fields, as `start_server(tls=(cert, key, ca, min, max, require))`.
#[derive(FromPyObject)]
pub struct TlsArgs(String, String, Option<String>, String, String, bool);

impl TlsArgs {
    fn settings(self, http2: bool) -> server::tls::TlsSettings {
        let TlsArgs(cert, key, ca, min, max, require) = self;
        let mut alpn = Vec::new();
        if http2 {
            alpn.push(b"h2".to_vec());
        }
        alpn.push(b"http/1.1".to_vec());
        server::tls::TlsSettings {
            cert_path: cert.into(),
            key_path: key.into(),
            ca_path: ca.map(Into::into),
            min_version: min,
            max_version: max,
            require_client_cert: require,
            alpn,
        }
    }
}

/// `Http2Config`'s fields, as `start_server(http2=(max_concurrent_streams,
/// initial_window_size, max_frame_size))`.
#[derive(FromPyObject)]
pub struct Http2Args(u32, u32, u32);

impl Http2Args {
    fn settings(self, max_header_size: usize) -> server::Http2Settings {
        let Http2Args(streams, window, frame) = self;
        server::Http2Settings {
            max_concurrent_streams: streams,
            initial_window_size: window,
            max_frame_size: frame,
            // The same bound as an HTTP/1.1 head's (decoded, as h2 counts it).
            max_header_list_size: u32::try_from(max_header_size).unwrap_or(u32::MAX),
            ..server::Http2Settings::default()
        }
    }
}

/// Checks `TlsConfig`'s files before anything is forked or bound: raises
/// ValueError with one line saying what is wrong.
#[pyfunction]
#[pyo3(signature = (tls, http2 = false))]
pub fn check_tls(tls: TlsArgs, http2: bool) -> PyResult<()> {
    server::tls::load_server_config(&tls.settings(http2)).map_err(tls_error)?;
    Ok(())
}

/// What HTTP/3 needs before the runtime starts: its UDP socket (on the TCP
/// listener's address), TLS configuration and transport settings, each
/// failure reported to the caller as one line.
fn http3_setup(
    (idle, payload, streams, zero_rtt): (f64, u16, u32, bool),
    tls: rustls::ServerConfig,
    local: std::net::SocketAddr,
    udp_fd: Option<i32>,
) -> PyResult<(
    std::net::UdpSocket,
    rustls::ServerConfig,
    server::http3::Http3Settings,
)> {
    let Some(idle) = seconds("max_idle_timeout", Some(idle))? else {
        unreachable!("a given timeout is Some");
    };
    if payload < 1200 {
        return Err(PyValueError::new_err(format!(
            "max_udp_payload_size must be between 1200 and 65527, not {payload}"
        )));
    }
    if streams == 0 {
        return Err(PyValueError::new_err(
            "initial_max_streams_bidi must be at least 1",
        ));
    }
    let socket = match udp_fd {
        // A worker's own socket, bound by the master (`bind_udp_listener`).
        // SAFETY: the caller hands over a bound UDP socket it owns.
        Some(fd) => {
            let socket = unsafe { std::net::UdpSocket::from_raw_fd(fd) };
            socket.set_nonblocking(true)?;
            socket
        }
        None => server::http3::bind_udp(local, false).map_err(|e| {
            PyOSError::new_err(format!("cannot listen on UDP {local} for HTTP/3: {e}"))
        })?,
    };
    let settings = server::http3::Http3Settings {
        max_idle_timeout: idle,
        max_udp_payload_size: payload,
        initial_max_streams_bidi: streams,
        enable_0rtt: zero_rtt,
    };
    Ok((socket, tls, settings))
}

/// The runtime a server runs on.
enum Runtime {
    /// The event loop's, run inside its waits.
    Loop(Arc<tokio::runtime::Runtime>),
    /// Its own, on its own threads.
    Own(tokio::runtime::Runtime),
}

impl Runtime {
    fn handle(&self) -> &tokio::runtime::Handle {
        match self {
            Runtime::Loop(runtime) => runtime.handle(),
            Runtime::Own(runtime) => runtime.handle(),
        }
    }
}

/// A runtime on I/O threads of its own. Sync handlers run on those threads,
/// so each keeps a Python thread state, with `running_loop` as its running
/// asyncio loop. One thread needs no scheduler of its own: it is the thread
/// that drives the runtime.
fn io_runtime(
    threads: usize,
    running_loop: Arc<Py<PyAny>>,
) -> std::io::Result<tokio::runtime::Runtime> {
    if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .on_thread_start(move || support::adopt_thread(&running_loop))
            .on_thread_stop(support::release_thread)
            .enable_all()
            .build()
    }
}

/// A running native server, driven from the Python event loop.
#[pyclass(module = "cello._cello", frozen)]
pub struct ServerHandle {
    pub dispatcher: Arc<Dispatcher>,
    /// The socket the loop watches; `None` when the runtime runs inside the
    /// loop's waits, which handle the queue themselves.
    pub wake_reader: Option<UnixStream>,
    pub stop: Mutex<Option<oneshot::Sender<()>>>,
    pub thread: Mutex<Option<JoinHandle<()>>>,
    #[pyo3(get)]
    pub host: String,
    #[pyo3(get)]
    pub port: u16,
    /// The served certificate, when serving TLS.
    pub certs: Option<Arc<server::tls::CertStore>>,
}

#[pymethods]
impl ServerHandle {
    /// The descriptor the event loop watches (`loop.add_reader`), or None
    /// when the server runs inside the loop's waits.
    fn fileno(&self) -> Option<i32> {
        self.wake_reader.as_ref().map(|r| r.as_raw_fd())
    }

    /// Handles everything queued; called by the event loop on wake-up.
    fn drain(&self, py: Python<'_>) {
        if let Some(reader) = &self.wake_reader {
            let mut sink = [0u8; 256];
            while matches!((&*reader).read(&mut sink), Ok(n) if n > 0) {}
        }
        self.dispatcher.run_queued(py);
    }

    /// Reads the TLS certificate and key again; new handshakes use them,
    /// open connections keep theirs. Raises ValueError (and keeps serving
    /// the current certificate) when the files are not usable; returns False
    /// when the server does not serve TLS.
    fn reload_tls(&self) -> PyResult<bool> {
        match &self.certs {
            None => Ok(false),
            Some(certs) => certs.reload().map(|()| true).map_err(tls_error),
        }
    }

    /// Stops accepting connections; in-flight requests finish, then `closed` resolves.
    fn shutdown(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = stop.send(());
        }
    }

    /// Waits for the server thread to end (after `closed` resolved).
    fn join(&self, py: Python<'_>) {
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            py.detach(|| {
                let _ = thread.join();
            });
        }
    }
}
