//! The ASGI `websocket` protocol between the native server and a Python
//! app: a hosted app under a mount (door 3), or Cello's own `App` for its
//! `@app.websocket` routes (door 1), called as `app(scope, receive, send)`.
//!
//! Before the app accepts, its messages shape the HTTP answer to the
//! upgrade request: `websocket.accept` gives the 101, `websocket.close` a
//! 403, `websocket.http.response.*` a denial response of its own; an app
//! that returns without any gets 403 (500 if it raised). After the accept,
//! messages go through the session task's bounded channels (`io.rs`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cello_core::http::problem::Problem;
use cello_core::server::Body;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};
use tokio::sync::{mpsc, oneshot};

use super::io::{Inbound, Outbound, WsShared, ABNORMAL, INTERNAL_ERROR, NORMAL};
use crate::doors::mounts::io::resolve;
use crate::doors::mounts::serve::{response_headers, run_app, AppCall};
use crate::ffi::support::{error, support, Ready};
use crate::pipeline::Runner;
use crate::types::convert::problem_response;

/// Whether a request asks for a WebSocket: `Upgrade: websocket` (any case)
/// on a GET, whatever else the handshake lacks (`handshake_refusal`).
pub(crate) fn wants_websocket(method: &http::Method, headers: &http::HeaderMap) -> bool {
    *method == http::Method::GET
        && headers
            .get_all(http::header::UPGRADE)
            .iter()
            .any(|v| has_token(v.as_bytes(), b"websocket"))
}

fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// What is wrong with a WebSocket handshake (RFC 6455 §4.2.1), as the
/// status and detail of the refusal; None when it is valid.
pub(crate) fn handshake_refusal(
    version: http::Version,
    headers: &http::HeaderMap,
) -> Option<(u16, &'static str)> {
    if version != http::Version::HTTP_11 {
        return Some((400, "WebSocket upgrades need HTTP/1.1"));
    }
    let connection_upgrade = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .any(|v| has_token(v.as_bytes(), b"upgrade"));
    if !connection_upgrade {
        return Some((400, "a WebSocket upgrade needs 'Connection: Upgrade'"));
    }
    let key_ok = headers
        .get(http::header::SEC_WEBSOCKET_KEY)
        .is_some_and(|k| k.as_bytes().len() == 24);
    if !key_ok {
        return Some((400, "missing or malformed Sec-WebSocket-Key"));
    }
    if headers
        .get(http::header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Some((426, "unsupported WebSocket version (13 is supported)"));
    }
    None
}

/// The refusal of a bad handshake; a 426 names the version spoken.
pub(crate) fn refuse_handshake(status: u16, detail: &str, path: &str) -> http::Response<Body> {
    let problem = Problem::new(status)
        .with_detail(detail)
        .with_instance(path.to_owned());
    let mut response = problem_response(&problem, false);
    if status == 426 {
        response.headers_mut().insert(
            http::header::SEC_WEBSOCKET_VERSION,
            http::HeaderValue::from_static("13"),
        );
    }
    response
}

enum Stage {
    /// The handshake is waiting for the app's answer.
    Handshake,
    /// `websocket.http.response.start` came: the denial's body follows.
    Denying {
        status: u16,
        headers: http::HeaderMap,
        body: Vec<u8>,
    },
    Accepted,
    /// The app sent `websocket.close` (or its denial is complete).
    Closed,
}

struct CallState {
    stage: Stage,
    /// `websocket.connect` has been received.
    connected: bool,
    /// The HTTP answer to the upgrade request.
    reply: Option<oneshot::Sender<http::Response<Body>>>,
}

/// One WebSocket call; its bound `receive` and `send` go to the app.
#[pyclass(module = "cello._cello", frozen)]
pub struct WsCall {
    state: Mutex<CallState>,
    shared: Arc<WsShared>,
    outbound: mpsc::Sender<Outbound>,
    runner: Arc<Runner>,
    /// `Sec-WebSocket-Accept` for the 101.
    accept_key: String,
    /// `Sec-WebSocket-Extensions` for the 101: the compression the server
    /// agreed to, if any.
    extensions: Option<http::HeaderValue>,
    path: String,
}

