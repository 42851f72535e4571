//! The request pipeline on the Python thread: call the handler, await it if
//! it is a coroutine, map exceptions, convert the result, deliver it.
//!
//! Doors only create the `Request` and say how to deliver (`Completion`);
//! everything that shapes a response happens here, once.

pub(crate) mod app;
pub(crate) mod drive;
pub(crate) mod errors;
pub(crate) mod queue;
pub(crate) mod routing;
pub(crate) mod streaming;

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cello_core::server::Body;
use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyString, PyTuple};
use tokio::sync::{mpsc, oneshot};

use crate::bridge::eager::TaskStarter;
use crate::ffi::capi;
use crate::ffi::support::support;
use crate::pipeline::app::{AppCore, Route};
use crate::pipeline::queue::{NativeReply, Queue, Work};
use crate::pipeline::routing::Refusal;
use crate::pipeline::streaming::StreamSink;
use crate::types::after_response::{AfterResponse, Callbacks};
use crate::types::body::BodyState;
use crate::types::convert::{finalize, finalize_for_hyper, to_http, to_parts};
use crate::types::forms::release_uploads;
use crate::types::request::{Request, RequestHead};
use crate::types::response::{FileChunks, Payload, Response, ResponseParts};

pub use drive::{CoroutineEnded, Drive, Ending, Pending};
use errors::{handle_exception, internal_error, log_error};

/// Everything the pipeline needs from the event loop it runs on.
pub struct Runner {
    pub app: Arc<AppCore>,
    /// From `cello._support.eager_starter(loop)`: starts a Task, stepping it at once.
    pub start_task: TaskStarter,
    pub event_loop: Py<PyAny>,
    /// The native server's I/O side; `None` for the ASGI door.
    pub native: Option<NativeIo>,
    /// The app's Python middleware runner, as it was when this door opened.
    pub python_middleware: Option<Py<PyAny>>,
}

/// What answers a routed request: a handler, or one of the framework's refusals.
pub enum Endpoint {
    Handler(Arc<Route>),
    Refusal(Box<Refusal>),
}

/// What the native server adds: the I/O runtime, and the queue to the
/// event-loop thread for what must run there.
pub struct NativeIo {
    pub runtime: tokio::runtime::Handle,
    pub queue: Arc<Queue>,
    /// Sync handlers run on I/O threads; Tasks can only start on this one.
    pub loop_thread: std::thread::ThreadId,
    /// Set when the runtime runs inside the event loop's waits.
    pub link: Option<Arc<crate::bridge::driver::LoopLink>>,
    /// A finished sync request's object that nobody else held, emptied,
    /// for the next sync request to reuse (see `new_request`).
    pub spare_request: Mutex<Option<Py<Request>>>,
}

impl NativeIo {
    /// A `Request` object for a sync handler: the spare one if there is one,
    /// refilled, else a new one. Reuse skips CPython's object creation and
    /// teardown, which cost about as much as the handler call itself.
    pub fn new_request<'py>(
        &self,
        py: Python<'py>,
        head: Box<RequestHead>,
        body: BodyState,
    ) -> PyResult<Bound<'py, Request>> {
        let spare = self
            .spare_request
            .try_lock()
            .ok()
            .and_then(|mut s| s.take());
        if let Some(spare) = spare.map(|s| s.into_bound(py)) {
            if let Ok(mut slot) = spare.try_borrow_mut() {
                slot.refill(py, head, body);
                drop(slot);
                return Ok(spare);
            }
        }
        Bound::new(py, Request::new(head, body))
    }

    /// Keeps `request` as the spare if nothing else refers to it: not the
    /// handler's code, a task, a stream or a traceback. Whatever it carried
    /// is released here, as it would be if the object died.
    pub fn recycle(&self, request: Bound<'_, Request>) {
        // SAFETY: `request` is a live object; reading its count needs the GIL,
        // which the `Bound` proves is held.
        if unsafe { pyo3::ffi::Py_REFCNT(request.as_ptr()) } != 1 {
            return;
        }
        let Ok(mut spare) = self.spare_request.try_lock() else {
            return;
        };
        if spare.is_some() {
            return;
        }
        if let Ok(mut slot) = request.try_borrow_mut() {
            slot.clear();
            drop(slot);
            *spare = Some(request.unbind());
        }
    }
}

