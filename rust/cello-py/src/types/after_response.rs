//! Callbacks a request asks to run once its response has been sent
//! (`request._after_response(callback)`): the ground `BackgroundTasks` and
//! the cleanup of generator dependencies stand on.
//!
//! A request that registers nothing pays nothing: its slot stays `Empty`,
//! and delivering its response only looks at the slot. When callbacks are
//! there, the door that sends the response starts them once it is done with
//! it — the native door when hyper drops the body (sent, or the client gone),
//! the ASGI door after its last `http.response.body` — as one asyncio Task
//! on the event loop (`cello._after_response.start`).

use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;

/// Where a request keeps its after-response callbacks.
#[derive(Default)]
pub enum AfterSlot {
    /// Nothing registered: the state of nearly every request.
    #[default]
    Empty,
    Pending(Box<Callbacks>),
    /// The response went out and took the callbacks with it.
    Taken,
}

/// The callbacks, in registration order, and the context they run in: a
/// copy of the one the first of them was registered from (the handler's).
pub struct Callbacks {
    callbacks: Vec<Py<PyAny>>,
    context: Py<PyAny>,
}

/// Registers `callback` in `slot`.
pub fn register(
    py: Python<'_>,
    slot: &Mutex<AfterSlot>,
    callback: Bound<'_, PyAny>,
) -> PyResult<()> {
    if !callback.is_callable() {
        return Err(PyTypeError::new_err(format!(
            "_after_response() takes a callable, not {}",
            callback.get_type().name()?
        )));
    }
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    match &mut *slot {
        AfterSlot::Pending(pending) => pending.callbacks.push(callback.unbind()),
        AfterSlot::Empty => {
            let context = copy_context(py)?;
            *slot = AfterSlot::Pending(Box::new(Callbacks {
                callbacks: vec![callback.unbind()],
                context,
            }));
        }
        AfterSlot::Taken => {
            return Err(PyRuntimeError::new_err(
                "_after_response(): the response to this request has already been sent",
            ))
        }
    }
    Ok(())
}

/// The callbacks of `slot`, leaving it `Taken` so later registrations are
/// refused rather than silently never run. None (and the slot untouched)
/// when nothing was registered.
pub fn take(slot: &Mutex<AfterSlot>) -> Option<Box<Callbacks>> {
    let mut slot = slot.lock().unwrap_or_else(|p| p.into_inner());
    if matches!(*slot, AfterSlot::Empty) {
        return None;
    }
    match std::mem::replace(&mut *slot, AfterSlot::Taken) {
        AfterSlot::Pending(callbacks) => Some(callbacks),
        _ => None,
    }
}

fn copy_context(py: Python<'_>) -> PyResult<Py<PyAny>> {
    static COPY_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let copy = COPY_CONTEXT.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("contextvars")?.getattr("copy_context")?.unbind())
    })?;
    Ok(copy.bind(py).call0()?.unbind())
}

impl Callbacks {
    /// Starts the callbacks as a Task on `event_loop` (on its thread).
    /// A failure to start is logged: there is no response left to spoil.
    pub fn start(self, py: Python<'_>, event_loop: &Bound<'_, PyAny>) {
        static START: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let started = START
            .get_or_try_init(py, || {
                Ok::<_, PyErr>(
                    py.import("cello._after_response")?
                        .getattr("start")?
                        .unbind(),
                )
            })
            .and_then(|start| {
                start
                    .bind(py)
                    .call1((event_loop, self.callbacks, self.context))
            });
        if let Err(e) = started {
            e.print(py);
        }
    }
}

/// The after-response callbacks of a response the ASGI door sends: the
/// adapter calls `start()` after the last body message (or when sending
/// failed), once.
#[pyclass(module = "cello._cello", frozen)]
pub struct AfterResponse {
    pending: Mutex<Option<(Box<Callbacks>, Py<PyAny>)>>,
}

impl AfterResponse {
    pub fn new(callbacks: Box<Callbacks>, event_loop: Py<PyAny>) -> Self {
        AfterResponse {
            pending: Mutex::new(Some((callbacks, event_loop))),
        }
    }
}

#[pymethods]
impl AfterResponse {
    /// Starts the callbacks as a Task; later calls do nothing.
    fn start(&self, py: Python<'_>) {
        let pending = self
            .pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((callbacks, event_loop)) = pending {
            callbacks.start(py, event_loop.bind(py));
        }
    }
}

#[cfg(test)]
mod tests;