impl WsCall {
    fn lock(&self) -> std::sync::MutexGuard<'_, CallState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn done(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        Ok(Ready::of(py, py.None().into_bound(py))?.unbind())
    }

    fn io(&self) -> PyResult<&crate::pipeline::NativeIo> {
        self.runner
            .native
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("WebSocket calls need the native server"))
    }

    fn answer(&self, state: &mut CallState, response: http::Response<Body>) {
        if let Some(reply) = state.reply.take() {
            let _ = reply.send(response);
        }
    }

    fn forbidden(&self) -> http::Response<Body> {
        let problem = Problem::new(403)
            .with_detail("the application did not accept the WebSocket connection")
            .with_instance(self.path.clone());
        problem_response(&problem, false)
    }

    /// The app returned or raised.
    pub fn app_finished(&self, py: Python<'_>, failure: Option<PyErr>) {
        if let Some(err) = &failure {
            let exc = err.clone_ref(py).into_value(py);
            let logged = support(py).and_then(|s| {
                s.log_hosted_exception
                    .bind(py)
                    .call1((exc, "GET", &self.path))
            });
            if logged.is_err() {
                err.print(py);
            }
        }
        let mut state = self.lock();
        match std::mem::replace(&mut state.stage, Stage::Closed) {
            Stage::Handshake | Stage::Denying { .. } => {
                let response = if failure.is_some() {
                    let problem = Problem::new(500)
                        .with_detail("the application raised an exception")
                        .with_instance(self.path.clone());
                    problem_response(&problem, false)
                } else {
                    self.forbidden()
                };
                self.answer(&mut state, response);
            }
            Stage::Accepted => {
                // Accepted and never closed: close for it (1011 if it raised).
                let code = if failure.is_some() {
                    INTERNAL_ERROR
                } else {
                    NORMAL
                };
                let close = Outbound::Close(code, String::new());
                if let Err(mpsc::error::TrySendError::Full(close)) = self.outbound.try_send(close) {
                    if let Ok(io) = self.io() {
                        let outbound = self.outbound.clone();
                        io.runtime.spawn(async move {
                            let _ = outbound.send(close).await;
                        });
                    }
                }
            }
            Stage::Closed => {}
        }
    }
}

/// On the event-loop thread: messages arrived (or the connection ended)
/// while a `receive()` waits.
pub(crate) fn deliver(py: Python<'_>, shared: &Arc<WsShared>) {
    let mut inbox = shared.lock_inbox();
    let Some(waiter) = inbox.waiter.take() else {
        return;
    };
    match next_message(py, shared, &mut inbox.rx) {
        Some(message) => {
            drop(inbox);
            let _ = resolve(py, waiter.bind(py), message);
        }
        None => {
            inbox.waiter = Some(waiter);
            // Re-armed: a message sent since the check wakes us again.
            shared.waiting.store(true, Ordering::SeqCst);
            if let Some(message) = next_message(py, shared, &mut inbox.rx) {
                shared.waiting.store(false, Ordering::SeqCst);
                let waiter = inbox.waiter.take().expect("just put back");
                drop(inbox);
                let _ = resolve(py, waiter.bind(py), message);
            }
        }
    }
}

/// The next message for `receive()`: one from the client, or the
/// disconnect once the connection has ended and the queue is empty.
fn next_message<'py>(
    py: Python<'py>,
    shared: &WsShared,
    rx: &mut mpsc::Receiver<Inbound>,
) -> Option<PyResult<Bound<'py, PyAny>>> {
    match rx.try_recv() {
        Ok(message) => Some(receive_message(py, message)),
        Err(mpsc::error::TryRecvError::Empty) => shared
            .ended()
            .map(|(code, reason)| disconnect_message(py, code, &reason)),
        Err(mpsc::error::TryRecvError::Disconnected) => {
            let (code, reason) = shared.ended().unwrap_or((ABNORMAL, String::new()));
            Some(disconnect_message(py, code, &reason))
        }
    }
}

fn receive_message(py: Python<'_>, message: Inbound) -> PyResult<Bound<'_, PyAny>> {
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "type"), intern!(py, "websocket.receive"))?;
    match message {
        Inbound::Text(text) => {
            dict.set_item(intern!(py, "text"), PyString::new(py, text.as_str()))?
        }
        Inbound::Binary(data) => dict.set_item(intern!(py, "bytes"), PyBytes::new(py, &data))?,
    }
    Ok(dict.into_any())
}