impl Runner {
    /// Whether a refusal with `status` must go through Python: an exception
    /// handler claims it, or Python middleware must see it.
    pub fn refusal_needs_python(&self, status: u16) -> bool {
        self.app
            .refusal_needs_python(status, self.python_middleware.is_some())
    }

    /// The queue to the event-loop thread when called from any other thread.
    fn off_loop(&self) -> Option<&Queue> {
        let io = self.native.as_ref()?;
        (std::thread::current().id() != io.loop_thread).then_some(&*io.queue)
    }
}

/// How the finished response leaves.
pub enum Completion {
    /// Door 1: hand the response to the hyper connection.
    Native {
        reply: oneshot::Sender<NativeReply>,
        head: bool,
    },
    /// Door 1, a sync handler run on its connection's own thread: the
    /// response comes back up the call as `Answer::Here`, with no channel.
    Inline { head: bool },
    /// Door 2: resolve an asyncio future with `(status, headers, body, stream)`.
    Asgi { future: Py<PyAny>, head: bool },
    /// A Python middleware's `call_next`: resolve an asyncio future with the
    /// `Response`, which goes on through the middleware and then its door.
    Middleware { future: Py<PyAny> },
}

/// Cancels `task` when `awaited`, the future an ASGI call (or a Python
/// middleware) awaits for its response, is cancelled: under an ASGI server a
/// cancelled request cancels its handler, as a Starlette endpoint would be.
fn cancel_with(py: Python<'_>, awaited: &Bound<'_, PyAny>, task: &Bound<'_, PyAny>) {
    if task
        .call_method0(intern!(py, "done"))
        .and_then(|d| d.is_truthy())
        .unwrap_or(true)
    {
        return;
    }
    let canceller = CancelTask {
        task: task.clone().unbind(),
    };
    let added = Py::new(py, canceller)
        .and_then(|c| awaited.call_method1(intern!(py, "add_done_callback"), (c,)));
    if let Err(e) = added {
        e.print(py);
    }
}

/// A done callback: cancels its Task when the future it is on was cancelled.
#[pyclass(module = "cello._cello", frozen)]
pub struct CancelTask {
    task: Py<PyAny>,
}

#[pymethods]
impl CancelTask {
    fn __call__(&self, py: Python<'_>, future: &Bound<'_, PyAny>) -> PyResult<()> {
        if future.call_method0(intern!(py, "cancelled"))?.is_truthy()? {
            self.task.bind(py).call_method0(intern!(py, "cancel"))?;
        }
        Ok(())
    }
}

impl Completion {
    /// The future a door-2 caller or a Python middleware awaits, if any.
    fn awaited_future(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        match self {
            Completion::Asgi { future, .. } | Completion::Middleware { future } => {
                Some(future.clone_ref(py))
            }
            _ => None,
        }
    }

    /// A completion that can be kept for later: an `Inline` one turns into a
    /// channel, and the answer says where its response will arrive.
    fn deferred(self) -> (Completion, Answer) {
        match self {
            Completion::Inline { head } => {
                let (reply, response) = oneshot::channel();
                (Completion::Native { reply, head }, Answer::Later(response))
            }
            other => (other, Answer::Delivered),
        }
    }
}

/// Where a pipeline's response went. Only an `Inline` completion gives
/// anything but `Delivered`.
#[must_use]
pub enum Answer {
    /// Through the completion (or nowhere, if its connection was gone).
    Delivered,
    /// The response, for the caller that ran the pipeline inline.
    Here(NativeReply),
    /// The pipeline goes on later (an async exception handler); the
    /// response arrives here.
    Later(oneshot::Receiver<NativeReply>),
}

