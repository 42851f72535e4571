//! One thread for everything: the asyncio event loop waits by running the
//! tokio runtime.
//!
//! With the loop on one thread and the connections on another, every async
//! request crossed threads twice, and the wake-ups cost more than the
//! handler (docs/handlers.md). With one I/O thread, Cello's event loop is a
//! stock `asyncio.SelectorEventLoop` whose selector (`cello._loop`) calls
//! [`LoopDriver::wait`] where it would call `epoll_wait`. `wait` runs the
//! runtime, connections and all, until the loop has something to do: a
//! descriptor registered with the loop is ready (the loop's own epoll
//! descriptor is registered with tokio), its next timer is due, or Rust
//! code queued work for it. Handlers start right inside the hyper task, on
//! this same thread, with no hand-over and no wake-up.

use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use tokio::io::unix::AsyncFd;
use tokio::sync::{oneshot, Notify};

use crate::bridge::fast_paths::fast_paths;
use crate::bridge::first_step::caught;
use crate::bridge::reply::NativeReply;
use crate::ffi::handle::{Field, HandleLayout};

/// What the server's I/O side shares with the loop it runs inside.
pub struct LoopLink {
    /// Ends the loop's current (or next) wait.
    pub notify: Notify,
    thread: ThreadId,
    watch: Mutex<Option<Watch>>,
    /// Answers produced while the loop ran its callbacks, sent at the start
    /// of its next wait (see `reply`).
    replies: Mutex<Vec<(oneshot::Sender<NativeReply>, NativeReply)>>,
    /// The loop's debug mode: `call_soon` then leaves the work to asyncio,
    /// which checks the thread and the callback and keeps tracebacks, and
    /// handler code run inside a wait is timed (see `debug_clock`).
    debug: AtomicBool,
}

/// The loop's own queues, as they were when its wait began.
enum Watch {
    Queues {
        ready: Py<PyAny>,
        scheduled: Py<PyAny>,
        scheduled_len: usize,
    },
    /// A loop without asyncio's queues: any Python code may have given it
    /// work, so every wait ends after some ran.
    Unknown,
}

impl LoopLink {
    /// Hands `answer` to the connection waiting for it. Sent from outside
    /// the runtime (a Task finishing in a loop callback), the wake-up would
    /// cost a syscall to unpark a runtime that is not parked; the loop is
    /// about to wait again anyway, so the answer goes out then, from inside.
    /// False if the connection is gone (known at once only when sent now).
    pub fn reply(&self, reply: oneshot::Sender<NativeReply>, answer: NativeReply) -> bool {
        if reply.is_closed() {
            return false;
        }
        if self.on_loop_thread() && tokio::runtime::Handle::try_current().is_err() {
            self.replies
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((reply, answer));
            true
        } else {
            reply.send(answer).is_ok()
        }
    }

    fn send_replies(&self) {
        let replies = std::mem::take(&mut *self.replies.lock().unwrap_or_else(|p| p.into_inner()));
        for (reply, answer) in replies {
            let _ = reply.send(answer);
        }
    }

    /// True on the thread that runs the event loop (and, inside its waits,
    /// the runtime). Only there can a handler start as a Task at once.
    pub fn on_loop_thread(&self) -> bool {
        std::thread::current().id() == self.thread
    }

    /// In debug mode, the time before a handler runs inside a wait, for
    /// `after_python` to report it if slow; `None` (and no clock read)
    /// otherwise.
    pub fn debug_clock(&self) -> Option<Instant> {
        self.debug.load(Ordering::Relaxed).then(Instant::now)
    }

