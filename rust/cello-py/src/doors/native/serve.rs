//! Door 1's entry points: binding the listener, starting the server on its
//! runtime, and the handle the event loop drives it through.

use std::os::unix::net::UnixStream;
use std::sync::{Arc, Mutex};

use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd};
use std::thread::JoinHandle;
use std::time::Duration;

use cello_core::server::{self, ServerConfig, Timeouts};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use tokio::sync::oneshot;

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
    ws_max_message_size = 16777216, ws_max_frame_size = 16777216, ws_per_message_deflate = true
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
        let stopped = async move {
            let _ = stop_rx.await;
        };
        if let Err(e) = server::serve(listener, service, config, stopped).await {
            eprintln!("cello: server error: {e}");
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
    })
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