impl Answer {
    /// For a completion other than `Inline`, which delivers by itself.
    pub fn delivered(self) {
        debug_assert!(matches!(self, Answer::Delivered));
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Handler,
    ExceptionHandler,
}

/// Runs `endpoint` for `request`, inside the Python middleware if the app
/// has any, and delivers the response.
pub fn run(
    py: Python<'_>,
    runner: &Arc<Runner>,
    endpoint: Endpoint,
    request: Bound<'_, Request>,
    completion: Completion,
) -> Answer {
    let Some(middleware) = &runner.python_middleware else {
        return run_endpoint(py, runner, &endpoint, request, completion);
    };
    let task_name = match &endpoint {
        Endpoint::Handler(route) => Some(route.task_name.clone_ref(py)),
        Endpoint::Refusal(_) => None,
    };
    let call_next = CallNext {
        runner: runner.clone(),
        endpoint: Mutex::new(Some(endpoint)),
    };
    let outcome = Py::new(py, call_next)
        .and_then(|call_next| middleware.bind(py).call1((&request, call_next)));
    settle(
        py,
        runner,
        &request,
        outcome,
        true,
        Stage::Handler,
        completion,
        task_name.as_ref().map(|n| n.bind(py)),
    )
}

fn run_endpoint(
    py: Python<'_>,
    runner: &Arc<Runner>,
    endpoint: &Endpoint,
    request: Bound<'_, Request>,
    completion: Completion,
) -> Answer {
    match endpoint {
        Endpoint::Handler(route) => run_handler(py, runner, route, request, completion),
        Endpoint::Refusal(refusal) => refuse(py, runner, refusal, request, completion),
    }
}

/// A refusal raised as its `cello.exceptions` class, so exception handlers
/// and Python middleware see it as they see a handler's `HTTPException`.
fn refuse(
    py: Python<'_>,
    runner: &Arc<Runner>,
    refusal: &Refusal,
    request: Bound<'_, Request>,
    completion: Completion,
) -> Answer {
    let raised = (|| -> PyResult<PyErr> {
        let headers = pyo3::types::PyDict::new(py);
        for (name, value) in &refusal.headers {
            headers.set_item(name, value)?;
        }
        let exc =
            support(py)?
                .refusal
                .bind(py)
                .call1((refusal.status, &refusal.detail, headers))?;
        Ok(PyErr::from_value(exc))
    })();
    match raised {
        Ok(err) => handle_exception(py, runner, &request, err, completion),
        Err(e) => {
            log_error(py, &e, &request);
            let parts = refusal.parts(&request.borrow().head.path);
            deliver(py, runner, parts, completion, &request)
        }
    }
}

/// `call_next` of a Python middleware: runs the endpoint once and gives a
/// future of its `Response` (handler errors already mapped to responses).
#[pyclass(module = "cello._cello", frozen)]
pub struct CallNext {
    runner: Arc<Runner>,
    endpoint: Mutex<Option<Endpoint>>,
}

#[pymethods]
impl CallNext {
    /// The matched route's path template ("/users/{id}"), or None when a
    /// refusal (404, 405...) answers; read before the call (telemetry
    /// names its span with it).
    #[getter]
    fn route(&self, py: Python<'_>) -> Option<String> {
        let endpoint = self.endpoint.lock().unwrap_or_else(|p| p.into_inner());
        match endpoint.as_ref()? {
            // The task name is "METHOD template", made at registration.
            Endpoint::Handler(route) => route
                .task_name
                .bind(py)
                .to_str()
                .ok()
                .and_then(|name| name.split_once(' '))
                .map(|(_, template)| template.to_owned()),
            Endpoint::Refusal(_) => None,
        }
    }

