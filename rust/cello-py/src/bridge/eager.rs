//! Starting a Task eagerly: its first step runs inside the call that makes
//! it, so a handler that finishes without suspending needs no trip through
//! the event loop, yet runs inside a real Task (`asyncio.current_task()`,
//! `asyncio.timeout()` and anyio cancel scopes behave as anywhere else).

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};

use crate::bridge::driver::LoopDriver;
use crate::bridge::fast_paths::{fast_paths, StepHooks};
use crate::bridge::first_step::{caught, take_caught};

/// `start(coro, name=None) -> Task`, stepping the Task once right away.
///
/// Python 3.12+ has this built in (`eager_start=True`). Python 3.11 does
/// not: a new Task schedules its first step with `loop.call_soon`, so
/// `EagerStart` shadows that method on the loop instance while the Task is
/// made, catches the step, and runs it at once. Where asyncio has neither
/// (`crate::bridge::fast_paths`), or a task factory is set on the loop, the Task is
/// made as `loop.create_task` makes it and its first step waits its turn.
#[pyclass(module = "cello._cello", frozen)]
pub struct EagerStart {
    event_loop: Py<PyAny>,
    task_type: Py<PyAny>,
    /// `{"loop": loop, "name": ...}`, plus `eager_start=True` on 3.12+.
    /// One dict for every Task: `name` is replaced before each call, and
    /// Task() has read its arguments before any other Python code runs.
    task_kwargs: Py<PyDict>,
    /// Python 3.11 only: how the first step is caught, and the asyncio
    /// functions that run it as the Task's own step would.
    catch: Option<(Catch, &'static StepHooks)>,
    factory: Factory,
}

/// How `EagerStart` sees whether the loop has a task factory
/// (`loop.set_task_factory`), which must then make every Task.
enum Factory {
    /// Cello's event loop keeps a flag in its driver.
    Driver(Py<LoopDriver>),
    /// asyncio's loops keep it in the instance dict: one lookup per Task.
    Field(Py<PyDict>),
    /// Any other loop (uvloop) is asked.
    Ask(Py<PyAny>),
}

/// How `EagerStart` catches a new Task's first step on Python 3.11.
enum Catch {
    /// Cello's event loop: its `call_soon` (the driver's) hands it over.
    Driver(Py<LoopDriver>),
    /// Any other loop: `catch_step` shadows `call_soon` on the instance.
    Shadow(Py<PyAny>),
}

/// Stands in for `loop.call_soon` while a Task is made (Python 3.11). A
/// function rather than a callable object: the Task's C code calls it with
/// the vectorcall protocol, which a function takes without building a
/// tuple and a dict of the arguments first.
#[pyfunction]
#[pyo3(signature = (callback, *args, context = None))]
fn catch_step(callback: Py<PyAny>, args: Py<PyTuple>, context: Option<Py<PyAny>>) {
    caught(callback, args, context);
}

#[pymethods]
impl EagerStart {
    #[new]
    fn new(py: Python<'_>, event_loop: Py<PyAny>) -> PyResult<Self> {
        let tasks = py.import("asyncio.tasks")?;
        let found = fast_paths(py)?;
        let task_kwargs = PyDict::new(py);
        task_kwargs.set_item("loop", &event_loop)?;
        task_kwargs.set_item("name", py.None())?;
        if found.eager_start {
            task_kwargs.set_item("eager_start", true)?;
        }
        let bound_loop = event_loop.bind(py);
        let catch = match &found.eager_step {
            Some(hooks) => {
                let driver = bound_loop
                    .getattr(intern!(py, "driver"))
                    .ok()
                    .and_then(|d| d.cast_into::<LoopDriver>().ok())
                    .filter(|d| d.get().schedules());
                let catch = match driver {
                    Some(driver) => Catch::Driver(driver.unbind()),
                    None => Catch::Shadow(wrap_pyfunction!(catch_step, py)?.into_any().unbind()),
                };
                Some((catch, hooks))
            }
            None => None,
        };
        let driver = bound_loop
            .getattr(intern!(py, "driver"))
            .ok()
            .and_then(|d| d.cast_into::<LoopDriver>().ok());
        let fields = || {
            bound_loop
                .getattr(intern!(py, "__dict__"))
                .ok()
                .and_then(|d| d.cast_into::<PyDict>().ok())
                .filter(|d| d.contains(intern!(py, "_task_factory")).unwrap_or(false))
        };
        let factory = match (driver, fields()) {
            (Some(driver), _) => Factory::Driver(driver.unbind()),
            (None, Some(fields)) => Factory::Field(fields.unbind()),
            (None, None) => Factory::Ask(bound_loop.getattr("get_task_factory")?.unbind()),
        };
        Ok(EagerStart {
            task_type: tasks.getattr("Task")?.unbind(),
            task_kwargs: task_kwargs.unbind(),
            catch,
            factory,
            event_loop,
        })
    }