fn disconnect_message<'py>(
    py: Python<'py>,
    code: u16,
    reason: &str,
) -> PyResult<Bound<'py, PyAny>> {
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "type"), intern!(py, "websocket.disconnect"))?;
    dict.set_item(intern!(py, "code"), code)?;
    dict.set_item(intern!(py, "reason"), reason)?;
    Ok(dict.into_any())
}

fn connect_message(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let dict = PyDict::new(py);
    dict.set_item(intern!(py, "type"), intern!(py, "websocket.connect"))?;
    Ok(dict.into_any())
}

#[pymethods]
impl WsCall {
    /// ASGI `receive()`.
    fn receive(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        {
            let mut state = self.lock();
            if !state.connected {
                state.connected = true;
                return Ok(Ready::of(py, connect_message(py)?)?.unbind());
            }
        }
        let shared = &self.shared;
        let mut inbox = shared.lock_inbox();
        if inbox.waiter.is_some() {
            return Err(PyRuntimeError::new_err(
                "receive() called while another receive() is waiting",
            ));
        }
        // Armed before looking, so a message sent after the look wakes us.
        shared.waiting.store(true, Ordering::SeqCst);
        if let Some(message) = next_message(py, shared, &mut inbox.rx) {
            shared.waiting.store(false, Ordering::SeqCst);
            return Ok(Ready::of(py, message?)?.unbind());
        }
        let future = self
            .runner
            .event_loop
            .bind(py)
            .call_method0(intern!(py, "create_future"))?
            .unbind();
        inbox.waiter = Some(future.clone_ref(py));
        Ok(future)
    }

    /// ASGI `send(message)`.
    fn send(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let kind = message
            .get_item(intern!(py, "type"))?
            .ok_or_else(|| PyValueError::new_err("ASGI message without 'type'"))?;
        match kind.cast::<PyString>()?.to_str()? {
            "websocket.send" => self.send_data(py, message),
            "websocket.accept" => self.accept(py, message),
            "websocket.close" => self.close(py, message),
            "websocket.http.response.start" => self.deny_start(py, message),
            "websocket.http.response.body" => self.deny_body(py, message),
            other => Err(PyValueError::new_err(format!(
                "unexpected ASGI message type {other:?} for a websocket"
            ))),
        }
    }
}

fn optional<'py>(
    message: &Bound<'py, PyDict>,
    key: &Bound<'py, PyString>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    Ok(message.get_item(key)?.filter(|v| !v.is_none()))
}

impl WsCall {
    fn disconnected(&self, py: Python<'_>) -> PyErr {
        match support(py) {
            Ok(s) => error(py, &s.client_disconnected, "WebSocket client disconnected"),
            Err(e) => e,
        }
    }

    fn send_data(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let out = if let Some(text) = optional(message, intern!(py, "text"))? {
            Outbound::Text(text.cast::<PyString>()?.to_str()?.to_owned())
        } else if let Some(data) = optional(message, intern!(py, "bytes"))? {
            Outbound::Binary(Bytes::copy_from_slice(data.cast::<PyBytes>()?.as_bytes()))
        } else {
            return Err(PyValueError::new_err(
                "websocket.send needs 'text' or 'bytes'",
            ));
        };
        match self.lock().stage {
            Stage::Accepted => {}
            Stage::Closed => {
                if self.shared.ended().is_some() {
                    return Err(self.disconnected(py));
                }
                return Err(PyRuntimeError::new_err(
                    "websocket.send after websocket.close",
                ));
            }
            Stage::Handshake | Stage::Denying { .. } => {
                return Err(PyRuntimeError::new_err(
                    "websocket.send before websocket.accept",
                ))
            }
        }
        self.push(py, out)
    }

