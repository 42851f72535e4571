//! Door 3: Cello's server hosting a foreign ASGI application.
//!
//! Each request under a mount prefix becomes one `app(scope, receive, send)`
//! call, run as a real asyncio Task on the worker's event loop. `receive`
//! streams the request body frame by frame from hyper and then waits for the
//! response to finish or the client to leave (`http.disconnect`); `send`
//! streams the response into hyper through a bounded channel, so a slow
//! client makes `send` wait instead of buffering without bound.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cello_core::http::problem::Problem;
use cello_core::server::{Body, Chunk};
use http_body_util::BodyExt;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};
use tokio::sync::{mpsc, oneshot};

use crate::ffi::support::{error, support, Ready};
use crate::pipeline::app::{Mount, Route};
use crate::pipeline::queue::{NativeReply, Work};
use crate::pipeline::{CoroutineEnded, Drive, Ending, Runner};
use crate::types::convert::{bytes_response, problem_parts};
use crate::types::request::RequestHead;

use super::io::{body_message, deliver_body, deliver_sent, disconnect_message};
pub(crate) use super::io::{GoneOnDrop, HostSignal};

enum Stage {
    /// Waiting for `http.response.start`.
    Idle,
    /// Start received; the head goes out with the first body message.
    Started {
        status: u16,
        headers: http::HeaderMap,
    },
    /// Head sent; chunks go into the channel.
    Streaming(mpsc::Sender<Chunk>),
    /// The response is complete on the wire (a bodyless response, or every
    /// declared byte sent) though the app said `more_body`: later body
    /// messages may only be empty.
    Sent,
    Done,
}

struct CallState {
    stage: Stage,
    reply: Option<oneshot::Sender<NativeReply>>,
    /// The app has asked for the body at least once.
    touched_body: bool,
    /// Body bytes still owed under the app's `Content-Length`; None when it
    /// declared none or the response has no body.
    owed: Option<u64>,
    /// A response to HEAD, or a 1xx/204/304: body bytes are dropped.
    bodyless: bool,
}

const LONGER: &str = "Response content longer than Content-Length";
const SHORTER: &str = "Response content shorter than Content-Length";

/// The length the app declared in `content-length`, read as strictly as a
/// client would: a value that is not all digits, or two that differ,
/// would let the client and the server disagree on where the body ends.
fn declared_length(headers: &http::HeaderMap) -> PyResult<Option<u64>> {
    let mut declared = None;
    for value in headers.get_all(http::header::CONTENT_LENGTH) {
        let bytes = value.as_bytes();
        let parsed = std::str::from_utf8(bytes)
            .ok()
            .map(|v| v.trim_matches([' ', '\t']))
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "invalid Content-Length response header {:?}",
                    String::from_utf8_lossy(bytes)
                ))
            })?;
        if declared.is_some_and(|d| d != parsed) {
            return Err(PyValueError::new_err(
                "conflicting Content-Length response headers",
            ));
        }
        declared = Some(parsed);
    }
    Ok(declared)
}

/// One hosted ASGI call; its bound `receive` and `send` go to the app.
#[pyclass(module = "cello._cello", frozen)]
pub struct HostCall {
    state: Mutex<CallState>,
    signal: Arc<HostSignal>,
    runner: Arc<Runner>,
    method: String,
    path: String,
}

impl HostCall {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn ready(&self, py: Python<'_>, value: Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        Ok(Ready::of(py, value)?.unbind())
    }

    fn new_future(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(self
            .runner
            .event_loop
            .bind(py)
            .call_method0(intern!(py, "create_future"))?
            .unbind())
    }