    /// Called after Python code ran inside a wait: if that code gave the
    /// loop something to do (a callback to run, a new timer), the wait ends
    /// so the loop can see it; otherwise it would wait on regardless.
    ///
    /// `timed` (from `debug_clock`) is when that code, `route`'s handler,
    /// began. It ran in no asyncio Handle, so asyncio's debug mode cannot
    /// time it: a slow one is reported here as asyncio reports a slow callback.
    pub fn after_python(&self, py: Python<'_>, timed: Option<(Instant, &Py<PyString>)>) {
        if let Some((started, task_name)) = timed {
            report_if_slow(py, started, task_name);
        }
        let busy = match &*self.watch.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(Watch::Queues {
                ready,
                scheduled,
                scheduled_len,
            }) => {
                ready.bind(py).len().map_or(true, |n| n > 0)
                    || scheduled
                        .bind(py)
                        .len()
                        .map_or(true, |n| n != *scheduled_len)
            }
            Some(Watch::Unknown) => true,
            None => false,
        };
        if busy {
            self.notify.notify_one();
        }
    }
}

/// `cello._loop.report_slow_handler`: a warning from asyncio's logger if the
/// handler took longer than the loop's `slow_callback_duration`.
fn report_if_slow(py: Python<'_>, started: Instant, task_name: &Py<PyString>) {
    let seconds = started.elapsed().as_secs_f64();
    let reported = py
        .import("cello._loop")
        .and_then(|m| m.getattr("report_slow_handler"))
        .and_then(|report| report.call1((task_name.bind(py), seconds)));
    if let Err(e) = reported {
        e.print(py);
    }
}

/// The runtime of a Cello event loop, and the link its servers use.
#[pyclass(module = "cello._cello", frozen)]
pub struct LoopDriver {
    pub link: Arc<LoopLink>,
    runtime: Mutex<Option<Arc<tokio::runtime::Runtime>>>,
    /// The platform selector that keeps the loop's descriptors.
    inner: Py<PyAny>,
    /// Its epoll (or kqueue) descriptor, registered with tokio.
    selector: Mutex<Option<Arc<AsyncFd<OwnedFd>>>>,
    /// The loop's selector reported events last time: look again before blocking.
    more: AtomicBool,
    event_loop: Mutex<Option<Py<PyAny>>>,
    servers: Mutex<Vec<Weak<dyn RunQueued>>>,
    /// Set by `bind` when `call_soon` makes the loop's Handles itself.
    scheduling: Mutex<Option<Arc<Scheduling>>>,
    /// The next `call_soon` is a new Task's first step, for `EagerStart`.
    catch_next: AtomicBool,
    /// The loop has a task factory, which `EventLoop.set_task_factory` keeps
    /// here: `EagerStart` asks once per Task, and an atomic costs nothing.
    task_factory: AtomicBool,
}

/// What `LoopDriver.call_soon` needs to make an `asyncio.Handle` itself.
struct Scheduling {
    event_loop: Py<PyAny>,
    /// Where `asyncio.Handle` keeps its fields.
    layout: &'static HandleLayout,
    /// `loop._ready.append`
    append: Py<PyAny>,
    /// `asyncio.BaseEventLoop.call_soon`, for debug mode and closed loops.
    stock: Py<PyAny>,
    /// Set when `_run_once` is this driver's too (see `bind`).
    iteration: Option<Iteration>,
}

/// What `LoopDriver.run_once` needs besides `Scheduling`.
struct Iteration {
    /// `loop._ready`, the deque of callbacks due, and its `popleft`.
    ready: Py<PyAny>,
    popleft: Py<PyAny>,
    /// `asyncio.BaseEventLoop._run_once`: in debug mode, and to sweep a
    /// timer heap that is mostly cancelled timers.
    stock: Py<PyAny>,
    heappop: Py<PyAny>,
    /// `cello._loop.report_callback_error`: `Handle._run`'s error branch.
    report: Py<PyAny>,
    /// `loop.time`, or `time.monotonic` itself when that is all it does
    /// (asyncio's own): the clock is read twice per iteration with timers
    /// pending, and asyncio's `time` is a Python frame.
    clock: Py<PyAny>,
    /// asyncio's `MAXIMUM_SELECT_TIMEOUT`, `_MIN_SCHEDULED_TIMER_HANDLES`
    /// and `_MIN_CANCELLED_TIMER_HANDLES_FRACTION`.
    max_timeout: f64,
    sweep_above: usize,
    sweep_fraction: f64,
}

