//! Which of the fast paths that lean on asyncio's internals this interpreter
//! takes, decided once by looking at what asyncio has, never by its version.
//!
//! The one abi3 wheel runs on every CPython from 3.11 on, including ones
//! not yet released. Each fast path below stands in for a piece of asyncio
//! it has to match exactly; each is taken only when asyncio has the fields,
//! functions or code that fast path was written against, and otherwise
//! asyncio's own code runs. `CELLO_NO_FAST_PATHS=1` in the environment
//! turns them all off, to check the fallbacks or to rule the fast paths out
//! when chasing a bug.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyDict;

use crate::ffi::handle::{HandleLayout, HANDLE_SLOTS};

/// What the fast paths found in this interpreter's asyncio.
pub(crate) struct FastPaths {
    /// `asyncio.Task(..., eager_start=True)` exists (3.12+).
    pub eager_start: bool,
    /// Where asyncio has no eager start, what `EagerStart` needs to run a
    /// new Task's first step itself (3.11).
    pub eager_step: Option<StepHooks>,
    /// Where `asyncio.Handle` keeps its fields, for the driver's `call_soon`.
    pub handle_layout: Option<HandleLayout>,
    /// asyncio's `BaseEventLoop._run_once` uses nothing the driver's
    /// `run_once` does not follow.
    pub run_once: bool,
}

/// Private functions of `asyncio.tasks` (3.7 onwards) that 3.11's
/// `EagerStart` calls to run a Task's step as asyncio's `__step` does.
pub(crate) struct StepHooks {
    pub current_tasks: Py<PyDict>,
    pub enter_task: Py<PyAny>,
    pub leave_task: Py<PyAny>,
}

/// The names (attributes, globals, builtins) that `BaseEventLoop._run_once`
/// uses in the versions `LoopDriver.run_once` was checked against (3.11 to
/// 3.13). A `_run_once` that uses any other name does something the driver
/// does not, and keeps running itself.
const RUN_ONCE_NAMES: [&str; 30] = [
    "MAXIMUM_SELECT_TIMEOUT",
    "_MIN_CANCELLED_TIMER_HANDLES_FRACTION",
    "_MIN_SCHEDULED_TIMER_HANDLES",
    "_cancelled",
    "_clock_resolution",
    "_current_handle",
    "_debug",
    "_format_handle",
    "_process_events",
    "_ready",
    "_run",
    "_scheduled",
    "_selector",
    "_stopping",
    "_timer_cancelled_count",
    "_when",
    "append",
    "heapify",
    "heappop",
    "heapq",
    "len",
    "logger",
    "max",
    "min",
    "popleft",
    "range",
    "select",
    "slow_callback_duration",
    "time",
    "warning",
];

static FAST_PATHS: PyOnceLock<FastPaths> = PyOnceLock::new();

/// The fast paths of this interpreter, looked for on first use.
pub(crate) fn fast_paths(py: Python<'_>) -> PyResult<&'static FastPaths> {
    FAST_PATHS.get_or_try_init(py, || {
        if std::env::var_os("CELLO_NO_FAST_PATHS").is_some_and(|v| !v.is_empty() && v != "0") {
            return Ok(FastPaths {
                eager_start: false,
                eager_step: None,
                handle_layout: None,
                run_once: false,
            });
        }
        let asyncio = py.import("asyncio")?;
        let tasks = py.import("asyncio.tasks")?;
        // Added to asyncio together with Task's `eager_start` argument.
        let eager_start = tasks.hasattr("eager_task_factory")?;
        let eager_step = if eager_start {
            None
        } else {
            step_hooks(&tasks)
        };
        let handle_layout = handle_layout(&asyncio.getattr("Handle")?)?;
        let run_once = handle_layout.is_some() && run_once_is_followed(&asyncio)?;
        Ok(FastPaths {
            eager_start,
            eager_step,
            handle_layout,
            run_once,
        })
    })
}

fn step_hooks(tasks: &Bound<'_, PyModule>) -> Option<StepHooks> {
    let get = |name: &str| tasks.getattr(name).ok();
    Some(StepHooks {
        current_tasks: get("_current_tasks")?.cast_into::<PyDict>().ok()?.unbind(),
        enter_task: get("_enter_task")?.unbind(),
        leave_task: get("_leave_task")?.unbind(),
    })
}

/// The layout of `asyncio.Handle` if its slots are exactly the ones the
/// driver's `call_soon` fills (see `HandleLayout::probe`).
fn handle_layout(handle_type: &Bound<'_, PyAny>) -> PyResult<Option<HandleLayout>> {
    let slots: Vec<String> = handle_type
        .getattr("__slots__")
        .and_then(|s| s.extract())
        .unwrap_or_default();
    let known = slots.len() == HANDLE_SLOTS.len() + 1
        && HANDLE_SLOTS
            .iter()
            .all(|name| slots.iter().any(|s| s == name))
        && slots.iter().any(|s| s == "__weakref__");
    if !known {
        return Ok(None);
    }
    HandleLayout::probe(handle_type)
}

/// Whether asyncio's `_run_once` is one `LoopDriver.run_once` follows: a
/// Python function that uses only [`RUN_ONCE_NAMES`].
fn run_once_is_followed(asyncio: &Bound<'_, PyModule>) -> PyResult<bool> {
    let py = asyncio.py();
    let Ok(code) = asyncio
        .getattr("BaseEventLoop")?
        .getattr(intern!(py, "_run_once"))
        .and_then(|f| f.getattr(intern!(py, "__code__")))
    else {
        return Ok(false);
    };
    let Ok(names) = code
        .getattr("co_names")
        .and_then(|n| n.extract::<Vec<String>>())
    else {
        return Ok(false);
    };
    Ok(names
        .iter()
        .all(|name| RUN_ONCE_NAMES.contains(&name.as_str())))
}

/// `fast_paths() -> dict[str, bool]`: which fast paths this interpreter
/// takes (docs/handlers.md lists them).
#[pyfunction]
#[pyo3(name = "fast_paths")]
pub(crate) fn report(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let found = fast_paths(py)?;
    let report = PyDict::new(py);
    report.set_item("eager_start", found.eager_start)?;
    report.set_item("eager_step", found.eager_step.is_some())?;
    report.set_item("handle_slots", found.handle_layout.is_some())?;
    report.set_item("run_once", found.run_once)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_interpreters_asyncio_has_a_known_run_once_and_handle() {
        Python::initialize();
        Python::attach(|py| {
            let found = fast_paths(py).unwrap();
            assert!(found.handle_layout.is_some());
            assert!(found.run_once);
            assert!(found.eager_start != found.eager_step.is_some());
        });
    }

    #[test]
    fn a_run_once_that_uses_an_unknown_name_is_not_followed() {
        Python::initialize();
        Python::attach(|py| {
            let module = PyModule::from_code(
                py,
                c"class BaseEventLoop:\n    def _run_once(self):\n        self._new_thing()\n",
                c"fake_asyncio.py",
                c"fake_asyncio",
            )
            .unwrap();
            assert!(!run_once_is_followed(&module).unwrap());
            let module = PyModule::from_code(
                py,
                c"class BaseEventLoop:\n    _run_once = len\n",
                c"builtin_asyncio.py",
                c"builtin_asyncio",
            )
            .unwrap();
            assert!(!run_once_is_followed(&module).unwrap());
        });
    }
}