    fn io(&self) -> PyResult<&crate::pipeline::NativeIo> {
        self.runner
            .native
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("hosted ASGI apps need the native server"))
    }

    /// Sends the response head with the whole body, or (`whole` None) with a
    /// streaming body fed by the returned sender.
    fn send_head(
        &self,
        py: Python<'_>,
        state: &mut CallState,
        status: u16,
        headers: http::HeaderMap,
        whole: Option<Bytes>,
    ) -> PyResult<Option<mpsc::Sender<Chunk>>> {
        let parts = crate::types::response::ResponseParts {
            status,
            headers,
            payload: crate::types::response::Payload::Bytes(Bytes::new()),
        };
        let (body, tx) = match whole {
            Some(bytes) => (Body::full(bytes), None),
            None => {
                let (tx, rx) = mpsc::channel::<Chunk>(16);
                // When hyper is done with the body (sent, or the client
                // left), tell receive().
                let queue = self.io()?.queue.clone();
                let signal = self.signal.clone();
                let body = Body::channel(rx)
                    .on_drop(move || queue.push(Work::call(move |py| signal.finish(py))));
                (body, Some(tx))
            }
        };
        let response = Box::new(crate::types::convert::to_http(parts, body));
        // A body the app never started reading is discarded by the I/O side,
        // so the connection can serve the next request.
        let unread = if state.touched_body || self.signal.body_done.load(Ordering::Acquire) {
            None
        } else {
            self.signal.body_done.store(true, Ordering::Release);
            self.signal
                .incoming
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take()
        };
        if let Some(reply) = state.reply.take() {
            if !crate::pipeline::send_reply(&self.runner, reply, NativeReply { response, unread }) {
                self.signal.finish(py);
            }
        }
        Ok(tx)
    }

    /// The app finished (or failed) without completing its response.
    pub fn app_finished(&self, py: Python<'_>, failure: Option<PyErr>) {
        let mut state = self.lock();
        if let Some(err) = &failure {
            let exc = err.clone_ref(py).into_value(py);
            let logged = support(py).and_then(|s| {
                s.log_hosted_exception
                    .bind(py)
                    .call1((exc, &self.method, &self.path))
            });
            if logged.is_err() {
                err.print(py);
            }
        }
        match std::mem::replace(&mut state.stage, Stage::Done) {
            Stage::Idle | Stage::Started { .. } => {
                // Nothing was sent: answer 500 so the client is not left waiting.
                let detail = if failure.is_some() {
                    "the application raised an exception"
                } else {
                    "the application returned without sending a response"
                };
                let problem = Problem::new(500)
                    .with_detail(detail)
                    .with_instance(self.path.clone());
                if let Some(reply) = state.reply.take() {
                    let response = Box::new(bytes_response(
                        problem_parts(&problem),
                        self.method == "HEAD",
                    ));
                    let _ = reply.send(NativeReply {
                        response,
                        unread: self
                            .signal
                            .incoming
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .take(),
                    });
                }
            }
            Stage::Streaming(tx) => {
                // Raising, or returning, before the last body message: the
                // response is incomplete, so the connection is dropped rather
                // than the body ended as if it were whole.
                if let Ok(io) = self.io() {
                    crate::pipeline::streaming::abort_stream(&io.runtime, tx);
                }
            }
            Stage::Sent | Stage::Done => {}
        }
        drop(state);
        self.signal.finish(py);
    }
}

#[pymethods]
impl HostCall {
    /// ASGI `receive()`.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.lock().touched_body = true;
        let signal = &self.signal;
        if !signal.body_done.load(Ordering::Acquire) {
            if signal.reading.swap(true, Ordering::AcqRel) {
                return Err(PyRuntimeError::new_err(
                    "receive() called while another receive() is waiting for the body",
                ));
            }
            let incoming = signal
                .incoming
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .take();
            let Some(mut incoming) = incoming else {
                signal.reading.store(false, Ordering::Release);
                signal.body_done.store(true, Ordering::Release);
                return self.ready(py, body_message(py, b"", false)?);
            };
            let future = self.new_future(py)?;
            let resolve_with = future.clone_ref(py);
            let signal = signal.clone();
            let io = self.io()?;
            let queue = io.queue.clone();
            // Read the next data frame on the I/O side; the last says more_body=False.
            io.runtime.spawn(async move {
                let (data, more) = loop {
                    match incoming.frame().await {
                        Some(Ok(frame)) => match frame.into_data() {
                            Ok(data) if data.is_empty() => continue,
                            Ok(data) => break (data, !hyper::body::Body::is_end_stream(&incoming)),
                            Err(_) => continue, // trailers
                        },
                        Some(Err(_)) => {
                            // The client left mid-body.
                            signal.body_done.store(true, Ordering::Release);
                            signal.reading.store(false, Ordering::Release);
                            let gone = signal.clone();
                            queue.push(Work::call(move |py| {
                                gone.finish(py);
                                deliver_body(py, &resolve_with, Bytes::new(), false);
                            }));
                            return;
                        }
                        None => break (Bytes::new(), false),
                    }
                };
                if more {
                    *signal.incoming.lock().unwrap_or_else(|p| p.into_inner()) = Some(incoming);
                } else {
                    signal.body_done.store(true, Ordering::Release);
                }
                signal.reading.store(false, Ordering::Release);
                queue.push(Work::call(move |py| {
                    deliver_body(py, &resolve_with, data, more);
                }));
            });
            return Ok(future);
        }
        if signal.gone.load(Ordering::Acquire) {
            return self.ready(py, disconnect_message(py)?);
        }
        let future = self.new_future(py)?;
        signal
            .waiters
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(future.clone_ref(py));
        Ok(future)
    }

    /// ASGI `send(message)`.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let kind = message
            .get_item(intern!(py, "type"))?
            .ok_or_else(|| PyValueError::new_err("ASGI message without 'type'"))?;
        match kind.cast::<PyString>()?.to_str()? {
            "http.response.start" => self.start_response(py, message),
            "http.response.body" => self.send_body(py, message),
            other => Err(PyValueError::new_err(format!(
                "unexpected ASGI message type {other:?}"
            ))),
        }
    }
}

