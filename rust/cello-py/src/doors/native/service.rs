//! Door 1's hyper service: middleware, routing and the endpoint for each
//! request, with sync handlers run inline and async ones handed to the loop.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use std::time::Duration;

use bytes::Bytes;
use cello_core::http::problem::Problem;
use cello_core::http::query::decode_path;
use cello_core::middleware::{Chain, Context as LayerContext, OutBody, Outgoing};
use cello_core::server::clock;
use cello_core::server::RequestBody;
use cello_core::server::{Body, ConnInfo, Service};
use hyper::body::Body as _;
use pyo3::prelude::*;
use tokio::sync::oneshot;

use super::io::{body_is_lazy, close_after, discard_then, finish_unread, read_first};
use crate::bridge::driver::LoopLink;
use crate::doors::mounts::{
    self,
    serve::{GoneOnDrop, HostSignal},
};
use crate::doors::websocket;
use crate::pipeline::app::{AppCore, Route};
use crate::pipeline::queue::{self as queue, Job, NativeReply, Queue, Work};
use crate::pipeline::routing::{dispatch, Dispatch, Refusal};
use crate::pipeline::{self, Answer, Completion, Endpoint, Runner};
use crate::types::body::{spools, BodyError, BodyState};
use crate::types::convert::{bytes_response, problem_response};
use crate::types::request::{refuse_head, RequestHead};
use crate::types::response::ResponseParts;

/// The service's answer: most sync handlers have it at once, and a ready
/// response then goes to hyper without a boxed future around it.
pub(crate) enum ResponseFuture {
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

pub(crate) struct NativeService {
    pub(crate) app: Arc<AppCore>,
    pub(crate) runner: Arc<Runner>,
    pub(crate) queue: Arc<Queue>,
    pub(crate) runtime: tokio::runtime::Handle,
    /// Set when the runtime runs inside the event loop's waits: handlers
    /// then start right here instead of being queued.
    pub(crate) link: Option<Arc<LoopLink>>,
    pub(crate) body_timeout: Option<Duration>,
    pub(crate) handler_timeout: Option<Duration>,
    /// The app's native middleware, as it was when the server started.
    pub(crate) chain: Arc<Chain>,
    /// Who serves WebSocket upgrades, and how.
    pub(crate) websocket: Arc<crate::doors::websocket::WsDoor>,
}

pub(crate) fn ready(response: http::Response<Body>) -> ResponseFuture {
    ResponseFuture::Ready(Some(Box::new(response)))
}

impl Service for NativeService {
    type Future = ResponseFuture;