    fn __call__(&self, py: Python<'_>, request: Bound<'_, Request>) -> PyResult<Py<PyAny>> {
        let endpoint = self
            .endpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("call_next() can be called only once"))?;
        let future = self
            .runner
            .event_loop
            .bind(py)
            .call_method0(intern!(py, "create_future"))?;
        let completion = Completion::Middleware {
            future: future.clone().unbind(),
        };
        run_endpoint(py, &self.runner, &endpoint, request, completion).delivered();
        Ok(future.unbind())
    }
}

/// Runs a handler with no Python middleware around it.
pub fn run_handler(
    py: Python<'_>,
    runner: &Arc<Runner>,
    route: &Route,
    request: Bound<'_, Request>,
    completion: Completion,
) -> Answer {
    let handler = route.handler.bind(py);
    let outcome = if route.is_async || runner.native.is_none() {
        capi::call(handler, &[request.as_any()])
    } else {
        // A sync handler on Cello's server runs in a copy of the context, as
        // a Task would, so context variables it sets do not leak into the
        // requests after it. (Under an ASGI server, the server's per-request
        // task already isolates it.)
        capi::call_in_copied_context(handler, &[request.as_any()])
    };
    if route.is_async && !route.suspends {
        let outcome = outcome.and_then(|coro| run_through(py, &coro));
        return finish(py, runner, &request, outcome, Stage::Handler, completion);
    }
    settle(
        py,
        runner,
        &request,
        outcome,
        route.is_async,
        Stage::Handler,
        completion,
        Some(route.task_name.bind(py)),
    )
}

/// Runs a coroutine that cannot suspend (its code has no `await`, `async
/// with` or `async for`) to its end in one step, in a copy of the context as
/// a Task would: a Task costs more than such a handler does.
fn run_through<'py>(py: Python<'py>, coro: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    static STEP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let step = STEP.get_or_try_init(py, || {
        // Leaked once: a C function's definition must outlive the function.
        let definition = Box::leak(Box::new(pyo3::ffi::PyMethodDef {
            ml_name: c"step_to_end".as_ptr(),
            ml_meth: pyo3::ffi::PyMethodDefPointer {
                PyCFunction: step_to_end,
            },
            ml_flags: pyo3::ffi::METH_O,
            ml_doc: std::ptr::null(),
        }));
        // SAFETY: the definition is valid and lives forever; the result is a
        // new reference or NULL with an exception set.
        unsafe {
            Bound::from_owned_ptr_or_err(
                py,
                pyo3::ffi::PyCFunction_NewEx(
                    definition,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                ),
            )
        }
        .map(Bound::unbind)
    })?;
    capi::call_in_copied_context(step.bind(py), &[coro])
}

/// The one step of `run_through`, as a plain one-argument C function: it
/// runs for every `async def` request that cannot suspend, and a pyo3
/// function's argument parsing and guards cost more than the send itself.
/// `PyIter_Send` hands back the return value without raising StopIteration.
unsafe extern "C" fn step_to_end(
    _module: *mut pyo3::ffi::PyObject,
    coro: *mut pyo3::ffi::PyObject,
) -> *mut pyo3::ffi::PyObject {
    let mut result: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
    // SAFETY: Python calls this with the GIL held and `coro` a live object;
    // `result` receives a new reference (or NULL with an exception set).
    match unsafe { pyo3::ffi::PyIter_Send(coro, pyo3::ffi::Py_None(), &mut result) } {
        pyo3::ffi::PySendResult::PYGEN_RETURN => result,
        pyo3::ffi::PySendResult::PYGEN_ERROR => std::ptr::null_mut(),
        pyo3::ffi::PySendResult::PYGEN_NEXT => {
            // SAFETY: as above; `result` is the yielded value, a new reference.
            let py = unsafe { Python::assume_attached() };
            drop(unsafe { Bound::from_owned_ptr(py, result) });
            let coro = unsafe { Bound::from_borrowed_ptr(py, coro) };
            let _ = coro.call_method0(intern!(py, "close"));
            PyRuntimeError::new_err("a handler without await suspended; it cannot be resumed")
                .restore(py);
            std::ptr::null_mut()
        }
    }
}

