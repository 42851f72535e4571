//! Door 1: the hyper service that routes on the I/O thread and runs or
//! queues the matched handler, plus `start_server`.

use std::future::Future;
use std::os::unix::net::UnixStream;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use std::os::fd::{FromRawFd, IntoRawFd};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cello_core::http::problem::Problem;
use cello_core::http::query::decode_path;
use cello_core::middleware::{Answer as LayerAnswer, Chain, Context as LayerContext};
use cello_core::server::access_log::{self, AccessLog, Entry};
use cello_core::server::clock;
use cello_core::server::{self, Body, ConnInfo, ServerConfig, Service, Timeouts};
use hyper::body::{Body as _, Incoming};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use tokio::sync::oneshot;

use crate::app::{AppCore, Cello, Route};
use crate::asgi_host::{GoneOnDrop, HostSignal};
use crate::convert::{bytes_response, problem_response};
use crate::dispatch::{self, Dispatcher, Job, NativeReply, Queue, ServerHandle, Wake, Work};
use crate::driver::{LoopDriver, LoopLink};
use crate::eager::TaskStarter;
use crate::pipeline::{self, Answer, Completion, Endpoint, NativeIo, Runner};
use crate::request::{read_limited, refuse_head, BodyError, BodyState, RequestHead};
use crate::response::{Payload, ResponseParts};
use crate::routing::{dispatch, Dispatch, Refusal};
use crate::support;

/// The service's answer: most sync handlers have it at once, and a ready
/// response then goes to hyper without a boxed future around it.
enum ResponseFuture {
    Ready(Option<Box<http::Response<Body>>>),
    Later(Pin<Box<dyn Future<Output = http::Response<Body>> + Send>>),
}

impl ResponseFuture {
    fn later(future: impl Future<Output = http::Response<Body>> + Send + 'static) -> Self {
        ResponseFuture::Later(Box::pin(future))
    }
}

impl Future for ResponseFuture {
    type Output = Box<http::Response<Body>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.get_mut() {
            ResponseFuture::Ready(response) => {
                Poll::Ready(response.take().expect("a ready response is polled once"))
            }
            ResponseFuture::Later(future) => future.as_mut().poll(cx).map(Box::new),
        }
    }
}

struct NativeService {
    app: Arc<AppCore>,
    runner: Arc<Runner>,
    queue: Arc<Queue>,
    runtime: tokio::runtime::Handle,
    /// Set when the runtime runs inside the event loop's waits: handlers
    /// then start right here instead of being queued.
    link: Option<Arc<LoopLink>>,
    body_timeout: Option<Duration>,
    handler_timeout: Option<Duration>,
    log: Option<AccessLog>,
    /// The app's native middleware, as it was when the server started.
    chain: Arc<Chain>,
}

/// Methods whose bodies are left on the socket until the handler asks.
fn body_is_lazy(method: &http::Method) -> bool {
    matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::OPTIONS | http::Method::DELETE
    )
}

fn ready(response: http::Response<Body>) -> ResponseFuture {
    ResponseFuture::Ready(Some(Box::new(response)))
}