impl LoopDriver {
    /// Makes the next `call_soon` hand its callback to `EagerStart` instead
    /// of scheduling it (a new Task's first step, on Python 3.11).
    pub(crate) fn catch_next_call(&self) {
        self.catch_next.store(true, Ordering::Relaxed);
    }

    /// Disarms `catch_next_call` if no `call_soon` came.
    pub(crate) fn clear_catch(&self) {
        self.catch_next.store(false, Ordering::Relaxed);
    }

    /// Whether the loop has a task factory (`loop.set_task_factory`).
    pub(crate) fn has_task_factory(&self) -> bool {
        self.task_factory.load(Ordering::Relaxed)
    }

    /// Whether `call_soon` is this driver's (see `bind`).
    pub(crate) fn schedules(&self) -> bool {
        self.scheduling().is_some()
    }

    /// Shared out so no lock is held while Python code runs.
    fn scheduling(&self) -> Option<Arc<Scheduling>> {
        self.scheduling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn runtime(&self) -> PyResult<Arc<tokio::runtime::Runtime>> {
        self.runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("the event loop is closed"))
    }

    /// Has work a server queued for the loop handled after each wait.
    pub fn add_server(&self, server: &Arc<dyn RunQueued>) {
        let mut servers = self.servers.lock().unwrap_or_else(|p| p.into_inner());
        servers.retain(|s| s.strong_count() > 0);
        servers.push(Arc::downgrade(server));
    }

    fn snapshot(&self, py: Python<'_>) -> PyResult<()> {
        let event_loop = self.event_loop.lock().unwrap_or_else(|p| p.into_inner());
        let Some(event_loop) = &*event_loop else {
            return Err(PyRuntimeError::new_err("LoopDriver.bind() was not called"));
        };
        let event_loop = event_loop.bind(py);
        // Private attributes of asyncio's BaseEventLoop (3.4 onwards): the
        // ready callbacks and the timer heap. Only read, never changed.
        let queues = (|| -> PyResult<Watch> {
            let ready = event_loop.getattr(intern!(py, "_ready"))?;
            let scheduled = event_loop.getattr(intern!(py, "_scheduled"))?;
            let scheduled_len = scheduled.len()?;
            Ok(Watch::Queues {
                ready: ready.unbind(),
                scheduled: scheduled.unbind(),
                scheduled_len,
            })
        })();
        *self.link.watch.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(queues.unwrap_or(Watch::Unknown));
        Ok(())
    }

    fn run_queued(&self, py: Python<'_>) {
        let servers: Vec<Arc<dyn RunQueued>> = self
            .servers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for server in servers {
            server.run_queued(py);
        }
    }
}

/// Whether `run_once` can stand in for the loop's `_run_once`: asyncio's is
/// one `run_once` follows (`crate::bridge::fast_paths`), and the loop's class keeps
/// asyncio's own `_run_once` and `_process_events`.
fn iteration_of(event_loop: &Bound<'_, PyAny>) -> PyResult<bool> {
    let py = event_loop.py();
    if !fast_paths(py)?.run_once {
        return Ok(false);
    }
    let asyncio = py.import("asyncio")?;
    let class = event_loop.get_type();
    let stock_run_once = asyncio
        .getattr("BaseEventLoop")?
        .getattr(intern!(py, "_run_once"))?;
    let Ok(stock_events) = py
        .import("asyncio.selector_events")?
        .getattr("BaseSelectorEventLoop")?
        .getattr(intern!(py, "_process_events"))
    else {
        return Ok(false);
    };
    Ok(class.getattr(intern!(py, "_run_once"))?.is(&stock_run_once)
        && class
            .getattr(intern!(py, "_process_events"))?
            .is(&stock_events))
}