impl HostCall {
    fn start_response(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let mut state = self.lock();
        if !matches!(state.stage, Stage::Idle) {
            return Err(PyRuntimeError::new_err("http.response.start sent twice"));
        }
        let status: u16 = message
            .get_item(intern!(py, "status"))?
            .ok_or_else(|| PyValueError::new_err("http.response.start without 'status'"))?
            .extract()?;
        let headers = response_headers(py, message)?;
        let bodyless = self.method == "HEAD" || status < 200 || status == 204 || status == 304;
        state.owed = if bodyless {
            None
        } else {
            declared_length(&headers)?
        };
        state.bodyless = bodyless;
        state.stage = Stage::Started { status, headers };
        self.ready(py, py.None().into_bound(py))
    }

    fn send_body(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let body: Vec<u8> = match message.get_item(intern!(py, "body"))? {
            Some(b) if !b.is_none() => b.extract()?,
            _ => Vec::new(),
        };
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(m) => m.is_truthy()?,
            None => false,
        };
        let mut state = self.lock();
        match state.stage {
            Stage::Idle => {
                return Err(PyRuntimeError::new_err(
                    "http.response.body before http.response.start",
                ))
            }
            Stage::Done => {
                return Err(PyRuntimeError::new_err(
                    "http.response.body after the response finished",
                ))
            }
            Stage::Sent => {
                if !body.is_empty() && !state.bodyless {
                    return Err(PyRuntimeError::new_err(LONGER));
                }
                if !more {
                    state.stage = Stage::Done;
                }
                return self.ready(py, py.None().into_bound(py));
            }
            Stage::Started { .. } | Stage::Streaming(_) => {}
        }
        if self.signal.gone.load(Ordering::Acquire) {
            return Err(error(
                py,
                &support(py)?.client_disconnected,
                "client disconnected",
            ));
        }
        let body = if state.bodyless { Vec::new() } else { body };
        if let Some(owed) = state.owed {
            let len = body.len() as u64;
            if len > owed || (!more && len < owed) {
                return self.break_length(py, state, len > owed);
            }
            state.owed = Some(owed - len);
        }
        // The body is over on the wire once all declared bytes are out (hyper
        // stops reading the stream there) or when there is none to send.
        let ends = !more || state.owed == Some(0) || state.bodyless;
        let after = if more { Stage::Sent } else { Stage::Done };
        let tx = match std::mem::replace(&mut state.stage, Stage::Done) {
            // The whole body in one message: no channel to stream it.
            Stage::Started { status, headers } if ends => {
                self.send_head(py, &mut state, status, headers, Some(body.into()))?;
                state.stage = after;
                drop(state);
                self.signal.finish(py);
                return self.ready(py, py.None().into_bound(py));
            }
            Stage::Started { status, headers } => self
                .send_head(py, &mut state, status, headers, None)?
                .ok_or_else(|| PyRuntimeError::new_err("no stream for the body"))?,
            Stage::Streaming(tx) => tx,
            Stage::Idle | Stage::Sent | Stage::Done => unreachable!("checked above"),
        };
        let pending = match self.push_chunk(py, &tx, body) {
            Ok(pending) => pending,
            Err(gone) => {
                drop(state);
                self.signal.finish(py);
                return Err(gone);
            }
        };
        if ends {
            drop(tx);
            state.stage = after;
            drop(state);
            self.signal.finish(py);
        } else {
            state.stage = Stage::Streaming(tx);
        }
        match pending {
            Some(future) => Ok(future),
            None => self.ready(py, py.None().into_bound(py)),
        }
    }

    /// Queues a chunk for hyper: None when it went in at once, else the
    /// future `send` returns; an error when the client is gone.
    fn push_chunk(
        &self,
        py: Python<'_>,
        tx: &mpsc::Sender<Chunk>,
        body: Vec<u8>,
    ) -> PyResult<Option<Py<PyAny>>> {
        if body.is_empty() {
            return Ok(None);
        }
        match tx.try_send(Ok(Bytes::from(body))) {
            Ok(()) => Ok(None),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(error(
                py,
                &support(py)?.client_disconnected,
                "client disconnected",
            )),
            Err(mpsc::error::TrySendError::Full(chunk)) => {
                Ok(Some(self.send_when_room(py, tx.clone(), chunk)?))
            }
        }
    }

    /// A future for `send` that resolves once the chunk is in the channel,
    /// or fails with `ClientDisconnected` if the client leaves first: a
    /// spec 2.4 app (Starlette's StreamingResponse) stops on that error alone.
    fn send_when_room(
        &self,
        py: Python<'_>,
        sender: mpsc::Sender<Chunk>,
        chunk: Chunk,
    ) -> PyResult<Py<PyAny>> {
        let future = self.new_future(py)?;
        let resolve_with = future.clone_ref(py);
        let io = self.io()?;
        let queue = io.queue.clone();
        io.runtime.spawn(async move {
            let sent = sender.send(chunk).await.is_ok();
            queue.push(Work::call(move |py| deliver_sent(py, &resolve_with, sent)));
        });
        Ok(future)
    }

    /// The body does not match the declared `Content-Length`. Nothing more
    /// is sent and the connection is dropped: the client sees an incomplete
    /// response, and never reads the surplus as the next response on a
    /// kept-alive connection.
    fn break_length(
        &self,
        py: Python<'_>,
        mut state: std::sync::MutexGuard<'_, CallState>,
        longer: bool,
    ) -> PyResult<Py<PyAny>> {
        let tx = match std::mem::replace(&mut state.stage, Stage::Done) {
            Stage::Started { status, headers } => {
                self.send_head(py, &mut state, status, headers, None)?
            }
            Stage::Streaming(tx) => Some(tx),
            Stage::Idle | Stage::Sent | Stage::Done => None,
        };
        if let (Some(tx), Ok(io)) = (tx, self.io()) {
            crate::pipeline::streaming::abort_stream(&io.runtime, tx);
        }
        drop(state);
        self.signal.finish(py);
        Err(PyRuntimeError::new_err(if longer {
            LONGER
        } else {
            SHORTER
        }))
    }
}