/// Awaits `outcome` if it is a coroutine, in a Task named `task_name`
/// (None: asyncio's default), then finishes.
#[allow(clippy::too_many_arguments)]
fn settle(
    py: Python<'_>,
    runner: &Arc<Runner>,
    request: &Bound<'_, Request>,
    outcome: PyResult<Bound<'_, PyAny>>,
    is_async: bool,
    stage: Stage,
    completion: Completion,
    task_name: Option<&Bound<'_, PyString>>,
) -> Answer {
    let outcome = match outcome {
        Ok(coro) if is_async => {
            let awaited = completion.awaited_future(py);
            let (completion, answer) = completion.deferred();
            if let Some(queue) = runner.off_loop() {
                // A sync handler on an I/O thread whose exception handler is
                // async: Tasks start on the event-loop thread only.
                queue.push(Work::Settle {
                    coro: coro.unbind(),
                    request: request.clone().unbind(),
                    stage,
                    completion,
                });
                return answer;
            }
            let drive = Drive::new(
                coro,
                Ending::Pipeline(Pending {
                    runner: runner.clone(),
                    request: request.clone().unbind(),
                    stage,
                    completion,
                }),
            );
            let drive = match Bound::new(py, drive) {
                Ok(drive) => drive,
                // The completion went down with the Drive: the connection
                // sees its answer dropped and replies 500.
                Err(e) => {
                    log_error(py, &e, request);
                    return answer;
                }
            };
            let started = runner.start_task.start(py, drive.as_any(), task_name);
            if let (Ok(task), Some(awaited)) = (&started, awaited) {
                cancel_with(py, awaited.bind(py), task);
            }
            if let Err(e) = started {
                match drive.get().take() {
                    Some(Ending::Pipeline(p)) => {
                        // Deferred above: this answer goes through the channel.
                        finish(py, runner, request, Err(e), stage, p.completion).delivered();
                    }
                    _ => log_error(py, &e, request),
                }
            }
            return answer;
        }
        other => other,
    };
    finish(py, runner, request, outcome, stage, completion)
}

/// Continues, on the event-loop thread, a pipeline an I/O thread handed over.
pub fn resume(
    py: Python<'_>,
    runner: &Arc<Runner>,
    request: &Bound<'_, Request>,
    coro: Bound<'_, PyAny>,
    stage: Stage,
    completion: Completion,
) -> Answer {
    settle(py, runner, request, Ok(coro), true, stage, completion, None)
}

/// Starts a response stream's pump as a Task (on the event-loop thread).
pub fn start_pump(
    py: Python<'_>,
    runner: &Runner,
    pump: Bound<'_, PyAny>,
    request: &Bound<'_, Request>,
) {
    if let Err(e) = runner.start_task.start(py, &pump, None) {
        log_error(py, &e, request);
    }
}

fn finish(
    py: Python<'_>,
    runner: &Arc<Runner>,
    request: &Bound<'_, Request>,
    outcome: PyResult<Bound<'_, PyAny>>,
    stage: Stage,
    completion: Completion,
) -> Answer {
    let err = match outcome.and_then(|v| {
        adopt_background(py, &v, request)?;
        to_parts(&v)
    }) {
        Ok(parts) => return deliver(py, runner, parts, completion, request),
        Err(e) => e,
    };
    match stage {
        Stage::Handler => handle_exception(py, runner, request, err, completion),
        Stage::ExceptionHandler => {
            let parts = internal_error(py, runner, request, &err);
            deliver(py, runner, parts, completion, request)
        }
    }
}