/// What `run_once` needs of `event_loop`, or None if asyncio's module lacks
/// one of the constants its `_run_once` uses.
fn iteration(
    event_loop: &Bound<'_, PyAny>,
    ready: &Bound<'_, PyAny>,
) -> PyResult<Option<Iteration>> {
    let py = event_loop.py();
    let base_events = py.import("asyncio.base_events")?;
    let constant = |name: &str| base_events.getattr(name).and_then(|v| v.extract::<f64>());
    let (Ok(max_timeout), Ok(sweep_above), Ok(sweep_fraction)) = (
        constant("MAXIMUM_SELECT_TIMEOUT"),
        constant("_MIN_SCHEDULED_TIMER_HANDLES"),
        constant("_MIN_CANCELLED_TIMER_HANDLES_FRACTION"),
    ) else {
        return Ok(None);
    };
    let base = base_events.getattr("BaseEventLoop")?;
    let clock = if event_loop
        .get_type()
        .getattr(intern!(py, "time"))?
        .is(base.getattr(intern!(py, "time"))?)
    {
        py.import("time")?.getattr("monotonic")?
    } else {
        event_loop.getattr(intern!(py, "time"))?
    };
    Ok(Some(Iteration {
        ready: ready.clone().unbind(),
        popleft: ready.getattr(intern!(py, "popleft"))?.unbind(),
        stock: base.getattr(intern!(py, "_run_once"))?.unbind(),
        heappop: py.import("heapq")?.getattr("heappop")?.unbind(),
        report: py
            .import("cello._loop")?
            .getattr("report_callback_error")?
            .unbind(),
        clock: clock.unbind(),
        max_timeout,
        sweep_above: sweep_above as usize,
        sweep_fraction,
    }))
}

/// `asyncio.Handle._run` for a plain Handle: the callback in its context;
/// an exception other than SystemExit and KeyboardInterrupt goes to the
/// loop's exception handler, as asyncio reports it.
fn run_handle(
    py: Python<'_>,
    layout: &HandleLayout,
    handle: &Bound<'_, PyAny>,
    report: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let args = layout.get(handle, Field::Args)?;
    let Ok(args) = args.cast::<PyTuple>() else {
        handle.call_method0(intern!(py, "_run"))?;
        return Ok(());
    };
    let context = layout.get(handle, Field::Context)?;
    let callback = layout.get(handle, Field::Callback)?;
    match crate::ffi::capi::run_tuple_in_context(&context, &callback, args) {
        Ok(_) => Ok(()),
        Err(e)
            if e.is_instance_of::<pyo3::exceptions::PySystemExit>(py)
                || e.is_instance_of::<pyo3::exceptions::PyKeyboardInterrupt>(py) =>
        {
            Err(e)
        }
        Err(e) => {
            report.call1((handle, e.into_value(py)))?;
            Ok(())
        }
    }
}

/// Lets the runtime run its ready tasks and poll its drivers once, without
/// blocking: ready the second time it is polled.
struct Tick(bool);

impl std::future::Future for Tick {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

#[pymethods]
impl LoopDriver {
    /// `selector` is the platform selector (`selectors.DefaultSelector`)
    /// that keeps the loop's descriptors; its own descriptor (epoll, kqueue)
    /// is what the runtime watches.
    #[new]
    fn new(selector: Bound<'_, PyAny>) -> PyResult<Self> {
        let selector_fd: RawFd = selector
            .call_method0(intern!(selector.py(), "fileno"))?
            .extract()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        if selector_fd < 0 {
            return Err(PyValueError::new_err(
                "selector_fd must be a file descriptor",
            ));
        }
        // SAFETY: only borrowed long enough to duplicate it; the copy is ours
        // and stays open as long as the registration that uses it.
        let selector_fd = unsafe { BorrowedFd::borrow_raw(selector_fd) }.try_clone_to_owned()?;
        let registered = {
            let _entered = runtime.enter();
            // SAFETY: `selector_fd` is owned by the AsyncFd, so it stays open
            // and the same descriptor for the AsyncFd's whole life.
            unsafe { AsyncFd::register_with_interest(selector_fd, tokio::io::Interest::READABLE) }
                .map_err(|e| e.into_parts().1)?
        };
        Ok(LoopDriver {
            link: Arc::new(LoopLink {
                notify: Notify::new(),
                thread: std::thread::current().id(),
                watch: Mutex::new(None),
                replies: Mutex::new(Vec::new()),
                debug: AtomicBool::new(false),
            }),
            runtime: Mutex::new(Some(Arc::new(runtime))),
            inner: selector.unbind(),
            selector: Mutex::new(Some(Arc::new(registered))),
            more: AtomicBool::new(false),
            event_loop: Mutex::new(None),
            servers: Mutex::new(Vec::new()),
            scheduling: Mutex::new(None),
            catch_next: AtomicBool::new(false),
            task_factory: AtomicBool::new(false),
        })
    }