/// The headers of `http.response.start`, each pair checked against header
/// injection.
pub(crate) fn response_headers(
    py: Python<'_>,
    message: &Bound<'_, PyDict>,
) -> PyResult<http::HeaderMap> {
    let mut headers = http::HeaderMap::new();
    let Some(list) = message
        .get_item(intern!(py, "headers"))?
        .filter(|h| !h.is_none())
    else {
        return Ok(headers);
    };
    for pair in list.try_iter()? {
        let pair = pair?;
        // The usual shape, a tuple of two bytes, is read in place; anything
        // else goes through extraction.
        let (name, value) = match pair.cast::<PyTuple>() {
            Ok(t) if t.len() == 2 => (t.get_item(0)?, t.get_item(1)?),
            _ => {
                let mut items = pair.try_iter()?;
                match (items.next(), items.next(), items.next()) {
                    (Some(name), Some(value), None) => (name?, value?),
                    _ => {
                        return Err(PyValueError::new_err(
                            "each ASGI header must be a [name, value] pair",
                        ))
                    }
                }
            }
        };
        let (name, value) = crate::conversion::headers::checked_header_bytes(
            &header_bytes(&name)?,
            &header_bytes(&value)?,
        )?;
        headers.append(name, value);
    }
    Ok(headers)
}