/// A returned `Response` (alone or first in a `(response, status)` tuple)
/// with a `background` hands it to the request's after-response callbacks.
fn adopt_background(
    py: Python<'_>,
    value: &Bound<'_, PyAny>,
    request: &Bound<'_, Request>,
) -> PyResult<()> {
    let response = match value.cast::<Response>() {
        Ok(response) => response.clone(),
        Err(_) => match value.cast_exact::<PyTuple>() {
            Ok(tuple) if (2..=3).contains(&tuple.len()) => {
                match tuple.get_item(0)?.cast_into::<Response>() {
                    Ok(response) => response,
                    Err(_) => return Ok(()),
                }
            }
            _ => return Ok(()),
        },
    };
    let background = response
        .borrow()
        .background
        .as_ref()
        .map(|b| b.clone_ref(py));
    match background {
        Some(background) => request
            .borrow()
            .add_after_response(py, background.into_bound(py)),
        None => Ok(()),
    }
}

/// Sends the response through its door.
pub(crate) fn deliver(
    py: Python<'_>,
    runner: &Arc<Runner>,
    mut parts: ResponseParts,
    completion: Completion,
    request: &Bound<'_, Request>,
) -> Answer {
    if !matches!(completion, Completion::Middleware { .. }) {
        // The request is over for everything but a Python middleware still
        // running around it: its uploaded files go now.
        release_uploads(py, &request.borrow().uploads);
    }
    let (reply, head) = match completion {
        Completion::Native { reply, head } => (Some(reply), head),
        Completion::Inline { head } => (None, head),
        Completion::Middleware { future } => {
            let resolved = Py::new(py, Response::from_parts(parts)).and_then(|response| {
                let future = future.bind(py);
                if !future.call_method0(intern!(py, "done"))?.is_truthy()? {
                    future.call_method1(intern!(py, "set_result"), (response,))?;
                }
                Ok(())
            });
            if let Err(e) = resolved {
                log_error(py, &e, request);
            }
            return Answer::Delivered;
        }
        Completion::Asgi { future, head } => {
            finalize(&mut parts, head);
            let mut after = request.borrow().take_after_response();
            let resolved = (|| {
                let future = future.bind(py);
                if future.call_method0(intern!(py, "done"))?.is_truthy()? {
                    return Ok(()); // the ASGI call was cancelled meanwhile
                }
                let result = asgi_result(py, parts, &mut after, runner)?;
                future.call_method1(intern!(py, "set_result"), (result,))?;
                Ok::<_, PyErr>(())
            })();
            if let Err(e) = resolved {
                log_error(py, &e, request);
            }
            // Not handed to the adapter: no response will be sent, so the
            // callbacks run now.
            if let Some(after) = after {
                after.start(py, runner.event_loop.bind(py));
            }
            return Answer::Delivered;
        }
    };
    // Door 1: `reply` is the connection's channel, or None to hand the
    // response back to the caller.
    finalize_for_hyper(&mut parts, head);
    let whole = match std::mem::replace(&mut parts.payload, Payload::Bytes(Bytes::new())) {
        Payload::Bytes(body) => Body::full(body),
        Payload::File(slice) => Body::file(slice),
        Payload::Stream(source) => return stream_reply(py, runner, request, parts, reply, source),
    };
    let whole = after_body_dropped(py, runner, request, whole);
    let answer = NativeReply {
        response: Box::new(to_http(parts, whole)),
        unread: request.borrow().take_unread(),
    };
    match reply {
        Some(reply) => {
            send_reply(runner, reply, answer);
            Answer::Delivered
        }
        None => Answer::Here(answer),
    }
}

/// Door 1: the request's after-response callbacks start when hyper is done
/// with `body` (it sent the last byte, or the client left) and drops it.
fn after_body_dropped(
    py: Python<'_>,
    runner: &Runner,
    request: &Bound<'_, Request>,
    body: Body,
) -> Body {
    let Some(after) = request.borrow().take_after_response() else {
        return body;
    };
    let Some(io) = runner.native.as_ref() else {
        after.start(py, runner.event_loop.bind(py));
        return body;
    };
    let queue = io.queue.clone();
    let event_loop = runner.event_loop.clone_ref(py);
    body.on_drop(move || {
        queue.push(Work::call(move |py| after.start(py, event_loop.bind(py))));
    })
}

