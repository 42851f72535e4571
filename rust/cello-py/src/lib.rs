//! `cello._cello`: the PyO3 bindings over `cello-core`.
//!
//! The whole Python surface of the extension is declared in the module
//! function below.

mod bridge;
mod client;
mod conversion;
mod doors;
mod ffi;
mod layers;
mod pipeline;
mod templates;
mod types;

use pyo3::prelude::*;
use pyo3::types::PyBytes;

#[global_allocator]
static ALLOCATOR: ffi::allocator::Mimalloc = ffi::allocator::Mimalloc;

/// `mi_option_arena_eager_commit` in mimalloc.h (the Rust bindings do not name it).
const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;

/// Serialises a value exactly as a handler's return value would be (orjson-compatible bytes).
#[pyfunction]
fn dumps<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(
        obj.py(),
        &conversion::json_writer::to_json(obj)?,
    ))
}

/// Parses JSON the way `Request.json()` does.
#[pyfunction]
fn loads(py: Python<'_>, data: &[u8]) -> PyResult<Py<PyAny>> {
    match conversion::json_reader::parse(py, data) {
        Ok(v) => Ok(v.unbind()),
        Err(conversion::json_reader::JsonErrorOrPy::Py(e)) => Err(e),
        Err(conversion::json_reader::JsonErrorOrPy::Json(e)) => {
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
    // The native server hands WebSocket upgrades to the app (cello._server.supports_websocket).
    m.add("WEBSOCKET", true)?;
    m.add_class::<pipeline::app::Cello>()?;
    m.add_class::<types::request::Request>()?;
    m.add_class::<types::response::Response>()?;
    m.add_class::<types::multidict::Headers>()?;
    m.add_class::<types::multidict::QueryParams>()?;
    m.add_class::<types::forms::UploadStore>()?;
    m.add_class::<types::forms::BodySpool>()?;
    m.add_class::<doors::native::serve::ServerHandle>()?;
    m.add_class::<bridge::driver::LoopDriver>()?;
    m.add_class::<bridge::eager::EagerStart>()?;
    m.add_class::<pipeline::streaming::StreamSink>()?;
    m.add_class::<pipeline::Drive>()?;
    m.add_class::<doors::asgi::serve::AsgiDoor>()?;
    m.add_class::<doors::asgi::serve::Exchange>()?;
    m.add_class::<pipeline::CallNext>()?;
    m.add_class::<pipeline::CancelTask>()?;
    m.add_class::<types::after_response::AfterResponse>()?;
    m.add_class::<doors::mounts::serve::HostCall>()?;
    m.add_class::<layers::rate_limit::RateLimiter>()?;
    // Templates and the outgoing HTTP client (issue 20).
    m.add_class::<templates::MiniJinjaEngine>()?;
    m.add_class::<client::HttpClient>()?;
    m.add_class::<client::PendingRequest>()?;
    m.add_function(wrap_pyfunction!(client::_http_client_exit, m)?)?;
    m.add_function(wrap_pyfunction!(pipeline::streaming::chunk_to_bytes, m)?)?;
    m.add_function(wrap_pyfunction!(types::convert::as_response, m)?)?;
    m.add_function(wrap_pyfunction!(doors::native::serve::start_server, m)?)?;
    m.add_function(wrap_pyfunction!(doors::native::serve::bind_listener, m)?)?;
    m.add_function(wrap_pyfunction!(
        doors::native::serve::bind_udp_listener,
        m
    )?)?;
    m.add_function(wrap_pyfunction!(doors::native::serve::check_tls, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::fast_paths::report, m)?)?;
    m.add_function(wrap_pyfunction!(dumps, m)?)?;
    m.add_function(wrap_pyfunction!(loads, m)?)?;
    m.add_function(wrap_pyfunction!(layers::cache::invalidate_cache_tags, m)?)?;
    m.add_function(wrap_pyfunction!(layers::auth::constant_time_compare, m)?)?;
    Ok(())
}
