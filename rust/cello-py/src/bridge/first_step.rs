//! A new Task's first step, caught on its way to `call_soon` so `EagerStart`
//! can run it at once (Python 3.11): the driver's `call_soon` and
//! `EagerStart`'s stand-in hand it over here.

use pyo3::prelude::*;
use pyo3::types::PyTuple;

/// A scheduled callback: `(callback, args, context)`.
pub(crate) type Scheduled = (Py<PyAny>, Py<PyTuple>, Option<Py<PyAny>>);

thread_local! {
    /// The first step of the Task being made on this thread, handed over by
    /// the driver's `call_soon` or `EagerStart`'s stand-in (Python 3.11).
    static CAUGHT: std::cell::RefCell<Option<Scheduled>> = const { std::cell::RefCell::new(None) };
}

/// Keeps the first step of the Task being made (Python 3.11).
pub(crate) fn caught(callback: Py<PyAny>, args: Py<PyTuple>, context: Option<Py<PyAny>>) {
    CAUGHT.with(|caught| *caught.borrow_mut() = Some((callback, args, context)));
}

/// The step `caught` kept, if any.
pub(crate) fn take_caught() -> Option<Scheduled> {
    CAUGHT.with(|caught| caught.borrow_mut().take())
}