    fn call(&self, req: http::Request<RequestBody>, conn: ConnInfo) -> ResponseFuture {
        if self.chain.is_empty() {
            return self.respond(req, conn, None);
        }
        let mut context = LayerContext::default();
        let head_only = req.method() == http::Method::HEAD;
        let response = self.respond(req, conn, Some(&mut context));
        let chain = self.chain.clone();
        // Every response passes here, whoever made it: a handler, a refusal,
        // a timeout, a layer's own answer or a mounted app.
        let mut finish = move |mut response: Box<http::Response<Body>>| {
            through_layers(&chain, &mut context, &mut response, head_only);
            response
        };
        match response {
            ResponseFuture::Ready(Some(response)) => ResponseFuture::Ready(Some(finish(response))),
            pending => ResponseFuture::later(async move { *finish(pending.await) }),
        }
    }
}

/// Runs the layers' response hooks over a response hyper is about to send.
fn through_layers(
    chain: &Chain,
    context: &mut LayerContext,
    response: &mut http::Response<Body>,
    head_only: bool,
) {
    let status = response.status().as_u16();
    let headers = std::mem::take(response.headers_mut());
    let full = response.body_mut().take_full();
    let was_streamed = full.is_none();
    let mut out = Outgoing::new(status, headers, full, head_only);
    chain.response(context, &mut out);
    *response.status_mut() =
        http::StatusCode::from_u16(out.status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let encoders = out.take_encoders();
    *response.headers_mut() = out.headers;
    match out.body {
        OutBody::Full(bytes) => response.body_mut().set_full(bytes),
        // A layer turned the response into one without a body (a 304):
        // a stream's producer sees its channel close.
        OutBody::Withheld if was_streamed => response.body_mut().set_full(Bytes::new()),
        OutBody::Withheld => {}
        OutBody::Streamed => {
            if let Some(encoders) = encoders {
                response.body_mut().encode_with(encoders);
            }
        }
    }
}

impl NativeService {
    /// Middleware (when `layers` holds the request's context), routing, then
    /// the endpoint: a handler, a mounted app or a refusal.
    fn respond(
        &self,
        req: http::Request<RequestBody>,
        conn: ConnInfo,
        layers: Option<&mut LayerContext>,
    ) -> ResponseFuture {
        let (mut parts, incoming) = req.into_parts();
        let tls = parts
            .extensions
            .remove::<Arc<cello_core::server::tls::PeerTls>>();
        // HTTP/2 carries the host in `:authority`, which hyper puts in the
        // URI: as a `Host` header it reaches `request.host`, `request.url`
        // and hosted apps' scopes as HTTP/1.1's does.
        if parts.version == http::Version::HTTP_2 && !parts.headers.contains_key(http::header::HOST)
        {
            if let Some(value) = parts
                .uri
                .authority()
                .and_then(|a| http::HeaderValue::from_str(a.as_str()).ok())
            {
                parts.headers.insert(http::header::HOST, value);
            }
        }
        let path = decode_path(parts.uri.path());
        let head_only = parts.method == http::Method::HEAD;
        if let Some(refusal) = refuse_head(parts.version, &parts.headers, &path) {
            return ready(bytes_response(refusal, head_only));
        }
        // hyper parsed and checked the declared content-length: for such a
        // body the lower bound of the size hint is that length (for a chunked
        // one it is 0, and the limit is enforced while reading).
        let declared = incoming.size_hint().lower();
        let too_long = declared > self.app.max_body_size() as u64;
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
            // TLS over TCP, or HTTP/3 (whose `:scheme` is always https).
            scheme: if tls.is_some() || parts.uri.scheme() == Some(&http::uri::Scheme::HTTPS) {
                "https"
            } else {
                "http"
            },
            tls,
        });
        let upgrade = websocket::serve::wants_websocket(&head.method, &head.headers);
        // The App runs the middleware chain itself for its own WebSocket
        // routes (the handshake goes through its pipeline, as in door 2):
        // running it here too would count a handshake twice (rate limits)
        // and make two request IDs.
        let chain_runs_in_app = upgrade && self.websocket_goes_to_own_app(&head.path);
        let mut layers = layers.filter(|_| !chain_runs_in_app);
        if let Some(context) = layers.as_deref_mut() {
            if let Some(answer) = self.chain.request(&mut head, context) {
                return self.answer_now(answer.into(), incoming, head_only, too_long);
            }
            head.context = context.take_values();
        }
        if upgrade {
            return self.websocket(head, incoming);
        }
        let (route, head_from_get) = match dispatch(&self.app, &head.method, &head.path, &head.path)
        {
            Dispatch::Handle {
                route,
                params,
                head_from_get,
            } => {
                head.params = params;
                if let Some(context) = layers {
                    context.set_route(route.template);
                }
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
        let limit = route.body_limit.unwrap_or_else(|| self.app.max_body_size());
        if declared > limit as u64 {
            return self.refuse(Refusal::too_large(limit), head, incoming, head_only, true);
        }
        let head_only = head_only || head_from_get;
        // Python middleware is async; an async handler that cannot suspend
        // takes the sync path.
        let wrapped = self.runner.python_middleware.is_some();
        if wrapped || (route.is_async && route.suspends) {
            self.queue_async(Endpoint::Handler(route), head, incoming, head_only, limit)
        } else {
            self.call_sync(route, head, incoming, head_only, limit)
        }
    }

    /// Answers a refusal: in Rust, or through the pipeline when an exception
    /// handler or Python middleware must see it. The request body is not
    /// read for it, only discarded.
    fn refuse(
        &self,
        refusal: Refusal,
        head: Box<RequestHead>,
        incoming: RequestBody,
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
        incoming: RequestBody,
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
        incoming: RequestBody,
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
            let start = {
                let runner = runner.clone();
                move |py: Python<'_>| {
                    if reply.is_closed() {
                        return; // the client left while the call was queued
                    }
                    let mount = route.mount.as_ref().expect("a hosted route is a mount");
                    if let Err(e) =
                        mounts::serve::start(py, &runner, &route, mount, head, signal, reply)
                    {
                        e.print(py);
                    }
                }
            };
            match link.as_deref() {
                Some(link) if link.on_loop_thread() => Python::attach(|py| {
                    start(py);
                    link.after_python(py, None);
                }),
                _ => queue.push(Work::call(start)),
            }
            let answered = response.await;
            gone.armed = false;
            answer(answered, limit, body_timeout, head_only).await
        })
    }

    /// A WebSocket upgrade: the app that serves it (a mount claiming the
    /// path, else Cello's own `App`) gets the ASGI `websocket` scope; its
    /// answer to the handshake is the response, and after a 101 the session
    /// runs on this runtime.
    /// Whether an upgrade to `path` is served by Cello's own `App` rather
    /// than by a mounted ASGI app.
    fn websocket_goes_to_own_app(&self, path: &str) -> bool {
        self.websocket.app.is_some() && self.websocket_mount(path).is_none()
    }

    fn websocket_mount(&self, path: &str) -> Option<Arc<Route>> {
        match dispatch(&self.app, &http::Method::GET, path, path) {
            Dispatch::Handle { route, .. } if route.mount.is_some() => Some(route),
            _ => None,
        }
    }

    fn websocket(&self, head: Box<RequestHead>, incoming: RequestBody) -> ResponseFuture {
        drop(incoming); // a GET upgrade request has no body
        if let Some((status, detail)) =
            websocket::serve::handshake_refusal(head.version, &head.headers)
        {
            return ready(websocket::serve::refuse_handshake(
                status, detail, &head.path,
            ));
        }
        let mount = self.websocket_mount(&head.path);
        let Some(own_app) = mount.is_none().then(|| self.websocket.app.as_ref()) else {
            return self.websocket_call(head, mount, None);
        };
        match own_app {
            Some(app) => {
                let app = Python::attach(|py| app.clone_ref(py));
                self.websocket_call(head, None, Some(app))
            }
            None => {
                let path = head.path.clone();
                ready(websocket::serve::refuse_handshake(
                    404,
                    "no WebSocket endpoint here",
                    &path,
                ))
            }
        }
    }

    fn websocket_call(
        &self,
        head: Box<RequestHead>,
        mount: Option<Arc<Route>>,
        own_app: Option<Py<PyAny>>,
    ) -> ResponseFuture {
        use websocket::io::{Inbound, Outbound, WsShared, INBOUND, OUTBOUND};
        let key = head
            .headers
            .get(http::header::SEC_WEBSOCKET_KEY)
            .map(|k| tokio_tungstenite::tungstenite::handshake::derive_accept_key(k.as_bytes()))
            .unwrap_or_default();
        let queue = self.queue.clone();
        let runner = self.runner.clone();
        let link = self.link.clone();
        let settings = self.websocket.settings.clone();
        let deflate = settings.negotiate(&head.headers);
        let extensions = deflate.map(|d| {
            http::HeaderValue::from_str(&d.response_header()).expect("an ASCII header value")
        });
        ResponseFuture::later(async move {
            let (in_tx, in_rx) = tokio::sync::mpsc::channel::<Inbound>(INBOUND);
            let (out_tx, out_rx) = tokio::sync::mpsc::channel::<Outbound>(OUTBOUND);
            let shared = WsShared::new(in_rx, queue.clone());
            // However this ends (the client leaving first included), a
            // waiting receive() hears of it.
            let ends = EndsSession(shared.clone());
            let (reply, response) = oneshot::channel();
            let start = {
                let runner = runner.clone();
                let shared = shared.clone();
                move |py: Python<'_>| {
                    if reply.is_closed() {
                        return; // the client left while the call was queued
                    }
                    let path = head.path.clone();
                    let started =
                        websocket_scope(py, &head, mount.as_deref()).and_then(|(app, scope)| {
                            let app = match own_app {
                                Some(own) => own.into_bound(py),
                                None => app,
                            };
                            websocket::serve::start(
                                py, &runner, &app, scope, shared, out_tx, key, extensions, path,
                                reply,
                            )
                        });
                    if let Err(e) = started {
                        e.print(py);
                    }
                }
            };
            match link.as_deref() {
                Some(link) if link.on_loop_thread() => Python::attach(|py| {
                    start(py);
                    link.after_python(py, None);
                }),
                _ => queue.push(Work::call(start)),
            }
            let Ok(mut response) = response.await else {
                return no_response(false);
            };
            if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                let (to, upgraded) = cello_core::server::upgrade::UpgradeTo::new();
                response.extensions_mut().insert(to);
                tokio::spawn(async move {
                    let _ends = ends;
                    if let Ok(upgraded) = upgraded.await {
                        websocket::io::run_session(
                            upgraded, shared, in_tx, out_rx, settings, deflate,
                        )
                        .await;
                    }
                });
            } else {
                drop(ends);
            }
            response
        })
    }

    /// A sync handler runs right here, on the I/O thread, holding the GIL:
    /// no hand-over to the event-loop thread and no wake-up, which is what
    /// makes it the cheapest path (docs/handlers.md has the measurements).
    fn call_sync(
        &self,
        route: Arc<Route>,
        head: Box<RequestHead>,
        incoming: RequestBody,
        head_only: bool,
        limit: usize,
    ) -> ResponseFuture {
        let handler_timeout = self.handler_timeout;
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
            let body = match read_first(incoming, lazy, spools(&head.headers), limit, body_timeout)
                .await
            {
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
        incoming: RequestBody,
        head_only: bool,
        limit: usize,
    ) -> ResponseFuture {
        let handoff = self.handoff();
        let queue = self.queue.clone();
        let runner = self.runner.clone();
        let link = self.link.clone();
        let runtime = self.runtime.clone();
        let handler_timeout = self.handler_timeout;
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
                match read_first(incoming, lazy, spools(&head.headers), limit, body_timeout).await {
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

/// Ends a WebSocket session for `receive()` when dropped (1006 unless it
/// ended otherwise first).
struct EndsSession(Arc<websocket::io::WsShared>);

impl Drop for EndsSession {
    fn drop(&mut self) {
        self.0.end(websocket::io::ABNORMAL, String::new());
    }
}

/// The app to call for an upgrade and its `websocket` scope: a mount's app
/// sees the path under its prefix as `root_path` (and its lifespan state),
/// as for HTTP.
fn websocket_scope<'py>(
    py: Python<'py>,
    head: &RequestHead,
    mount: Option<&Route>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, pyo3::types::PyDict>)> {
    let mount = mount.and_then(|route| route.mount.as_ref());
    let (raw_path, path, root_path) = match mount {
        Some(mount) => mount.scope_paths(head),
        None => (head.raw_path().to_owned(), head.path.clone(), String::new()),
    };
    let request = cello_asgi::HostedRequest {
        method: &head.method,
        version: head.version,
        raw_path: &raw_path,
        path: &path,
        query: &head.query,
        headers: &head.headers,
        client: head.client,
        server: head.server,
        scheme: head.scheme,
        root_path: &root_path,
    };
    let state = mount.map(|m| m.state.bind(py).clone());
    let scope = cello_asgi::websocket_scope(py, &request, state.as_ref())?;
    crate::types::tls::add_to_scope(&scope, head.tls.as_deref())?;
    let app = match mount {
        Some(mount) => mount.app.bind(py).clone(),
        None => py.None().into_bound(py),
    };
    Ok((app, scope))
}

/// Starts `job` now when this thread runs the event loop, else queues it.
pub(crate) fn start_or_queue(
    runner: &Arc<Runner>,
    link: Option<&LoopLink>,
    queue: &Queue,
    job: Job,
) {
    match link {
        Some(link) if link.on_loop_thread() => Python::attach(|py| {
            let timed = link.debug_clock().and_then(|t| match &job.endpoint {
                Endpoint::Handler(route) => Some((t, route.task_name.clone_ref(py))),
                Endpoint::Refusal(_) => None,
            });
            queue::start_job(py, runner, job);
            link.after_python(py, timed.as_ref().map(|(t, name)| (*t, name)));
        }),
        _ => queue.push(Work::Request(job)),
    }
}

/// How a sync handler answered.
pub(crate) enum Inline {
    Now(Box<http::Response<Body>>),
    /// An async exception handler is finishing the request on the event-loop
    /// thread; the path is for the 504 should it take too long.
    Later(oneshot::Receiver<NativeReply>, String),
}

/// Calls a sync handler on this thread, holding the GIL for the call.
pub(crate) fn run_sync(
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
pub(crate) async fn reply_within(
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

pub(crate) fn handler_timed_out(
    limit: Duration,
    path: String,
    head_only: bool,
) -> http::Response<Body> {
    let problem = Problem::new(504)
        .with_detail(format!(
            "the handler did not respond within {:.3}s",
            limit.as_secs_f64()
        ))
        .with_instance(path);
    problem_response(&problem, head_only)
}

pub(crate) fn no_response(head_only: bool) -> http::Response<Body> {
    problem_response(
        &Problem::new(500).with_detail("no response was produced"),
        head_only,
    )
}

/// What a request's future needs to hand work to the event-loop thread.
#[derive(Clone)]
pub(crate) struct Handoff {
    runner: Arc<Runner>,
    link: Option<Arc<LoopLink>>,
    queue: Arc<Queue>,
    handler_timeout: Option<Duration>,
}

impl Handoff {
    fn needs_python(&self, refusal: &Refusal) -> bool {
        self.runner.refusal_needs_python(refusal.status)
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

/// The response the Python side produced, after discarding any body it left
/// unread; a 500 if it produced none.
pub(crate) async fn answer(
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