    /// Queues a message for the session: done at once when there is room,
    /// else a future that waits for it (or fails if the client leaves).
    fn push(&self, py: Python<'_>, out: Outbound) -> PyResult<Py<PyAny>> {
        match self.outbound.try_send(out) {
            Ok(()) => self.done(py),
            Err(mpsc::error::TrySendError::Closed(_)) => Err(self.disconnected(py)),
            Err(mpsc::error::TrySendError::Full(out)) => {
                let future = self
                    .runner
                    .event_loop
                    .bind(py)
                    .call_method0(intern!(py, "create_future"))?
                    .unbind();
                let resolve_with = future.clone_ref(py);
                let io = self.io()?;
                let queue = io.queue.clone();
                let outbound = self.outbound.clone();
                io.runtime.spawn(async move {
                    let sent = outbound.send(out).await.is_ok();
                    queue.push(crate::pipeline::queue::Work::call(move |py| {
                        crate::doors::mounts::io::deliver_sent(py, &resolve_with, sent)
                    }));
                });
                Ok(future)
            }
        }
    }

    fn accept(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let mut state = self.lock();
        if !matches!(state.stage, Stage::Handshake) {
            return Err(PyRuntimeError::new_err(
                "websocket.accept after the handshake was answered",
            ));
        }
        let mut headers = match optional(message, intern!(py, "headers"))? {
            Some(_) => response_headers(py, message)?,
            None => http::HeaderMap::new(),
        };
        if let Some(protocol) = optional(message, intern!(py, "subprotocol"))? {
            let protocol: String = protocol.extract()?;
            let value = http::HeaderValue::from_str(&protocol)
                .map_err(|_| PyValueError::new_err("invalid subprotocol"))?;
            headers.insert(http::header::SEC_WEBSOCKET_PROTOCOL, value);
        }
        let mut response = http::Response::new(Body::empty());
        *response.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        headers.insert(
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        );
        headers.insert(
            http::header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        );
        headers.insert(
            http::header::SEC_WEBSOCKET_ACCEPT,
            http::HeaderValue::from_str(&self.accept_key)
                .map_err(|_| PyValueError::new_err("bad accept key"))?,
        );
        // The server owns the extensions: it does the compressing, so an
        // app's own `Sec-WebSocket-Extensions` could only promise what the
        // connection does not do.
        headers.remove(http::header::SEC_WEBSOCKET_EXTENSIONS);
        if let Some(extensions) = &self.extensions {
            headers.insert(http::header::SEC_WEBSOCKET_EXTENSIONS, extensions.clone());
        }
        *response.headers_mut() = headers;
        state.stage = Stage::Accepted;
        self.answer(&mut state, response);
        self.done(py)
    }

    fn close(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let code: u16 = match optional(message, intern!(py, "code"))? {
            Some(code) => code.extract()?,
            None => NORMAL,
        };
        let reason: String = match optional(message, intern!(py, "reason"))? {
            Some(reason) => reason.extract()?,
            None => String::new(),
        };
        let mut state = self.lock();
        match std::mem::replace(&mut state.stage, Stage::Closed) {
            Stage::Handshake => {
                let response = self.forbidden();
                self.answer(&mut state, response);
                drop(state);
                self.shared.end(code, reason);
                self.done(py)
            }
            Stage::Accepted => {
                drop(state);
                self.push(py, Outbound::Close(code, reason))
            }
            Stage::Denying { .. } => Err(PyRuntimeError::new_err(
                "websocket.close during a denial response",
            )),
            Stage::Closed => Err(PyRuntimeError::new_err("websocket.close sent twice")),
        }
    }

    fn deny_start(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let mut state = self.lock();
        if !matches!(state.stage, Stage::Handshake) {
            return Err(PyRuntimeError::new_err(
                "websocket.http.response.start after the handshake was answered",
            ));
        }
        let status: u16 = message
            .get_item(intern!(py, "status"))?
            .ok_or_else(|| PyValueError::new_err("websocket.http.response.start without 'status'"))?
            .extract()?;
        if !(100..=999).contains(&status) || status == 101 {
            return Err(PyValueError::new_err(format!(
                "invalid denial response status {status}"
            )));
        }
        let headers = response_headers(py, message)?;
        state.stage = Stage::Denying {
            status,
            headers,
            body: Vec::new(),
        };
        self.done(py)
    }

