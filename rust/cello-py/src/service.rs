//! Door 1: the hyper service that routes on the I/O thread and queues
//! matched requests for the Python thread, plus `start_server`.

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use cello_core::problem::Problem;
use cello_core::query::decode_path;
use cello_core::server::{self, Body, ConnInfo, ServerConfig, Service};
use hyper::body::{Body as _, Incoming};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use tokio::sync::oneshot;

use crate::app::{AppCore, Cello, Routed};
use crate::convert::problem_response;
use crate::dispatch::{Job, Queue, ServerHandle, Work};
use crate::pipeline::Runner;
use crate::request::{read_limited, BodyError, BodyState, RequestHead};

type ResponseFuture = Pin<Box<dyn Future<Output = http::Response<Body>> + Send>>;

struct NativeService {
    app: Arc<AppCore>,
    queue: Arc<Queue>,
    runtime: tokio::runtime::Handle,
}

/// Methods whose bodies are left on the socket until the handler asks.
fn body_is_lazy(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::DELETE
    )
}

fn ready(response: http::Response<Body>) -> ResponseFuture {
    Box::pin(std::future::ready(response))
}

fn too_large(limit: usize, path: &str, head: bool) -> http::Response<Body> {
    let problem = Problem::new(413)
        .with_detail(format!("request body exceeds the limit of {limit} bytes"))
        .with_instance(path);
    let mut response = problem_response(&problem, head);
    // The unread remainder of the body makes the connection unusable.
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    response
}

impl Service for NativeService {
    type Future = ResponseFuture;

    fn call(&self, req: http::Request<Incoming>, conn: ConnInfo) -> ResponseFuture {
        let (parts, incoming) = req.into_parts();
        let path = decode_path(parts.uri.path());
        let head_only = parts.method == http::Method::HEAD;
        let (route, params, head_from_get) = match self.app.route(parts.method.as_str(), &path) {
            Routed::Found {
                route,
                params,
                head_from_get,
            } => (route, params, head_from_get),
            Routed::MethodNotAllowed(allow) => {
                let problem = Problem::new(405)
                    .with_detail(format!("{} is not allowed on {path}", parts.method))
                    .with_instance(path);
                let mut response = problem_response(&problem, head_only);
                if let Ok(allow) = http::HeaderValue::from_str(&allow) {
                    response.headers_mut().insert(http::header::ALLOW, allow);
                }
                return ready(response);
            }
            Routed::NotFound => {
                let problem = Problem::new(404)
                    .with_detail(format!("no route for {} {path}", parts.method))
                    .with_instance(path);
                return ready(problem_response(&problem, head_only));
            }
        };
        let limit = self.app.max_body_size();
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return ready(too_large(limit, &path, head_only));
        }
        let head = RequestHead {
            query: parts.uri.query().unwrap_or("").to_owned(),
            method: parts.method,
            path,
            headers: parts.headers,
            params,
            client: Some(conn.peer),
            server: Some(conn.local),
            scheme: "http",
        };
        let queue = self.queue.clone();
        let runtime = self.runtime.clone();
        Box::pin(async move {
            let body = if incoming.is_end_stream() {
                BodyState::Ready(bytes::Bytes::new())
            } else if body_is_lazy(&head.method) {
                BodyState::Pending {
                    incoming,
                    runtime,
                    limit,
                }
            } else {
                match read_limited(incoming, limit).await {
                    Ok(bytes) => BodyState::Ready(bytes),
                    Err(BodyError::TooLarge(limit)) => {
                        return too_large(limit, &head.path, head_only)
                    }
                    Err(BodyError::Disconnected) => {
                        // Nobody is left to read this; hyper discards it.
                        return problem_response(&Problem::new(400), head_only);
                    }
                }
            };
            let (reply, response) = oneshot::channel();
            queue.push(Work::Request(Job {
                route,
                head,
                body,
                head_only: head_only || head_from_get,
                reply,
            }));
            response.await.unwrap_or_else(|_| {
                problem_response(
                    &Problem::new(500).with_detail("the handler finished without a response"),
                    head_only,
                )
            })
        })
    }
}

/// Binds `host:port` and starts serving `app` on I/O threads.
///
/// `event_loop` is the loop the caller runs on this thread; it must watch
/// `handle.fileno()` and call `handle.drain()`. `closed` (a future of that
/// loop) resolves once the server has stopped and drained its connections.
#[pyfunction]
#[pyo3(signature = (app, host, port, event_loop, start_task, closed, threads = 1, shutdown_timeout = 30.0))]
#[allow(clippy::too_many_arguments)]
pub fn start_server(
    py: Python<'_>,
    app: &Cello,
    host: &str,
    port: u16,
    event_loop: Py<PyAny>,
    start_task: Py<PyAny>,
    closed: Py<PyAny>,
    threads: usize,
    shutdown_timeout: f64,
) -> PyResult<ServerHandle> {
    if threads == 0 {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    if !(shutdown_timeout.is_finite() && shutdown_timeout >= 0.0) {
        return Err(PyValueError::new_err(
            "shutdown_timeout must be a non-negative number",
        ));
    }
    let listener = server::bind(host, port)
        .map_err(|e| PyOSError::new_err(format!("cannot listen on {host}:{port}: {e}")))?;
    let local = listener.local_addr()?;
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?
    };
    let (wake_reader, waker) = UnixStream::pair()?;
    wake_reader.set_nonblocking(true)?;
    waker.set_nonblocking(true)?;
    let queue = Arc::new(Queue::new(waker));
    let runner = Arc::new(Runner {
        app: app.core.clone(),
        start_task,
        event_loop,
        runtime: runtime.handle().clone(),
        queue: queue.clone(),
    });
    let service = Arc::new(NativeService {
        app: app.core.clone(),
        queue: queue.clone(),
        runtime: runtime.handle().clone(),
    });
    let config = ServerConfig {
        shutdown_timeout: std::time::Duration::from_secs_f64(shutdown_timeout),
        ..ServerConfig::default()
    };
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("cello-io".into())
        .spawn(move || {
            let stopped = async move {
                let _ = stop_rx.await;
            };
            if let Err(e) = runtime.block_on(server::serve(listener, service, config, stopped)) {
                eprintln!("cello: server error: {e}");
            }
            queue.push(Work::Finished);
            // In-flight streams may still hold runtime handles; give them a moment.
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        })?;
    let _ = py;
    Ok(ServerHandle {
        runner,
        wake_reader,
        closed,
        stop: Mutex::new(Some(stop_tx)),
        thread: Mutex::new(Some(thread)),
        host: local.ip().to_string(),
        port: local.port(),
    })
}