    #[pyo3(signature = (coro, name = None))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        coro: &Bound<'py, PyAny>,
        name: Option<&Bound<'py, PyString>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.start(py, coro, name)
    }
}

impl EagerStart {
    /// Whether the loop has a task factory.
    fn has_factory(&self, py: Python<'_>) -> PyResult<bool> {
        Ok(match &self.factory {
            Factory::Driver(driver) => driver.get().has_task_factory(),
            Factory::Field(fields) => fields
                .bind(py)
                .get_item(intern!(py, "_task_factory"))?
                .is_some_and(|f| !f.is_none()),
            Factory::Ask(get) => !get.bind(py).call0()?.is_none(),
        })
    }

    /// Makes a Task of `coro` named `name` (None: asyncio's `Task-N`) and
    /// runs its first step.
    pub fn start<'py>(
        &self,
        py: Python<'py>,
        coro: &Bound<'py, PyAny>,
        name: Option<&Bound<'py, PyString>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let event_loop = self.event_loop.bind(py);
        if self.has_factory(py)? {
            // Integrations (tracing, Sentry) see every Task through the
            // factory they set; eagerness is the factory's to decide.
            let kwargs = PyDict::new(py);
            kwargs.set_item(intern!(py, "name"), name)?;
            return event_loop.call_method(intern!(py, "create_task"), (coro,), Some(&kwargs));
        }
        let kwargs = self.task_kwargs.bind(py);
        match name {
            Some(name) => kwargs.set_item(intern!(py, "name"), name)?,
            None => kwargs.set_item(intern!(py, "name"), py.None())?,
        }
        let new_task = || self.task_type.bind(py).call((coro,), Some(kwargs));
        let Some((catch, hooks)) = &self.catch else {
            return new_task();
        };
        let task = match catch {
            Catch::Driver(driver) => {
                driver.get().catch_next_call();
                let task = new_task();
                driver.get().clear_catch();
                task
            }
            Catch::Shadow(catch_step) => {
                event_loop.setattr(intern!(py, "call_soon"), catch_step)?;
                let task = new_task();
                event_loop.delattr(intern!(py, "call_soon"))?;
                task
            }
        };
        // Taken before any error returns, so a Task that failed after
        // scheduling its step leaves nothing behind for the next one.
        let caught = take_caught();
        let task = task?;
        let Some((step, args, context)) = caught else {
            return Err(PyRuntimeError::new_err(
                "the new Task scheduled no first step",
            ));
        };
        // Called from inside another task (an ASGI server's), the new one
        // steps as that task's guest, as 3.12's eager tasks do.
        let (enter, leave) = (hooks.enter_task.bind(py), hooks.leave_task.bind(py));
        let outer = hooks.current_tasks.bind(py).get_item(event_loop)?;
        if let Some(outer) = &outer {
            leave.call1((event_loop, outer))?;
        }
        let stepped = match context {
            Some(context) => crate::ffi::capi::run_tuple_in_context(
                context.bind(py),
                step.bind(py),
                args.bind(py),
            )
            .map(drop),
            None => step.bind(py).call1(args.bind(py)).map(drop),
        };
        if let Some(outer) = &outer {
            enter.call1((event_loop, outer))?;
        }
        stepped?;
        Ok(task)
    }
}

/// How a pipeline starts Tasks: Cello's eager start, or (for a loop it
/// cannot shadow `call_soon` on) the loop's own `create_task`.
pub enum TaskStarter {
    Eager(Py<EagerStart>),
    Plain(Py<PyAny>),
}

impl TaskStarter {
    pub fn new(py: Python<'_>, start: Py<PyAny>) -> Self {
        match start.bind(py).cast::<EagerStart>() {
            Ok(eager) => TaskStarter::Eager(eager.clone().unbind()),
            Err(_) => TaskStarter::Plain(start),
        }
    }

    /// Starts `coro` as a Task named `name`.
    pub fn start<'py>(
        &self,
        py: Python<'py>,
        coro: &Bound<'py, PyAny>,
        name: Option<&Bound<'py, PyString>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        match self {
            TaskStarter::Eager(eager) => eager.get().start(py, coro, name),
            TaskStarter::Plain(create_task) => {
                let kwargs = PyDict::new(py);
                if let Some(name) = name {
                    kwargs.set_item(intern!(py, "name"), name)?;
                }
                create_task.bind(py).call((coro,), Some(&kwargs))
            }
        }
    }
}
