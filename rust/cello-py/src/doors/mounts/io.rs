//! Door 3's bodies: the request body a hosted app's `receive()` reads as
//! it arrives, the disconnect it learns of, and the sends that had to wait.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cello_core::server::RequestBody;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::ffi::support::{error, support};
use crate::pipeline::queue::Work;

/// Shared between the I/O side and the call: the body still to read, and
/// whether the client is gone.
pub struct HostSignal {
    pub(crate) incoming: Mutex<Option<RequestBody>>,
    /// The last body frame has been read (or the body was discarded).
    pub(crate) body_done: AtomicBool,
    /// A `receive()` is waiting for a body frame.
    pub(crate) reading: AtomicBool,
    pub(crate) gone: AtomicBool,
    /// Futures of `receive()` calls waiting for `http.disconnect`.
    pub(crate) waiters: Mutex<Vec<Py<PyAny>>>,
}

impl HostSignal {
    pub fn new(incoming: Option<RequestBody>) -> Arc<Self> {
        Arc::new(HostSignal {
            body_done: AtomicBool::new(false),
            incoming: Mutex::new(incoming),
            reading: AtomicBool::new(false),
            gone: AtomicBool::new(false),
            waiters: Mutex::new(Vec::new()),
        })
    }

    /// On the Python thread: the client left (or the response is over).
    pub fn finish(&self, py: Python<'_>) {
        self.gone.store(true, Ordering::Release);
        let waiters = std::mem::take(&mut *self.waiters.lock().unwrap_or_else(|p| p.into_inner()));
        for future in waiters {
            let _ = resolve(py, future.bind(py), disconnect_message(py));
        }
    }
}

/// Tells the call its client is gone unless disarmed: dropped with the service future when
/// the client leaves before the response head is sent.
pub struct GoneOnDrop {
    pub signal: Arc<HostSignal>,
    pub queue: Arc<crate::pipeline::queue::Queue>,
    pub armed: bool,
}

impl Drop for GoneOnDrop {
    fn drop(&mut self) {
        if self.armed {
            let signal = self.signal.clone();
            self.queue.push(Work::call(move |py| signal.finish(py)));
        }
    }
}

pub(crate) fn disconnect_message(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    let message = PyDict::new(py);
    message.set_item("type", "http.disconnect")?;
    Ok(message.into_any())
}

pub(crate) fn body_message<'py>(
    py: Python<'py>,
    data: &[u8],
    more: bool,
) -> PyResult<Bound<'py, PyAny>> {
    let message = PyDict::new(py);
    message.set_item("type", "http.request")?;
    message.set_item("body", PyBytes::new(py, data))?;
    message.set_item("more_body", more)?;
    Ok(message.into_any())
}

pub(crate) fn resolve(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    value: PyResult<Bound<'_, PyAny>>,
) -> PyResult<()> {
    if future.call_method0(intern!(py, "done"))?.is_truthy()? {
        return Ok(());
    }
    match value {
        Ok(v) => future.call_method1(intern!(py, "set_result"), (v,))?,
        Err(e) => future.call_method1(intern!(py, "set_exception"), (e.into_value(py),))?,
    };
    Ok(())
}

/// On the Python thread: a body frame read by the I/O side arrived.
pub fn deliver_body(py: Python<'_>, future: &Py<PyAny>, data: Bytes, more: bool) {
    let _ = resolve(py, future.bind(py), body_message(py, &data, more));
}

/// On the Python thread: a chunk `send` had to wait for went into the
/// channel, or the client left first.
pub fn deliver_sent(py: Python<'_>, future: &Py<PyAny>, sent: bool) {
    let value = if sent {
        Ok(py.None().into_bound(py))
    } else {
        Err(match support(py) {
            Ok(s) => error(py, &s.client_disconnected, "client disconnected"),
            Err(e) => e,
        })
    };
    let _ = resolve(py, future.bind(py), value);
}