/// Reads an eagerly-read body within the body timeout.
async fn read_body(
    incoming: Incoming,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<bytes::Bytes, BodyError> {
    match timeout {
        Some(d) => tokio::time::timeout(d, read_limited(incoming, limit))
            .await
            .unwrap_or(Err(BodyError::TimedOut)),
        None => read_limited(incoming, limit).await,
    }
}

/// Reads a body before its handler runs. For methods whose bodies are read
/// only on demand (`lazy`), a failed read is kept, to be raised only if the
/// handler asks for the body; for the others it is the answer.
async fn read_first(
    incoming: Incoming,
    lazy: bool,
    limit: usize,
    timeout: Option<Duration>,
) -> Result<BodyState, BodyError> {
    match read_body(incoming, limit, timeout).await {
        Ok(bytes) => Ok(BodyState::Ready(bytes)),
        Err(e) if lazy => Ok(BodyState::Failed(e)),
        Err(e) => Err(e),
    }
}

impl Service for NativeService {
    type Future = ResponseFuture;

    fn call(&self, req: http::Request<Incoming>, conn: ConnInfo) -> ResponseFuture {
        if self.chain.is_empty() && self.log.is_none() {
            return self.respond(req, conn, None);
        }
        let logged = self.log.as_ref().map(|log| Logged::start(log, &req, conn));
        let mut context = LayerContext::default();
        let layered = !self.chain.is_empty();
        let response = self.respond(req, conn, layered.then_some(&mut context));
        let chain = self.chain.clone();
        // Every response passes here, whoever made it: a handler, a refusal,
        // a timeout, a layer's own answer or a mounted app.
        let finish = move |mut response: Box<http::Response<Body>>| {
            if layered {
                let status = response.status().as_u16();
                chain.response(&context, status, response.headers_mut());
            }
            if let Some(logged) = logged {
                logged.record(&response);
            }
            response
        };
        match response {
            ResponseFuture::Ready(Some(response)) => ResponseFuture::Ready(Some(finish(response))),
            pending => ResponseFuture::later(async move { *finish(pending.await) }),
        }
    }
}

/// What the access log needs of a request, taken before the service consumes it.
struct Logged {
    log: AccessLog,
    started: Instant,
    client: std::net::SocketAddr,
    method: http::Method,
    version: http::Version,
    target: String,
}

impl Logged {
    fn start(log: &AccessLog, req: &http::Request<Incoming>, conn: ConnInfo) -> Self {
        Logged {
            log: log.clone(),
            started: Instant::now(),
            client: conn.peer,
            method: req.method().clone(),
            version: req.version(),
            target: req
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
        }
    }

    fn record(self, response: &http::Response<Body>) {
        self.log.record(&Entry {
            client: Some(self.client),
            method: self.method.as_str(),
            target: &self.target,
            version: self.version,
            status: response.status().as_u16(),
            size: response.body().exact_len(),
            duration: self.started.elapsed(),
        });
    }
}

impl NativeService {
    /// Middleware (when `layers` holds the request's context), routing, then
    /// the endpoint: a handler, a mounted app or a refusal.
    fn respond(
        &self,
        req: http::Request<Incoming>,
        conn: ConnInfo,
        layers: Option<&mut LayerContext>,
    ) -> ResponseFuture {
        let (parts, incoming) = req.into_parts();
        let path = decode_path(parts.uri.path());
        let head_only = parts.method == http::Method::HEAD;
        if let Some(refusal) = refuse_head(parts.version, &parts.headers, &path) {
            return ready(bytes_response(refusal, head_only));
        }
        let limit = self.app.max_body_size();
        // hyper parsed and checked the declared content-length: for such a
        // body the lower bound of the size hint is that length (for a chunked
        // one it is 0, and the limit is enforced while reading).
        let too_long = incoming.size_hint().lower() > limit as u64;
        let mut head = Box::new(RequestHead {
            query: parts.uri.query().unwrap_or("").to_owned(),
            method: parts.method,
            version: parts.version,
            raw_path: (path != parts.uri.path()).then(|| parts.uri.path().to_owned()),
            path,
            headers: parts.headers,
            params: Vec::new(),
            context: Vec::new(),
            client: Some(conn.peer),
            server: Some(conn.local),
            scheme: "http",
        });
        if let Some(context) = layers {
            if let Some(answer) = self.chain.request(&mut head, context) {
                return self.answer_now(layer_parts(answer), incoming, head_only, too_long);
            }
            head.context = context.values().to_vec();
        }
        let (route, head_from_get) = match dispatch(&self.app, &head.method, &head.path, &head.path)
        {
            Dispatch::Handle {
                route,
                params,
                head_from_get,
            } => {
                head.params = params;
                (route, head_from_get)
            }
            Dispatch::Refuse(refusal) => {
                return self.refuse(refusal, head, incoming, head_only, too_long)
            }
        };
        // A mounted ASGI app sees its body as it arrives, with no limit of
        // Cello's (as under other ASGI servers).
        if route.mount.is_some() {
            return self.host(route, head, incoming, head_only);
        }
        if too_long {
            return self.refuse(Refusal::too_large(limit), head, incoming, head_only, true);
        }
        let head_only = head_only || head_from_get;
        // Python middleware is async; an async handler that cannot suspend
        // takes the sync path.
        let wrapped = self.runner.python_middleware.is_some();
        if wrapped || (route.is_async && route.suspends) {
            self.queue_async(Endpoint::Handler(route), head, incoming, head_only)
        } else {
            self.call_sync(route, head, incoming, head_only)
        }
    }

    /// Answers a refusal: in Rust, or through the pipeline when an exception
    /// handler or Python middleware must see it. The request body is not
    /// read for it, only discarded.
    fn refuse(
        &self,
        refusal: Refusal,
        head: Box<RequestHead>,
        incoming: Incoming,
        head_only: bool,
        too_long: bool,
    ) -> ResponseFuture {
        let handoff = self.handoff();
        if !handoff.needs_python(&refusal) {
            let parts = refusal.parts(&head.path);
            return self.answer_now(parts, incoming, head_only, too_long);
        }
        let limit = self.app.max_body_size();
        let body_timeout = self.body_timeout;
        ResponseFuture::later(async move {
            let endpoint = Endpoint::Refusal(Box::new(refusal));
            let response = handoff.through_python(endpoint, head, head_only).await;
            finish_unread(incoming, too_long, limit, body_timeout, response).await
        })
    }

    fn handoff(&self) -> Handoff {
        Handoff {
            runner: self.runner.clone(),
            link: self.link.clone(),
            queue: self.queue.clone(),
            handler_timeout: self.handler_timeout,
        }
    }

    /// A response made without the pipeline, for a request whose body (if
    /// any) nobody will read.
    fn answer_now(
        &self,
        parts: ResponseParts,
        incoming: Incoming,
        head_only: bool,
        too_long: bool,
    ) -> ResponseFuture {
        let mut response = bytes_response(parts, head_only);
        if incoming.is_end_stream() {
            return ready(response);
        }
        if too_long {
            close_after(&mut response);
            return ready(response);
        }
        let limit = self.app.max_body_size();
        let body_timeout = self.body_timeout;
        ResponseFuture::later(discard_then(incoming, limit, body_timeout, response))
    }

    /// A mounted ASGI app runs on the event-loop thread and sees its body as
    /// it arrives, with no limit of Cello's (as under other ASGI servers).
    fn host(
        &self,
        route: Arc<Route>,
        head: Box<RequestHead>,
        incoming: Incoming,
        head_only: bool,
    ) -> ResponseFuture {
        let queue = self.queue.clone();
        let runner = self.runner.clone();
        let link = self.link.clone();
        let limit = self.app.max_body_size();
        let body_timeout = self.body_timeout;
        ResponseFuture::later(async move {
            let incoming = (!incoming.is_end_stream()).then_some(incoming);
            let signal = HostSignal::new(incoming);
            let mut gone = GoneOnDrop {
                signal: signal.clone(),
                queue: queue.clone(),
                armed: true,
            };
            let (reply, response) = oneshot::channel();
            let job = Job {
                endpoint: Endpoint::Handler(route),
                head,
                body: BodyState::Ready(Bytes::new()),
                host: Some(signal),
                head_only,
                reply,
            };
            start_or_queue(&runner, link.as_deref(), &queue, job);
            let answered = response.await;
            gone.armed = false;
            answer(answered, limit, body_timeout, head_only).await
        })
    }

    /// A sync handler runs right here, on the I/O thread, holding the GIL:
    /// no hand-over to the event-loop thread and no wake-up, which is what
    /// makes it the cheapest path (docs/handlers.md has the measurements).
    fn call_sync(
        &self,
        route: Arc<Route>,
        head: Box<RequestHead>,
        incoming: Incoming,
        head_only: bool,
    ) -> ResponseFuture {
        let handler_timeout = self.handler_timeout;
        let limit = self.app.max_body_size();
        let body_timeout = self.body_timeout;
        if incoming.is_end_stream() {
            let body = BodyState::Ready(Bytes::new());
            return match run_sync(&self.runner, &route, head, body, head_only, handler_timeout) {
                Inline::Now(response) => ResponseFuture::Ready(Some(response)),
                Inline::Later(rx, path) => ResponseFuture::later(async move {
                    let answered = reply_within(rx, handler_timeout, path, head_only).await;
                    answer(answered, limit, body_timeout, head_only).await
                }),
            };
        }
        let runner = self.runner.clone();
        let handoff = self.handoff();
        let lazy = body_is_lazy(&head.method);
        ResponseFuture::later(async move {
            // The handler cannot wait for its body on this thread, so the body
            // is read first. For methods whose bodies are read only on demand,
            // a failed read is raised only if the handler asks for the body.
            let body = match read_first(incoming, lazy, limit, body_timeout).await {
                Ok(body) => body,
                Err(e) => return handoff.body_error_response(e, head, head_only).await,
            };
            let unusable = matches!(body, BodyState::Failed(_));
            let mut response =
                match run_sync(&runner, &route, head, body, head_only, handler_timeout) {
                    Inline::Now(response) => *response,
                    Inline::Later(rx, path) => {
                        let answered = reply_within(rx, handler_timeout, path, head_only).await;
                        answer(answered, limit, body_timeout, head_only).await
                    }
                };
            if unusable {
                // What is left of that body is still on the connection.
                close_after(&mut response);
            }
            response
        })
    }

    /// An async handler runs as a Task on the event-loop thread: started
    /// right here when this is that thread, else queued for it.
    fn queue_async(
        &self,
        endpoint: Endpoint,
        head: Box<RequestHead>,
        incoming: Incoming,
        head_only: bool,
    ) -> ResponseFuture {
        let handoff = self.handoff();
        let queue = self.queue.clone();
        let runner = self.runner.clone();
        let link = self.link.clone();
        let runtime = self.runtime.clone();
        let handler_timeout = self.handler_timeout;
        let limit = self.app.max_body_size();
        let body_timeout = self.body_timeout;
        ResponseFuture::later(async move {
            let lazy = body_is_lazy(&head.method);
            let body = if incoming.is_end_stream() {
                BodyState::Ready(Bytes::new())
            } else if lazy && link.is_none() {
                BodyState::Pending {
                    incoming,
                    runtime,
                    limit,
                    timeout: body_timeout,
                }
            } else {
                // With the runtime inside the loop's waits, a handler cannot
                // block on a read the runtime would have to make, so the body
                // is read first, as for a sync handler.
                match read_first(incoming, lazy, limit, body_timeout).await {
                    Ok(body) => body,
                    Err(e) => return handoff.body_error_response(e, head, head_only).await,
                }
            };
            let unusable = matches!(body, BodyState::Failed(_));
            let (reply, response) = oneshot::channel();
            let path = head.path.clone();
            let job = Job {
                endpoint,
                head,
                body,
                host: None,
                head_only,
                reply,
            };
            start_or_queue(&runner, link.as_deref(), &queue, job);
            let answered = reply_within(response, handler_timeout, path, head_only).await;
            let mut response = answer(answered, limit, body_timeout, head_only).await;
            if unusable {
                close_after(&mut response);
            }
            response
        })
    }
}

/// Starts `job` now when this thread runs the event loop, else queues it.
fn start_or_queue(runner: &Arc<Runner>, link: Option<&LoopLink>, queue: &Queue, job: Job) {
    match link {
        Some(link) if link.on_loop_thread() => Python::attach(|py| {
            let timed = link.debug_clock().and_then(|t| match &job.endpoint {
                Endpoint::Handler(route) => Some((t, route.task_name.clone_ref(py))),
                Endpoint::Refusal(_) => None,
            });
            dispatch::start_job(py, runner, job);
            link.after_python(py, timed.as_ref().map(|(t, name)| (*t, name)));
        }),
        _ => queue.push(Work::Request(job)),
    }
}

/// Marks a response as the connection's last (a request body is left on it).
fn close_after(response: &mut http::Response<Body>) {
    response.headers_mut().insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
}

/// How a sync handler answered.
enum Inline {
    Now(Box<http::Response<Body>>),
    /// An async exception handler is finishing the request on the event-loop
    /// thread; the path is for the 504 should it take too long.
    Later(oneshot::Receiver<NativeReply>, String),
}

/// Calls a sync handler on this thread, holding the GIL for the call.
fn run_sync(
    runner: &Arc<Runner>,
    route: &Route,
    head: Box<RequestHead>,
    body: BodyState,
    head_only: bool,
    handler_timeout: Option<Duration>,
) -> Inline {
    let io = runner
        .native
        .as_ref()
        .expect("sync handlers run inline only on the native server");
    let started = handler_timeout.map(|_| clock::coarse_ms());
    Python::attach(|py| {
        let request = match io.new_request(py, head, body) {
            Ok(request) => request,
            Err(e) => {
                e.print(py);
                return Inline::Now(Box::new(no_response(head_only)));
            }
        };
        let completion = Completion::Inline { head: head_only };
        let timed = io.link.as_deref().and_then(LoopLink::debug_clock);
        // Requests with Python middleware never come here (it is async).
        let answer = pipeline::run_handler(py, runner, route, request.clone(), completion);
        if let Some(link) = io.link.as_deref() {
            link.after_python(py, timed.map(|t| (t, &route.task_name)));
        }
        let path = || request.borrow().head.path.clone();
        let overran = match (handler_timeout, started) {
            // A sync handler cannot be interrupted; one that overran still
            // gets the 504 an async one would have had.
            (Some(limit), Some(started)) => {
                (clock::coarse_ms() - started > limit.as_millis() as u64).then_some(limit)
            }
            _ => None,
        };
        let inline = match (overran, answer) {
            (Some(limit), _) => Inline::Now(Box::new(handler_timed_out(limit, path(), head_only))),
            (None, Answer::Later(response)) => Inline::Later(response, path()),
            (None, Answer::Here(reply)) => Inline::Now(reply.response),
            (None, Answer::Delivered) => Inline::Now(Box::new(no_response(head_only))),
        };
        io.recycle(request);
        inline
    })
}

/// Waits for the Python side's answer, or answers 504 after `limit`.
async fn reply_within(
    rx: oneshot::Receiver<NativeReply>,
    limit: Option<Duration>,
    path: String,
    head_only: bool,
) -> Result<NativeReply, oneshot::error::RecvError> {
    let Some(limit) = limit else {
        return rx.await;
    };
    match tokio::time::timeout(limit, rx).await {
        Ok(answered) => answered,
        Err(_) => Ok(NativeReply {
            response: Box::new(handler_timed_out(limit, path, head_only)),
            unread: None,
        }),
    }
}

fn handler_timed_out(limit: Duration, path: String, head_only: bool) -> http::Response<Body> {
    let problem = Problem::new(504)
        .with_detail(format!(
            "the handler did not respond within {:.3}s",
            limit.as_secs_f64()
        ))
        .with_instance(path);
    problem_response(&problem, head_only)
}

fn no_response(head_only: bool) -> http::Response<Body> {
    problem_response(
        &Problem::new(500).with_detail("no response was produced"),
        head_only,
    )
}

/// What a request's future needs to hand work to the event-loop thread.
#[derive(Clone)]
struct Handoff {
    runner: Arc<Runner>,
    link: Option<Arc<LoopLink>>,
    queue: Arc<Queue>,
    handler_timeout: Option<Duration>,
}

impl Handoff {
    fn needs_python(&self, refusal: &Refusal) -> bool {
        let has_middleware = self.runner.python_middleware.is_some();
        self.runner
            .app
            .refusal_needs_python(refusal.status, has_middleware)
    }

    /// Runs `endpoint` with an empty body on the event-loop thread.
    async fn through_python(
        &self,
        endpoint: Endpoint,
        head: Box<RequestHead>,
        head_only: bool,
    ) -> http::Response<Body> {
        let (reply, response) = oneshot::channel();
        let path = head.path.clone();
        let job = Job {
            endpoint,
            head,
            body: BodyState::Ready(Bytes::new()),
            host: None,
            head_only,
            reply,
        };
        start_or_queue(&self.runner, self.link.as_deref(), &self.queue, job);
        match reply_within(response, self.handler_timeout, path, head_only).await {
            Ok(reply) => *reply.response,
            Err(_) => no_response(head_only),
        }
    }

    /// The answer when a body that had to be read first could not be.
    async fn body_error_response(
        &self,
        e: BodyError,
        head: Box<RequestHead>,
        head_only: bool,
    ) -> http::Response<Body> {
        let refusal = match e {
            BodyError::TooLarge(limit) => Refusal::too_large(limit),
            BodyError::TimedOut => Refusal::body_timed_out(),
            // Nobody is left to read this; hyper discards it.
            BodyError::Disconnected => return problem_response(&Problem::new(400), head_only),
        };
        if self.needs_python(&refusal) {
            let endpoint = Endpoint::Refusal(Box::new(refusal));
            return self.through_python(endpoint, head, head_only).await;
        }
        bytes_response(refusal.parts(&head.path), head_only)
    }
}

/// The last step of a refusal answered through Python: what is left of the
/// request body is discarded, or the connection closed when it is too large.
async fn finish_unread(
    incoming: Incoming,
    too_long: bool,
    limit: usize,
    timeout: Option<Duration>,
    mut response: http::Response<Body>,
) -> http::Response<Body> {
    if incoming.is_end_stream() {
        return response;
    }
    if too_long {
        close_after(&mut response);
        return response;
    }
    discard_then(incoming, limit, timeout, response).await
}

/// A layer's own answer as response parts.
fn layer_parts(answer: LayerAnswer) -> ResponseParts {
    ResponseParts {
        status: answer.status,
        headers: answer.headers,
        payload: Payload::Bytes(answer.body),
    }
}

/// The response the Python side produced, after discarding any body it left
/// unread; a 500 if it produced none.
async fn answer(
    answered: Result<NativeReply, oneshot::error::RecvError>,
    limit: usize,
    body_timeout: Option<Duration>,
    head_only: bool,
) -> http::Response<Body> {
    match answered {
        Ok(NativeReply {
            response,
            unread: None,
        }) => *response,
        Ok(NativeReply {
            response,
            unread: Some(body),
        }) => discard_then(body, limit, body_timeout, *response).await,
        Err(_) => no_response(head_only),
    }
}

/// Reads and drops a body nobody read, then returns `response`; a body that
/// is too large or too slow is left, and the connection closed after the
/// response, as it cannot be reused with a body still on it.
async fn discard_then(
    incoming: Incoming,
    limit: usize,
    timeout: Option<Duration>,
    mut response: http::Response<Body>,
) -> http::Response<Body> {
    if read_body(incoming, limit, timeout).await.is_err() {
        response.headers_mut().insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("close"),
        );
    }
    response
}

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
    max_requests_per_connection = None, max_headers = 100, max_header_size = 8192, access_log = None
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
    access_log: Option<&str>,
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
    let log = match access_log {
        None => None,
        Some("text") => Some(AccessLog::stdout(access_log::Format::Text)),
        Some("json") => Some(AccessLog::stdout(access_log::Format::Json)),
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "access_log must be 'text' or 'json', not {other:?}"
            )))
        }
    };
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
        log,
        chain: app.core.chain(),
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
                driver.add_server(&dispatcher);
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