    /// Ties the driver to the loop whose selector it serves, and, where
    /// asyncio's Handle has the fields it knows, installs `call_soon` on the
    /// loop instance: every Task step and future callback passes there,
    /// several times per request, and asyncio's costs a Python frame or two.
    fn bind(slf: &Bound<'_, Self>, event_loop: Bound<'_, PyAny>) -> PyResult<()> {
        let py = slf.py();
        let driver = slf.get();
        *driver.event_loop.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(event_loop.clone().unbind());
        let asyncio = py.import("asyncio")?;
        let Some(layout) = fast_paths(py)?.handle_layout.as_ref() else {
            return Ok(());
        };
        // A loop without asyncio's ready queue keeps its own call_soon.
        let Ok(ready) = event_loop.getattr(intern!(py, "_ready")) else {
            return Ok(());
        };
        let iteration = match iteration_of(&event_loop)? {
            true => iteration(&event_loop, &ready)?,
            false => None,
        };
        let fast_iteration = iteration.is_some();
        *driver.scheduling.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(Scheduling {
            event_loop: event_loop.clone().unbind(),
            layout,
            append: ready.getattr(intern!(py, "append"))?.unbind(),
            stock: asyncio
                .getattr("BaseEventLoop")?
                .getattr(intern!(py, "call_soon"))?
                .unbind(),
            iteration,
        }));
        event_loop.setattr(
            intern!(py, "call_soon"),
            slf.getattr(intern!(py, "call_soon"))?,
        )?;
        if fast_iteration {
            event_loop.setattr(
                intern!(py, "_run_once"),
                slf.getattr(intern!(py, "run_once"))?,
            )?;
        }
        Ok(())
    }

