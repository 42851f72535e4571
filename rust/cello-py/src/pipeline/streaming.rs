//! `StreamSink`: where `cello._support.pump` writes a streamed body.
//!
//! `send` returns None when the chunk was queued at once, or a future that
//! resolves (True: sent, False: client gone) once hyper has room: the
//! producer waits on a slow client instead of buffering without bound.
//! `watch` tells the pump when the client leaves while the producer is
//! idle, so an event stream that waits for its next event is not kept alive
//! for a client that is gone.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cello_core::server::StreamAborted;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyString};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::sync::oneshot;

use crate::ffi::support::{error, support};
use crate::pipeline::queue::Work;
use crate::pipeline::Runner;

type Chunk = Result<Bytes, StreamAborted>;

#[pyclass(module = "cello._cello", frozen)]
pub struct StreamSink {
    tx: Mutex<Option<mpsc::Sender<Chunk>>>,
    /// Dropped when the body ends, which stops the watcher `watch` started
    /// (it holds a sender, so the channel stays open until it stops).
    unwatch: Mutex<Option<oneshot::Sender<()>>>,
    runner: Arc<Runner>,
}

impl StreamSink {
    pub fn new(tx: mpsc::Sender<Chunk>, runner: Arc<Runner>) -> Self {
        StreamSink {
            tx: Mutex::new(Some(tx)),
            unwatch: Mutex::new(None),
            runner,
        }
    }

    fn sender(&self) -> Option<mpsc::Sender<Chunk>> {
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn take_sender(&self) -> Option<mpsc::Sender<Chunk>> {
        self.unwatch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

fn chunk_bytes(chunk: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(b) = chunk.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    if let Ok(s) = chunk.cast::<PyString>() {
        return Ok(Bytes::from(s.to_str()?.to_owned()));
    }
    if let Ok(b) = chunk.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    Err(pyo3::exceptions::PyTypeError::new_err(format!(
        "streamed chunks must be str or bytes, not {}",
        chunk.get_type().name()?
    )))
}

/// The bytes a streamed chunk stands for (str as UTF-8); the ASGI door's
/// sink uses it so both doors accept the same chunks.
#[pyfunction]
pub fn chunk_to_bytes<'py>(chunk: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyBytes>> {
    Ok(PyBytes::new(chunk.py(), &chunk_bytes(chunk)?))
}

#[pymethods]
impl StreamSink {
    /// The server sends a stream's keepalive itself (`__cello_heartbeat__`),
    /// so the pump need not run a timer for it.
    #[classattr]
    fn beats() -> bool {
        true
    }

    fn send(&self, py: Python<'_>, chunk: &Bound<'_, PyAny>) -> PyResult<Option<Py<PyAny>>> {
        let bytes = chunk_bytes(chunk)?;
        if bytes.is_empty() {
            return Ok(None);
        }
        let Some(tx) = self.sender() else {
            return Err(error(
                py,
                &support(py)?.client_disconnected,
                "response stream is closed",
            ));
        };
        match tx.try_send(Ok(bytes)) {
            Ok(()) => Ok(None),
            Err(TrySendError::Closed(_)) => Err(error(
                py,
                &support(py)?.client_disconnected,
                "client disconnected",
            )),
            Err(TrySendError::Full(item)) => {
                let Some(io) = &self.runner.native else {
                    return Err(pyo3::exceptions::PyRuntimeError::new_err(
                        "no native server to stream to",
                    ));
                };
                let future = self
                    .runner
                    .event_loop
                    .bind(py)
                    .call_method0(intern!(py, "create_future"))?
                    .unbind();
                let resolve = future.clone_ref(py);
                let queue = io.queue.clone();
                io.runtime.spawn(async move {
                    let sent = tx.send(item).await.is_ok();
                    queue.push(Work::Resolve {
                        future: resolve,
                        value: sent,
                    });
                });
                Ok(Some(future))
            }
        }
    }

    /// Resolves `gone` (an asyncio future) with False if the client leaves
    /// before the body ends. hyper drops the body's receiver as soon as it
    /// sees the connection close, even while no chunk is in flight.
    fn watch(&self, gone: Py<PyAny>) {
        let (Some(tx), Some(io)) = (self.sender(), &self.runner.native) else {
            return;
        };
        let (unwatch, stopped) = oneshot::channel::<()>();
        *self.unwatch.lock().unwrap_or_else(|p| p.into_inner()) = Some(unwatch);
        let queue = io.queue.clone();
        io.runtime.spawn(async move {
            tokio::select! {
                biased;
                _ = stopped => {}
                () = tx.closed() => queue.push(Work::Resolve {
                    future: gone,
                    value: false,
                }),
            }
        });
    }

    /// Ends the body normally.
    fn close(&self) {
        self.take_sender();
    }

    /// Ends the body as failed: the connection is dropped, not finished.
    fn abort(&self) {
        if let (Some(tx), Some(io)) = (self.take_sender(), &self.runner.native) {
            abort_stream(&io.runtime, tx);
        }
    }
}

/// Ends a streamed body as failed, waiting for room if the channel is full
/// (a plain `try_send` could lose the error and let the body end cleanly).
pub fn abort_stream(runtime: &tokio::runtime::Handle, tx: mpsc::Sender<Chunk>) {
    if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Err(StreamAborted)) {
        runtime.spawn(async move {
            let _ = tx.send(Err(StreamAborted)).await;
        });
    }
}
