//! The hand-off between the I/O side and the event loop.
//!
//! The I/O side pushes work onto a queue and the loop drains the whole
//! queue per wake-up, so under load one wake-up delivers many requests. The
//! wake-up is sent only when the loop has said it is about to sleep. With
//! I/O threads of their own, it is a byte on a socket pair the loop watches;
//! when the runtime runs inside the loop's waits (`crate::bridge::driver`), it ends
//! the current wait.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use pyo3::intern;
use pyo3::prelude::*;
use tokio::sync::oneshot;

use crate::bridge::driver::{LoopLink, RunQueued};
pub use crate::bridge::reply::NativeReply;
use crate::pipeline::{self, Completion, Endpoint, Runner, Stage};
use crate::types::body::BodyState;
use crate::types::request::{Request, RequestHead};

/// A routed request waiting for its handler.
pub struct Job {
    pub endpoint: Endpoint,
    pub head: Box<RequestHead>,
    pub body: BodyState,
    pub head_only: bool,
    pub reply: oneshot::Sender<NativeReply>,
}

/// Anything the I/O side asks of the Python thread.
// Nearly every item is a request; boxing it would add an allocation per request.
#[allow(clippy::large_enum_variant)]
pub enum Work {
    Request(Job),
    /// Resolve an asyncio future (stream back-pressure released).
    Resolve {
        future: Py<PyAny>,
        value: bool,
    },
    /// The server has stopped; resolve the `closed` future.
    Finished,
    /// Anything else for the Python thread (a hosted ASGI call's body
    /// frames and disconnects): boxed, as these are rare next to requests.
    Call(Box<dyn FnOnce(Python<'_>) + Send>),
    /// Start, as a Task, the coroutine a pipeline on an I/O thread produced
    /// (an async exception handler), and finish that pipeline.
    Settle {
        coro: Py<PyAny>,
        request: Py<Request>,
        stage: Stage,
        completion: Completion,
    },
    /// Start the pump of a stream a sync handler returned.
    Pump {
        pump: Py<PyAny>,
        request: Py<Request>,
    },
}

/// How a push wakes the loop.
pub enum Wake {
    /// Write a byte the loop's reader sees (I/O threads of their own).
    Socket(UnixStream),
    /// End the loop's wait (the runtime runs inside it).
    Loop(Arc<LoopLink>),
}

pub struct Queue {
    items: Mutex<Vec<Work>>,
    sleeping: AtomicBool,
    waker: Wake,
}

impl Work {
    pub fn call(f: impl FnOnce(Python<'_>) + Send + 'static) -> Self {
        Work::Call(Box::new(f))
    }
}

impl Queue {
    pub fn new(waker: Wake) -> Self {
        Queue {
            items: Mutex::new(Vec::with_capacity(64)),
            sleeping: AtomicBool::new(true),
            waker,
        }
    }

    pub fn push(&self, work: Work) {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(work);
        if self.sleeping.swap(false, Ordering::AcqRel) {
            match &self.waker {
                // A full socket buffer means a wake-up is already pending.
                Wake::Socket(socket) => {
                    let _ = (&*socket).write(&[1]);
                }
                Wake::Loop(link) => link.notify.notify_one(),
            }
        }
    }

    fn take(&self) -> Vec<Work> {
        std::mem::take(&mut *self.items.lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn is_empty(&self) -> bool {
        self.items
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}

/// What the loop needs to handle a server's queued work.
pub struct Dispatcher {
    pub runner: Arc<Runner>,
    pub queue: Arc<Queue>,
    pub closed: Py<PyAny>,
}

/// Starts the handler (or hosted ASGI app) of a routed request.
pub fn start_job(py: Python<'_>, runner: &Arc<Runner>, job: Job) {
    let Job {
        endpoint,
        head,
        body,
        head_only,
        reply,
    } = job;
    if reply.is_closed() {
        return; // the client left while the job was queued
    }
    match Bound::new(py, Request::new(head, body)) {
        Ok(request) => {
            let completion = Completion::Native {
                reply,
                head: head_only,
            };
            pipeline::run(py, runner, endpoint, request, completion).delivered();
        }
        Err(e) => e.print(py),
    }
}

impl Dispatcher {
    fn process(&self, py: Python<'_>, batch: Vec<Work>) {
        for work in batch {
            match work {
                Work::Request(job) => start_job(py, &self.runner, job),
                Work::Resolve { future, value } => {
                    let future = future.bind(py);
                    if !future
                        .call_method0(intern!(py, "done"))
                        .and_then(|d| d.is_truthy())
                        .unwrap_or(true)
                    {
                        let _ = future.call_method1(intern!(py, "set_result"), (value,));
                    }
                }
                Work::Call(call) => call(py),
                Work::Settle {
                    coro,
                    request,
                    stage,
                    completion,
                } => pipeline::resume(
                    py,
                    &self.runner,
                    request.bind(py),
                    coro.into_bound(py),
                    stage,
                    completion,
                )
                .delivered(),
                Work::Pump { pump, request } => {
                    pipeline::start_pump(py, &self.runner, pump.into_bound(py), request.bind(py))
                }
                Work::Finished => {
                    let closed = self.closed.bind(py);
                    if !closed
                        .call_method0(intern!(py, "done"))
                        .and_then(|d| d.is_truthy())
                        .unwrap_or(true)
                    {
                        let _ = closed.call_method1(intern!(py, "set_result"), (py.None(),));
                    }
                }
            }
        }
    }
}

impl RunQueued for Dispatcher {
    /// Handles everything queued, until the queue stays empty.
    fn run_queued(&self, py: Python<'_>) {
        let queue = &self.queue;
        loop {
            let batch = queue.take();
            if batch.is_empty() {
                queue.sleeping.store(true, Ordering::Release);
                // Work pushed between `take` and `store` saw sleeping=false and
                // sent no wake-up: look once more before really sleeping.
                if queue.is_empty() {
                    return;
                }
                queue.sleeping.store(false, Ordering::Release);
                continue;
            }
            self.process(py, batch);
        }
    }
}