/// The bytes of an ASGI header name or value (bytes, or anything that
/// converts to them), borrowed when they are bytes already.
fn header_bytes<'a>(item: &'a Bound<'_, PyAny>) -> PyResult<std::borrow::Cow<'a, [u8]>> {
    match item.cast::<PyBytes>() {
        Ok(bytes) => Ok(std::borrow::Cow::Borrowed(bytes.as_bytes())),
        Err(_) => Ok(std::borrow::Cow::Owned(item.extract::<Vec<u8>>()?)),
    }
}

/// Starts `mount.app(scope, receive, send)` for a routed request.
pub fn start(
    py: Python<'_>,
    runner: &Arc<Runner>,
    route: &Route,
    mount: &Mount,
    head: Box<RequestHead>,
    signal: Arc<HostSignal>,
    reply: oneshot::Sender<NativeReply>,
) -> PyResult<()> {
    let call = Bound::new(
        py,
        HostCall {
            state: Mutex::new(CallState {
                stage: Stage::Idle,
                reply: Some(reply),
                touched_body: false,
                owed: None,
                bodyless: false,
            }),
            signal,
            runner: runner.clone(),
            method: head.method.to_string(),
            path: head.path.clone(),
        },
    )?;
    let (raw_path, path, root_path) = mount.scope_paths(&head);
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
    let scope = cello_asgi::http_scope(py, &request, mount.state.bind(py))?;
    crate::types::tls::add_to_scope(&scope, head.tls.as_deref())?;
    run_app(
        py,
        runner,
        &call,
        mount.app.bind(py),
        scope,
        Some(route.task_name.bind(py)),
    )
}

/// A hosted ASGI call: the object whose `receive` and `send` the app gets,
/// told once when the app has returned or raised.
pub(crate) trait AppCall:
    pyo3::PyClass<Frozen = pyo3::pyclass::boolean_struct::True> + Sync
{
    fn app_finished(&self, py: Python<'_>, failure: Option<PyErr>);
}

impl AppCall for HostCall {
    fn app_finished(&self, py: Python<'_>, failure: Option<PyErr>) {
        HostCall::app_finished(self, py, failure);
    }
}

/// Runs `app(scope, call.receive, call.send)` as a Task on the event loop;
/// `call` hears when it ends (a failure to call or start it included).
pub(crate) fn run_app<C: AppCall>(
    py: Python<'_>,
    runner: &Arc<Runner>,
    call: &Bound<'_, C>,
    app: &Bound<'_, PyAny>,
    scope: Bound<'_, pyo3::types::PyDict>,
    task_name: Option<&Bound<'_, PyString>>,
) -> PyResult<()> {
    let receive = call.as_any().getattr(intern!(py, "receive"))?;
    let send = call.as_any().getattr(intern!(py, "send"))?;
    let coro = match app.call1((scope, receive, send)) {
        Ok(coro) => coro,
        Err(e) => {
            call.get().app_finished(py, Some(e));
            return Ok(());
        }
    };
    let ending = Ending::Notify(Box::new(AppEnded(call.clone().unbind())));
    let drive = Bound::new(py, Drive::new(coro, ending))?;
    if let Err(e) = runner.start_task.start(py, drive.as_any(), task_name) {
        if drive.get().take().is_some() {
            call.get().app_finished(py, Some(e));
        }
    }
    Ok(())
}

/// Tells a hosted call that its app returned or raised.
struct AppEnded<C: AppCall>(Py<C>);

impl<C: AppCall> CoroutineEnded for AppEnded<C> {
    fn ended(&self, py: Python<'_>, failure: Option<PyErr>) {
        self.0.get().app_finished(py, failure);
    }
}

#[cfg(test)]
mod tests {
    use super::declared_length;

    fn headers(values: &[&str]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for value in values {
            map.append(
                http::header::CONTENT_LENGTH,
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn a_declared_length_is_read_strictly() {
        assert_eq!(declared_length(&headers(&[])).unwrap(), None);
        assert_eq!(declared_length(&headers(&["12"])).unwrap(), Some(12));
        assert_eq!(declared_length(&headers(&["5", "5"])).unwrap(), Some(5));
        assert_eq!(declared_length(&headers(&[" 7\t"])).unwrap(), Some(7));
        // Forms a lenient parser takes but a client may read otherwise.
        for bad in [
            &["+5"][..],
            &["5, 5"],
            &["0x5"],
            &[""],
            &["-1"],
            &["5", "6"],
        ] {
            assert!(declared_length(&headers(bad)).is_err(), "{bad:?}");
        }
    }
}
