//! Python-side helpers the bindings call, imported once per interpreter.
//!
//! They live in `cello._support` and `cello.exceptions` because they are
//! Python types users see (`CallableStr`, `Context`, the exception classes)
//! or asyncio plumbing that is clearer in Python.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

pub struct Support {
    pub callable_str: Py<PyAny>,
    pub context: Py<PyAny>,
    pub ready: Py<PyAny>,
    pub pump: Py<PyAny>,
    pub log_exception: Py<PyAny>,
    pub log_hosted_exception: Py<PyAny>,
    pub format_exception: Py<PyAny>,
    pub http_exception: Py<PyType>,
    pub bad_request: Py<PyType>,
    pub payload_too_large: Py<PyType>,
    pub request_timeout: Py<PyType>,
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
            ready: get(&helpers, "ready")?,
            pump: get(&helpers, "pump")?,
            log_exception: get(&helpers, "log_exception")?,
            log_hosted_exception: get(&helpers, "log_hosted_exception")?,
            format_exception: get(&helpers, "format_exception")?,
            http_exception: ty("HTTPException")?,
            bad_request: ty("BadRequest")?,
            payload_too_large: ty("PayloadTooLarge")?,
            request_timeout: ty("RequestTimeout")?,
            client_disconnected: ty("ClientDisconnected")?,
        })
    })
}

/// Builds an instance of one of the exception classes above from a message.
pub fn error(py: Python<'_>, ty: &Py<PyType>, message: &str) -> PyErr {
    match ty.bind(py).call1((message,)) {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}
