//! Python-side helpers the bindings call, imported once per interpreter.
//!
//! They live in `cello._support` and `cello.exceptions` because they are
//! Python types users see (`CallableStr`, `Context`, the exception classes)
//! or asyncio plumbing that is clearer in Python.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

pub struct Support {
    pub callable_str: Py<PyAny>,
    pub context: Py<PyAny>,
    /// `Ready(None)`, shared: it holds no state.
    pub done: Py<Ready>,
    pub pump: Py<PyAny>,
    pub log_exception: Py<PyAny>,
    pub log_hosted_exception: Py<PyAny>,
    pub format_exception: Py<PyAny>,
    pub cookie_expires: Py<PyAny>,
    pub http_exception: Py<PyType>,
    /// `cello.exceptions.refusal(status, detail, headers)`.
    pub refusal: Py<PyAny>,
    pub bad_request: Py<PyType>,
    pub payload_too_large: Py<PyType>,
    pub request_timeout: Py<PyType>,
    pub unsupported_media_type: Py<PyType>,
    pub client_disconnected: Py<PyType>,
}

static SUPPORT: PyOnceLock<Support> = PyOnceLock::new();

pub fn support(py: Python<'_>) -> PyResult<&'static Support> {
    SUPPORT.get_or_try_init(py, || {
        let helpers = py.import("cello._support")?;
        let errors = py.import("cello.exceptions")?;
        let get = |m: &Bound<'_, PyModule>, name: &str| -> PyResult<Py<PyAny>> {
            Ok(m.getattr(name)?.unbind())
        };
        let ty = |name: &str| -> PyResult<Py<PyType>> {
            Ok(errors.getattr(name)?.cast_into::<PyType>()?.unbind())
        };
        Ok(Support {
            callable_str: get(&helpers, "CallableStr")?,
            context: get(&helpers, "Context")?,
            done: Py::new(py, Ready { value: None })?,
            pump: get(&helpers, "pump")?,
            log_exception: get(&helpers, "log_exception")?,
            log_hosted_exception: get(&helpers, "log_hosted_exception")?,
            format_exception: get(&helpers, "format_exception")?,
            cookie_expires: get(&helpers, "cookie_expires")?,
            http_exception: ty("HTTPException")?,
            refusal: get(&errors, "refusal")?,
            bad_request: ty("BadRequest")?,
            payload_too_large: ty("PayloadTooLarge")?,
            request_timeout: ty("RequestTimeout")?,
            unsupported_media_type: ty("UnsupportedMediaType")?,
            client_disconnected: ty("ClientDisconnected")?,
        })
    })
}

/// An awaitable that is already complete: `await` gives its value at once
/// (`await request.body_async()`, the `send()` of a hosted ASGI app).
#[pyclass(module = "cello._cello", frozen)]
pub struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    pub fn of<'py>(py: Python<'py>, value: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        if value.is_none() {
            return Ok(support(py)?.done.bind(py).clone().into_any());
        }
        Ok(Bound::new(
            py,
            Ready {
                value: Some(value.unbind()),
            },
        )?
        .into_any())
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        match &self.value {
            None => Ok(None),
            Some(value) => Err(PyStopIteration::new_err((value.clone_ref(py),))),
        }
    }
}

/// Builds an instance of one of the exception classes above from a message.
pub fn error(py: Python<'_>, ty: &Py<PyType>, message: &str) -> PyErr {
    match ty.bind(py).call1((message,)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

thread_local! {
    /// The thread state an I/O thread keeps while it lives (see `adopt_thread`).
    static ADOPTED: std::cell::Cell<Option<(pyo3::ffi::PyGILState_STATE, usize)>> =
        const { std::cell::Cell::new(None) };
}

/// Gives the calling (I/O) thread a Python thread state that lives as long
/// as the thread, with `running_loop` (see [`io_thread_loop`]) as its
/// running asyncio loop, then releases the GIL. Without it, every request
/// handled on the thread would create and destroy a thread state when it
/// takes the GIL. Undone by `release_thread`.
pub fn adopt_thread(running_loop: &Py<PyAny>) {
    // SAFETY: the interpreter is initialized (this module was imported), and
    // the state/thread-state pair is restored in `release_thread` on this thread.
    unsafe {
        let state = pyo3::ffi::PyGILState_Ensure();
        set_running_loop(Python::assume_attached(), running_loop);
        let thread_state = pyo3::ffi::PyEval_SaveThread();
        ADOPTED.set(Some((state, thread_state as usize)));
    }
}

/// What `asyncio.get_running_loop()` gives on the I/O threads of a server
/// whose event loop is `event_loop`: a `cello._loop.IoThreadLoop`, so sync
/// handlers there can start Tasks and set timers on the loop safely.
pub fn io_thread_loop(py: Python<'_>, event_loop: &Py<PyAny>) -> PyResult<Py<PyAny>> {
    Ok(py
        .import("cello._loop")?
        .getattr("IoThreadLoop")?
        .call1((event_loop,))?
        .unbind())
}

/// `asyncio._set_running_loop(running_loop)` on this thread. A Python
/// without it leaves the thread with no running loop, as before.
fn set_running_loop(py: Python<'_>, running_loop: &Py<PyAny>) {
    let set = py
        .import("asyncio")
        .and_then(|asyncio| asyncio.getattr("_set_running_loop"))
        .and_then(|set| set.call1((running_loop,)));
    if let Err(e) = set {
        e.print(py);
    }
}

/// Drops the thread state `adopt_thread` kept (when the interpreter is still up).
pub fn release_thread() {
    let Some((state, thread_state)) = ADOPTED.take() else {
        return;
    };
    // SAFETY: the pair came from `adopt_thread` on this same thread.
    unsafe {
        if pyo3::ffi::Py_IsInitialized() != 0 {
            pyo3::ffi::PyEval_RestoreThread(thread_state as *mut pyo3::ffi::PyThreadState);
            set_running_loop(Python::assume_attached(), &Python::assume_attached().None());
            pyo3::ffi::PyGILState_Release(state);
        }
    }
}
