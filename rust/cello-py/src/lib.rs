//! `cello._cello`: the PyO3 bindings over `cello-core`.
//!
//! The whole Python surface of the extension is declared in the module
//! function below.

mod allocator;
mod app;
mod asgi_door;
mod asgi_host;
mod capi;
mod convert;
mod cookies;
mod dispatch;
mod driver;
mod eager;
mod fast_paths;
mod handle;
mod headers;
mod json_reader;
mod json_writer;
mod multidict;
mod pipeline;
mod request;
mod response;
mod routing;
mod service;
mod streaming;
mod support;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[global_allocator]
static ALLOCATOR: allocator::Mimalloc = allocator::Mimalloc;

/// `mi_option_arena_eager_commit` in mimalloc.h (the Rust bindings do not name it).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Serialises a value exactly as a handler's return value would be (orjson-compatible bytes).
#[pyfunction]
fn dumps<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(obj.py(), &json_writer::to_json(obj)?))
}

/// Parses JSON the way `Request.json()` does.
#[pyfunction]
fn loads(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    match json_reader::parse(py, data) {
        Ok(v) => Ok(v.unbind()),
        Err(json_reader::JsonErrorOrPy::Py(e)) => Err(e),
        Err(json_reader::JsonErrorOrPy::Json(e)) => {
            Err(pyo3::exceptions::PyValueError::new_err(e.0))
        }
    }
}

#[pymodule]
fn _cello(m: &Bound<'_, PyModule>) -> PyResult<()> {
    // Committing whole arenas up front costs idle processes about 6 MiB of
    // RSS (transparent huge pages fill in on first touch) and bought nothing
    // measurable.
    // SAFETY: setting an option has no preconditions; it applies to arenas
    // reserved from now on.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) };
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<app::Cello>()?;
    m.add_class::<request::Request>()?;
    m.add_class::<response::Response>()?;
    m.add_class::<multidict::Headers>()?;
    m.add_class::<multidict::QueryParams>()?;
    m.add_class::<dispatch::ServerHandle>()?;
    m.add_class::<driver::LoopDriver>()?;
    m.add_class::<eager::EagerStart>()?;
    m.add_class::<streaming::StreamSink>()?;
    m.add_class::<pipeline::Drive>()?;
    m.add_class::<asgi_door::AsgiDoor>()?;
    m.add_class::<asgi_door::Exchange>()?;
    m.add_class::<pipeline::CallNext>()?;
    m.add_class::<pipeline::CancelTask>()?;
    m.add_class::<asgi_host::HostCall>()?;
    m.add_function(wrap_pyfunction!(streaming::chunk_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(convert::as_response, m)?)?;
    m.add_function(wrap_pyfunction!(service::start_server, m)?)?;
    m.add_function(wrap_pyfunction!(service::bind_listener, m)?)?;
    m.add_function(wrap_pyfunction!(fast_paths::report, m)?)?;
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    m.add_function(wrap_pyfunction!(loads, m)?)?;
    Ok(())
}