    /// `loop._run_once()`: one iteration of the event loop, as asyncio's
    /// `BaseEventLoop._run_once` runs it, without its Python frames. It runs
    /// every iteration, at least once per awaiting request, timers pending
    /// or not (a worker process always has one: the parent watch). In debug
    /// mode asyncio's own runs, for its slow-callback warnings, and so it
    /// does for the rare iteration that sweeps a heap of mostly cancelled
    /// timers.
    fn run_once(&self, py: Python<'_>) -> PyResult<()> {
        let scheduling = self.scheduling();
        let Some((scheduling, iteration)) = scheduling
            .as_deref()
            .and_then(|s| Some((s, s.iteration.as_ref()?)))
        else {
            return Err(PyRuntimeError::new_err("Event loop is closed"));
        };
        let event_loop = scheduling.event_loop.bind(py);
        let layout = &scheduling.layout;
        let (ready, popleft, report) = (
            iteration.ready.bind(py),
            iteration.popleft.bind(py),
            iteration.report.bind(py),
        );
        let (heappop, clock) = (iteration.heappop.bind(py), iteration.clock.bind(py));
        let now = || -> PyResult<f64> { clock.call0()?.extract() };
        let stock = || -> PyResult<()> { iteration.stock.bind(py).call1((event_loop,)).map(drop) };
        if self.link.debug.load(Ordering::Relaxed) {
            return stock();
        }
        let scheduled = event_loop.getattr(intern!(py, "_scheduled"))?;
        let mut timers = scheduled.len()?;
        if timers > iteration.sweep_above {
            let cancelled: f64 = event_loop
                .getattr(intern!(py, "_timer_cancelled_count"))?
                .extract()?;
            if cancelled / timers as f64 > iteration.sweep_fraction {
                return stock();
            }
        }
        // Cancelled timers at the head of the heap are dropped, as asyncio does.
        while timers > 0 {
            let head = scheduled.get_item(0)?;
            if !head.getattr(intern!(py, "_cancelled"))?.is_truthy()? {
                break;
            }
            let cancelled: isize = event_loop
                .getattr(intern!(py, "_timer_cancelled_count"))?
                .extract()?;
            event_loop.setattr(intern!(py, "_timer_cancelled_count"), cancelled - 1)?;
            heappop
                .call1((&scheduled,))?
                .setattr(intern!(py, "_scheduled"), false)?;
            timers -= 1;
        }
        let stopping = event_loop.getattr(intern!(py, "_stopping"))?.is_truthy()?;
        let timeout = if ready.len()? > 0 || stopping {
            Some(0.0)
        } else if timers > 0 {
            let when: f64 = scheduled
                .get_item(0)?
                .getattr(intern!(py, "_when"))?
                .extract()?;
            Some((when - now()?).clamp(0.0, iteration.max_timeout))
        } else {
            None
        };
        drop(scheduled);
        let events = self.select(py, timeout)?;
        // asyncio's `_process_events` does nothing with no events.
        if events.len()? > 0 {
            event_loop.call_method1(intern!(py, "_process_events"), (&events,))?;
        }
        drop(events);
        // Read again: a handler that ran inside the wait may have set a timer.
        let scheduled = event_loop.getattr(intern!(py, "_scheduled"))?;
        if scheduled.len()? > 0 {
            let end = now()?
                + event_loop
                    .getattr(intern!(py, "_clock_resolution"))?
                    .extract::<f64>()?;
            while scheduled.len()? > 0 {
                let when: f64 = scheduled
                    .get_item(0)?
                    .getattr(intern!(py, "_when"))?
                    .extract()?;
                if when >= end {
                    break;
                }
                let handle = heappop.call1((&scheduled,))?;
                handle.setattr(intern!(py, "_scheduled"), false)?;
                ready.call_method1(intern!(py, "append"), (handle,))?;
            }
        }
        // Callbacks scheduled by these callbacks wait for the next iteration.
        let due = ready.len()?;
        for _ in 0..due {
            let handle = popleft.call0()?;
            if layout.get(&handle, Field::Cancelled)?.is_truthy()? {
                continue;
            }
            if handle.get_type().is(layout.handle_type(py)) {
                run_handle(py, layout, &handle, report)?;
            } else {
                handle.call_method0(intern!(py, "_run"))?;
            }
        }
        Ok(())
    }

