//! `Drive`: the coroutine a handler's (or hosted app's) Task runs, which
//! finishes the pipeline in the step where the handler's coroutine ends.

use std::sync::{Arc, Mutex};

use pyo3::exceptions::PyStopIteration;
use pyo3::intern;
use pyo3::prelude::*;

use super::{finish, Completion, Runner, Stage};
use crate::types::request::Request;

pub struct Pending {
    pub(crate) runner: Arc<Runner>,
    pub(crate) request: Py<Request>,
    pub(crate) stage: Stage,
    pub(crate) completion: Completion,
}

/// Told when a Drive's coroutine has ended, with what it raised.
pub trait CoroutineEnded: Send + Sync {
    fn ended(&self, py: Python<'_>, failure: Option<PyErr>);
}

/// What a Drive does once its coroutine has ended.
pub enum Ending {
    /// Finish the request pipeline with the handler's outcome.
    Pipeline(Pending),
    /// Tell whoever started the coroutine that it has ended (a hosted
    /// ASGI call: its app has returned or raised).
    Notify(Box<dyn CoroutineEnded>),
}

/// The coroutine a handler's (or hosted app's) Task runs: the handler's
/// coroutine, then, in the step where that ends, the rest of the pipeline.
/// (A done callback on the Task would cost another trip through the event
/// loop.)
#[pyclass(module = "cello._cello", frozen)]
pub struct Drive {
    coro: Py<PyAny>,
    ending: Mutex<Option<Ending>>,
}

impl Drive {
    pub fn new(coro: Bound<'_, PyAny>, ending: Ending) -> Self {
        Drive {
            coro: coro.unbind(),
            ending: Mutex::new(Some(ending)),
        }
    }

    pub fn take(&self) -> Option<Ending> {
        self.ending.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Runs the pipeline on with what the handler returned or raised.
    /// SystemExit and KeyboardInterrupt included: raised by one request's
    /// code, they are that request's 500, as in a sync handler, and do not
    /// reach the Task, which would pass them on and stop the event loop with
    /// every other connection on it (under uvicorn, the whole server).
    fn end(&self, py: Python<'_>, outcome: PyResult<Bound<'_, PyAny>>) {
        match self.take() {
            Some(Ending::Pipeline(p)) => {
                let request = p.request.bind(py).clone();
                finish(py, &p.runner, &request, outcome, p.stage, p.completion).delivered();
            }
            Some(Ending::Notify(ended)) => ended.ended(py, outcome.err()),
            None => {}
        }
    }

    /// One step of the handler's coroutine: `Some(yielded)`, or `None` once
    /// it has ended (and the pipeline with it).
    fn step(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let mut result: *mut pyo3::ffi::PyObject = std::ptr::null_mut();
        // SAFETY: both objects are alive and the GIL is held; `result`
        // receives a new reference, or NULL with an exception set.
        let sent =
            unsafe { pyo3::ffi::PyIter_Send(self.coro.as_ptr(), value.as_ptr(), &mut result) };
        match sent {
            // SAFETY: on NEXT and RETURN `result` is a new, non-NULL reference.
            pyo3::ffi::PySendResult::PYGEN_NEXT => {
                Ok(Some(unsafe { Bound::from_owned_ptr(py, result) }.unbind()))
            }
            pyo3::ffi::PySendResult::PYGEN_RETURN => {
                let value = unsafe { Bound::from_owned_ptr(py, result) };
                self.end(py, Ok(value));
                Ok(None)
            }
            pyo3::ffi::PySendResult::PYGEN_ERROR => {
                self.end(py, Err(PyErr::fetch(py)));
                Ok(None)
            }
        }
    }
}

#[pymethods]
impl Drive {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    /// What a Task calls for `send(None)`: no StopIteration to build.
    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.step(py, &py.None().into_bound(py))
    }

    fn send(&self, py: Python<'_>, value: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        self.step(py, value)?
            .ok_or_else(|| PyStopIteration::new_err(()))
    }

    /// Cancellation (and any other exception a Task throws in).
    #[pyo3(signature = (typ, val = None, tb = None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: &Bound<'_, PyAny>,
        val: Option<&Bound<'_, PyAny>>,
        tb: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let coro = self.coro.bind(py);
        let thrown = match (val, tb) {
            (None, None) => coro.call_method1(intern!(py, "throw"), (typ,)),
            _ => coro.call_method1(intern!(py, "throw"), (typ, val, tb)),
        };
        let outcome = match thrown {
            Ok(yielded) => return Ok(yielded.unbind()),
            Err(e) if e.is_instance_of::<PyStopIteration>(py) => {
                e.value(py).getattr(intern!(py, "value"))
            }
            Err(e) => Err(e),
        };
        self.end(py, outcome);
        Err(PyStopIteration::new_err(()))
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.coro.bind(py).call_method0(intern!(py, "close"))?;
        Ok(())
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.coro.bind(py).repr()?.to_string())
    }

    // `task.get_coro()` is this Drive. What asyncio (`Task.__repr__`,
    // `get_stack`) and tracing integrations read off a coroutine is the
    // handler's, so the Task shows and names what it runs.

    /// The handler's coroutine (or hosted app's call) this Drive runs.
    #[getter]
    fn cr_coro(&self, py: Python<'_>) -> Py<PyAny> {
        self.coro.clone_ref(py)
    }

    #[getter]
    fn cr_code<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.coro.bind(py).getattr(intern!(py, "cr_code"))
    }

    #[getter]
    fn cr_frame<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.coro.bind(py).getattr(intern!(py, "cr_frame"))
    }

    #[getter]
    fn cr_await<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.coro.bind(py).getattr(intern!(py, "cr_await"))
    }

    #[getter]
    fn cr_running<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.coro.bind(py).getattr(intern!(py, "cr_running"))
    }

    #[getter(__name__)]
    fn name<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.coro.bind(py).getattr(intern!(py, "__name__"))
    }

    #[getter(__qualname__)]
    fn qualname<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.coro.bind(py).getattr(intern!(py, "__qualname__"))
    }
}
