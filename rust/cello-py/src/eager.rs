//! Starting a Task eagerly: its first step runs inside the call that makes
//! it, so a handler that finishes without suspending needs no trip through
//! the event loop, yet runs inside a real Task (`asyncio.current_task()`,
//! `asyncio.timeout()` and anyio cancel scopes behave as anywhere else).

use std::sync::Mutex;

use pyo3::exceptions::PyRuntimeError;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

/// `start(coro) -> Task`, stepping the Task once right away.
///
/// Python 3.12+ has this built in (`eager_start=True`). Python 3.11 does
/// not: a new Task schedules its first step with `loop.call_soon`, so
/// `EagerStart` shadows that method on the loop instance while the Task is
/// made, catches the step, and runs it at once.
#[pyclass(module = "cello._cello", frozen)]
pub struct EagerStart {
    event_loop: Py<PyAny>,
    task_type: Py<PyAny>,
    /// `{"loop": loop}`, plus `eager_start=True` on 3.12+.
    task_kwargs: Py<PyDict>,
    /// Python 3.11 only.
    catch: Option<Py<CatchStep>>,
    current_tasks: Option<Py<PyDict>>,
    enter_task: Option<Py<PyAny>>,
    leave_task: Option<Py<PyAny>>,
}

/// A scheduled callback: `(callback, args, context)`.
type Scheduled = (Py<PyAny>, Py<PyTuple>, Option<Py<PyAny>>);

/// Stands in for `loop.call_soon` while a Task is made (Python 3.11).
#[pyclass(module = "cello._cello", frozen)]
pub struct CatchStep {
    caught: Mutex<Option<Scheduled>>,
}

#[pymethods]
impl CatchStep {
    #[pyo3(signature = (callback, *args, context = None))]
    fn __call__(&self, callback: Py<PyAny>, args: Py<PyTuple>, context: Option<Py<PyAny>>) {
        *self.caught.lock().unwrap_or_else(|p| p.into_inner()) = Some((callback, args, context));
    }
}

#[pymethods]
impl EagerStart {
    #[new]
    fn new(py: Python<'_>, event_loop: Py<PyAny>) -> PyResult<Self> {
        let tasks = py.import("asyncio.tasks")?;
        let built_in = py.version_info() >= (3, 12);
        let task_kwargs = PyDict::new(py);
        task_kwargs.set_item("loop", &event_loop)?;
        if built_in {
            task_kwargs.set_item("eager_start", true)?;
        }
        let get = |name: &str| -> PyResult<Option<Py<PyAny>>> {
            Ok(if built_in {
                None
            } else {
                Some(tasks.getattr(name)?.unbind())
            })
        };
        Ok(EagerStart {
            task_type: tasks.getattr("Task")?.unbind(),
            task_kwargs: task_kwargs.unbind(),
            catch: if built_in {
                None
            } else {
                Some(Py::new(
                    py,
                    CatchStep {
                        caught: Mutex::new(None),
                    },
                )?)
            },
            current_tasks: get("_current_tasks")?
                .map(|d| d.into_bound(py).cast_into::<PyDict>().map(Bound::unbind))
                .transpose()?,
            enter_task: get("_enter_task")?,
            leave_task: get("_leave_task")?,
            event_loop,
        })
    }

    fn __call__<'py>(
        &self,
        py: Python<'py>,
        coro: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let new_task = || {
            self.task_type
                .bind(py)
                .call((coro,), Some(self.task_kwargs.bind(py)))
        };
        let (Some(catch), Some(current_tasks), Some(enter), Some(leave)) = (
            &self.catch,
            &self.current_tasks,
            &self.enter_task,
            &self.leave_task,
        ) else {
            return new_task();
        };
        let event_loop = self.event_loop.bind(py);
        event_loop.setattr(intern!(py, "call_soon"), catch)?;
        let task = new_task();
        event_loop.delattr(intern!(py, "call_soon"))?;
        let task = task?;
        let caught = catch
            .get()
            .caught
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some((step, args, context)) = caught else {
            return Err(PyRuntimeError::new_err(
                "the new Task scheduled no first step",
            ));
        };
        // Called from inside another task (an ASGI server's), the new one
        // steps as that task's guest, as 3.12's eager tasks do.
        let outer = current_tasks.bind(py).get_item(event_loop)?;
        if let Some(outer) = &outer {
            leave.bind(py).call1((event_loop, outer))?;
        }
        let stepped = match context {
            Some(context) => {
                let mut call_args = vec![step.into_bound(py)];
                call_args.extend(args.bind(py).iter());
                context
                    .bind(py)
                    .call_method1(intern!(py, "run"), PyTuple::new(py, call_args)?)
                    .map(drop)
            }
            None => step.bind(py).call1(args.bind(py)).map(drop),
        };
        if let Some(outer) = &outer {
            enter.bind(py).call1((event_loop, outer))?;
        }
        stepped?;
        Ok(task)
    }
}