    /// `loop.call_soon(callback, *args, context=None)`: asyncio's, with the
    /// Handle made here.
    #[pyo3(signature = (callback, *args, context = None))]
    fn call_soon<'py>(
        &self,
        py: Python<'py>,
        callback: Bound<'py, PyAny>,
        args: Bound<'py, PyTuple>,
        context: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Some(scheduling) = self.scheduling() else {
            return Err(PyRuntimeError::new_err("Event loop is closed"));
        };
        if self.catch_next.swap(false, Ordering::Relaxed) {
            caught(callback.unbind(), args.unbind(), context.map(Bound::unbind));
            return Ok(py.None().into_bound(py));
        }
        let event_loop = scheduling.event_loop.bind(py);
        if self.link.debug.load(Ordering::Relaxed) {
            let mut call_args = vec![event_loop.clone(), callback];
            call_args.extend(args.iter());
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "context"), context)?;
            return scheduling
                .stock
                .bind(py)
                .call(PyTuple::new(py, call_args)?, Some(&kwargs));
        }
        let context = match context {
            Some(context) if !context.is_none() => context,
            _ => crate::ffi::capi::copy_context(py)?,
        };
        // What Handle.__init__ does with debug off, without its Python frame.
        let handle = scheduling.layout.new_handle(
            py,
            [
                callback,
                args.into_any(),
                pyo3::types::PyBool::new(py, false).to_owned().into_any(),
                event_loop.clone(),
                py.None().into_bound(py),
                py.None().into_bound(py),
                context,
            ],
        )?;
        scheduling.append.bind(py).call1((&handle,))?;
        Ok(handle)
    }

    /// The loop's debug mode, which `EventLoop.set_debug` keeps here.
    #[getter]
    fn get_debug(&self) -> bool {
        self.link.debug.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_debug(&self, debug: bool) {
        self.link.debug.store(debug, Ordering::Relaxed);
    }

    /// Whether the loop has a task factory, which `EventLoop.set_task_factory`
    /// keeps here.
    #[getter]
    fn get_task_factory_set(&self) -> bool {
        self.has_task_factory()
    }

    #[setter]
    fn set_task_factory_set(&self, set: bool) {
        self.task_factory.store(set, Ordering::Relaxed);
    }

    /// `selectors.BaseSelector.select`: waits as `wait` does, then returns
    /// the ready descriptors of the platform selector.
    #[pyo3(signature = (timeout = None))]
    fn select<'py>(&self, py: Python<'py>, timeout: Option<f64>) -> PyResult<Bound<'py, PyAny>> {
        if !self.wait(py, timeout)? {
            return Ok(pyo3::types::PyList::empty(py).into_any());
        }
        let ready = self
            .inner
            .bind(py)
            .call_method1(intern!(py, "select"), (0,))?;
        self.more.store(ready.is_truthy()?, Ordering::Release);
        Ok(ready)
    }

    /// Runs the runtime until the loop has work or `timeout` seconds pass
    /// (`None`: no limit; 0: do not block). Returns True when the loop's
    /// selector may have ready descriptors.
    #[pyo3(signature = (timeout = None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        if !self.link.on_loop_thread() {
            return Err(PyRuntimeError::new_err(
                "a Cello event loop runs only on the thread that created it",
            ));
        }
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PyRuntimeError::new_err(
                "the event loop cannot wait from inside a request handler",
            ));
        }
        let timeout = match timeout {
            Some(t) if t.is_nan() => return Err(PyValueError::new_err("timeout is NaN")),
            Some(t) => Some(Duration::from_secs_f64(t.clamp(0.0, 86_400.0))),
            None => None,
        };
        let runtime = self.runtime()?;
        let Some(selector) = self
            .selector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        else {
            return Err(PyRuntimeError::new_err("the event loop is closed"));
        };
        let look_again = self.more.swap(false, Ordering::AcqRel);
        let blocking = !look_again && timeout != Some(Duration::ZERO);
        self.snapshot(py)?;
        let link = self.link.clone();
        let ready = py.detach(|| {
            runtime.block_on(async {
                link.send_replies();
                if blocking {
                    let sleep = async {
                        match timeout {
                            Some(t) => tokio::time::sleep(t).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        biased;
                        _ = link.notify.notified() => false,
                        readable = selector.readable() => {
                            // Cleared before the loop reads its selector: an
                            // event after this point wakes the next wait.
                            if let Ok(mut guard) = readable {
                                guard.clear_ready();
                            }
                            true
                        }
                        _ = sleep => false,
                    }
                } else {
                    Tick(false).await;
                    tokio::select! {
                        biased;
                        readable = selector.readable() => {
                            if let Ok(mut guard) = readable {
                                guard.clear_ready();
                            }
                            true
                        }
                        _ = std::future::ready(()) => look_again,
                    }
                }
            })
        });
        *self.link.watch.lock().unwrap_or_else(|p| p.into_inner()) = None;
        self.run_queued(py);
        Ok(ready)
    }

    /// Whether the loop's last look at its selector found events (then the
    /// next wait looks again before blocking: a level-triggered descriptor
    /// that is still ready raises no new edge).
    #[getter]
    fn get_more(&self) -> bool {
        self.more.load(Ordering::Acquire)
    }

    #[setter]
    fn set_more(&self, more: bool) {
        self.more.store(more, Ordering::Release);
    }

    /// Stops the runtime; tasks still in it (connections cut off by the
    /// shutdown timeout) are dropped.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err(PyRuntimeError::new_err(
                "the event loop cannot be closed from inside a request handler",
            ));
        }
        self.selector
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.event_loop
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        self.scheduling
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let runtime = self
            .runtime
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(runtime) = runtime {
            py.detach(move || drop(runtime));
        }
        Ok(())
    }
}

/// A server's queue of work for the loop, handled after each wait.
pub trait RunQueued: Send + Sync {
    fn run_queued(&self, py: Python<'_>);
}