/// Door 1, a streamed body: the head goes out now, and a pump feeds the
/// body's chunks to the connection as the source yields them.
fn stream_reply(
    py: Python<'_>,
    runner: &Arc<Runner>,
    request: &Bound<'_, Request>,
    parts: ResponseParts,
    reply: Option<oneshot::Sender<NativeReply>>,
    source: Py<PyAny>,
) -> Answer {
    let (tx, rx) = mpsc::channel(16);
    let mut body = Body::channel(rx);
    if let Some((every, beat)) = heartbeat_of(source.bind(py)) {
        body = body.with_heartbeat(every, beat);
    }
    let body = after_body_dropped(py, runner, request, body);
    let answer = NativeReply {
        response: Box::new(to_http(parts, body)),
        unread: request.borrow().take_unread(),
    };
    let answered = match reply {
        Some(reply) => {
            if reply.send(answer).is_err() {
                // The connection is gone: no stream to pump into.
                return Answer::Delivered;
            }
            Answer::Delivered
        }
        None => Answer::Here(answer),
    };
    let sink = StreamSink::new(tx, runner.clone());
    let pump = Py::new(py, sink).and_then(|sink| support(py)?.pump.bind(py).call1((source, sink)));
    match (pump, runner.off_loop()) {
        (Ok(pump), None) => start_pump(py, runner, pump, request),
        (Ok(pump), Some(queue)) => queue.push(Work::Pump {
            pump: pump.unbind(),
            request: request.clone().unbind(),
        }),
        (Err(e), _) => log_error(py, &e, request),
    }
    answered
}

/// A stream's keepalive, `source.__cello_heartbeat__ = (seconds, bytes)`
/// (an event stream's comment): the server sends it while the source is
/// quiet, so no Python timer runs per stream.
fn heartbeat_of(source: &Bound<'_, PyAny>) -> Option<(std::time::Duration, Bytes)> {
    let py = source.py();
    let (every, beat): (f64, Vec<u8>) = source
        .getattr_opt(intern!(py, "__cello_heartbeat__"))
        .ok()??
        .extract()
        .ok()?;
    let every = std::time::Duration::try_from_secs_f64(every).ok()?;
    Some((every, Bytes::from(beat)))
}

/// Hands a native answer to its connection (see `LoopLink::reply`); false
/// if the connection is gone.
pub fn send_reply(
    runner: &Runner,
    reply: oneshot::Sender<NativeReply>,
    answer: NativeReply,
) -> bool {
    match runner.native.as_ref().and_then(|io| io.link.as_deref()) {
        Some(link) => link.reply(reply, answer),
        None => reply.send(answer).is_ok(),
    }
}

/// `(status, headers, body, stream, after)`: the response as the ASGI
/// adapter sends it; `after` (taken from `callbacks`) is None or the
/// `AfterResponse` to start once it is sent.
fn asgi_result<'py>(
    py: Python<'py>,
    parts: ResponseParts,
    callbacks: &mut Option<Box<Callbacks>>,
    runner: &Runner,
) -> PyResult<Bound<'py, PyTuple>> {
    let headers = cello_asgi::headers_to_asgi(py, &parts.headers)?;
    let (body, stream) = match parts.payload {
        Payload::Bytes(b) => (PyBytes::new(py, &b).into_any(), py.None().into_bound(py)),
        Payload::Stream(s) => (PyBytes::new(py, b"").into_any(), s.into_bound(py)),
        Payload::File(slice) => (
            PyBytes::new(py, b"").into_any(),
            Bound::new(py, FileChunks::new(slice))?.into_any(),
        ),
    };
    let after = match callbacks.take() {
        None => py.None().into_bound(py),
        Some(callbacks) => Bound::new(
            py,
            AfterResponse::new(callbacks, runner.event_loop.clone_ref(py)),
        )?
        .into_any(),
    };
    PyTuple::new(
        py,
        [
            parts.status.into_pyobject(py)?.into_any(),
            headers.into_any(),
            body,
            stream,
            after,
        ],
    )
}