    fn deny_body(&self, py: Python<'_>, message: &Bound<'_, PyDict>) -> PyResult<Py<PyAny>> {
        let more = match message.get_item(intern!(py, "more_body"))? {
            Some(m) => m.is_truthy()?,
            None => false,
        };
        let mut state = self.lock();
        let Stage::Denying { body, .. } = &mut state.stage else {
            return Err(PyRuntimeError::new_err(
                "websocket.http.response.body without websocket.http.response.start",
            ));
        };
        if let Some(chunk) = optional(message, intern!(py, "body"))? {
            body.extend_from_slice(chunk.cast::<PyBytes>()?.as_bytes());
        }
        if more {
            return self.done(py);
        }
        let Stage::Denying {
            status,
            headers,
            body,
        } = std::mem::replace(&mut state.stage, Stage::Closed)
        else {
            unreachable!("checked above");
        };
        let mut response = http::Response::new(Body::full(body));
        *response.status_mut() =
            http::StatusCode::from_u16(status).map_err(|e| PyValueError::new_err(e.to_string()))?;
        *response.headers_mut() = headers;
        self.answer(&mut state, response);
        drop(state);
        self.shared.end(ABNORMAL, String::new());
        self.done(py)
    }
}

/// Calls `app(scope, receive, send)` for an upgrade request, as a Task on
/// the event loop. `reply` gets the HTTP answer to the upgrade.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    py: Python<'_>,
    runner: &Arc<Runner>,
    app: &Bound<'_, PyAny>,
    scope: Bound<'_, PyDict>,
    shared: Arc<WsShared>,
    outbound: mpsc::Sender<Outbound>,
    accept_key: String,
    extensions: Option<http::HeaderValue>,
    path: String,
    reply: oneshot::Sender<http::Response<Body>>,
) -> PyResult<()> {
    let call = Bound::new(
        py,
        WsCall {
            state: Mutex::new(CallState {
                stage: Stage::Handshake,
                connected: false,
                reply: Some(reply),
            }),
            shared,
            outbound,
            runner: runner.clone(),
            accept_key,
            extensions,
            path,
        },
    )?;
    run_app(py, runner, &call, app, scope, None)
}

impl AppCall for WsCall {
    fn app_finished(&self, py: Python<'_>, failure: Option<PyErr>) {
        WsCall::app_finished(self, py, failure);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upgrade_headers() -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::UPGRADE, "WebSocket".parse().unwrap());
        h.insert(
            http::header::CONNECTION,
            "keep-alive, Upgrade".parse().unwrap(),
        );
        h.insert(
            http::header::SEC_WEBSOCKET_KEY,
            "dGhlIHNhbXBsZSBub25jZQ==".parse().unwrap(),
        );
        h.insert(http::header::SEC_WEBSOCKET_VERSION, "13".parse().unwrap());
        h
    }

    #[test]
    fn an_upgrade_is_recognised_case_insensitively_on_get_only() {
        let h = upgrade_headers();
        assert!(wants_websocket(&http::Method::GET, &h));
        assert!(!wants_websocket(&http::Method::POST, &h));
        assert!(!wants_websocket(
            &http::Method::GET,
            &http::HeaderMap::new()
        ));
    }

    #[test]
    fn a_valid_handshake_is_not_refused() {
        assert_eq!(
            handshake_refusal(http::Version::HTTP_11, &upgrade_headers()),
            None
        );
    }

    #[test]
    fn bad_handshakes_are_refused() {
        let mut h = upgrade_headers();
        h.insert(http::header::SEC_WEBSOCKET_VERSION, "8".parse().unwrap());
        assert_eq!(
            handshake_refusal(http::Version::HTTP_11, &h).map(|r| r.0),
            Some(426)
        );
        let mut h = upgrade_headers();
        h.remove(http::header::SEC_WEBSOCKET_KEY);
        assert_eq!(
            handshake_refusal(http::Version::HTTP_11, &h).map(|r| r.0),
            Some(400)
        );
        let mut h = upgrade_headers();
        h.insert(http::header::CONNECTION, "keep-alive".parse().unwrap());
        assert_eq!(
            handshake_refusal(http::Version::HTTP_11, &h).map(|r| r.0),
            Some(400)
        );
        assert_eq!(
            handshake_refusal(http::Version::HTTP_10, &upgrade_headers()).map(|r| r.0),
            Some(400)
        );
    }
}
