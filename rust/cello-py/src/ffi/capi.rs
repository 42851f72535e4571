//! Calls and contexts through CPython's C functions, for the per-request
//! path.
//!
//! Built for the 3.11 stable ABI, pyo3 passes a call's arguments in a new
//! tuple, and a context is only reachable through `contextvars`' Python
//! methods: for a sync handler, copying the context and calling the handler
//! in it cost more than the handler's own body. These functions go straight
//! to the C API instead. `PyObject_Vectorcall` is in the stable ABI from
//! 3.12 and exported by 3.11, the oldest CPython Cello supports; the
//! `PyContext_*` functions are documented C API, outside the limited set,
//! that every CPython since 3.7 exports.

use std::os::raw::c_int;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

extern "C" {
    fn PyObject_Vectorcall(
        callable: *mut ffi::PyObject,
        args: *const *mut ffi::PyObject,
        nargsf: usize,
        kwnames: *mut ffi::PyObject,
    ) -> *mut ffi::PyObject;
    fn PyContext_CopyCurrent() -> *mut ffi::PyObject;
    fn PyContext_Enter(context: *mut ffi::PyObject) -> c_int;
    fn PyContext_Exit(context: *mut ffi::PyObject) -> c_int;
}

/// Lets the callee use the slot before the first argument (a bound method
/// puts its `self` there instead of copying the arguments).
const ARGUMENTS_OFFSET: usize = 1 << (usize::BITS - 1);

/// Most calls here have a few arguments; more go through a `Vec`.
const INLINE_ARGS: usize = 6;

/// `callable(*args)`.
pub fn call<'py>(
    callable: &Bound<'py, PyAny>,
    args: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    vectorcall(callable, args.iter().map(|arg| arg.as_ptr()))
}

/// `callable(*args)` with borrowed pointers to live objects.
fn vectorcall<'py>(
    callable: &Bound<'py, PyAny>,
    args: impl ExactSizeIterator<Item = *mut ffi::PyObject>,
) -> PyResult<Bound<'py, PyAny>> {
    let count = args.len();
    let mut inline = [std::ptr::null_mut(); INLINE_ARGS + 1];
    let mut spilled = Vec::new();
    let slots: &mut [*mut ffi::PyObject] = if count <= INLINE_ARGS {
        &mut inline[..=count]
    } else {
        spilled.resize(count + 1, std::ptr::null_mut());
        &mut spilled
    };
    for (slot, arg) in slots[1..].iter_mut().zip(args) {
        *slot = arg;
    }
    // SAFETY: the GIL is held (`Bound`); `slots[1..]` holds the caller's
    // borrowed pointers to live objects, and `slots[0]` is ours for the
    // callee to scribble on, as ARGUMENTS_OFFSET allows. The result is a new
    // reference or NULL with an exception set.
    unsafe {
        Bound::from_owned_ptr_or_err(
            callable.py(),
            PyObject_Vectorcall(
                callable.as_ptr(),
                slots.as_ptr().add(1),
                count | ARGUMENTS_OFFSET,
                std::ptr::null_mut(),
            ),
        )
    }
}

/// `context.run(callable, *args)`: the call runs with `context` as the
/// current context, which is restored afterwards whether it raised or not.
pub fn run_in_context<'py>(
    context: &Bound<'py, PyAny>,
    callable: &Bound<'py, PyAny>,
    args: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    entered(context, || call(callable, args))
}

/// `context.run(callable, *args)` for arguments already in a tuple.
pub fn run_tuple_in_context<'py>(
    context: &Bound<'py, PyAny>,
    callable: &Bound<'py, PyAny>,
    args: &Bound<'py, PyTuple>,
) -> PyResult<Bound<'py, PyAny>> {
    // The tuple keeps its items alive through the call.
    entered(context, || {
        vectorcall(callable, args.iter_borrowed().map(|arg| arg.as_ptr()))
    })
}

fn entered<'py>(
    context: &Bound<'py, PyAny>,
    run: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let py = context.py();
    // SAFETY: the GIL is held. Enter raises TypeError for a non-Context and
    // RuntimeError for one already entered, as `Context.run` does.
    if unsafe { PyContext_Enter(context.as_ptr()) } != 0 {
        return Err(PyErr::fetch(py));
    }
    let result = run();
    // SAFETY: `context` was entered above and the call cannot leave another
    // one current (every `run` it makes exits what it entered); the error
    // indicator is clear, since `run` fetched any exception into `result`.
    if unsafe { PyContext_Exit(context.as_ptr()) } != 0 {
        return Err(PyErr::fetch(py));
    }
    result
}

/// `contextvars.copy_context().run(callable, *args)`: context variables the
/// call sets stay in the copy.
pub fn call_in_copied_context<'py>(
    callable: &Bound<'py, PyAny>,
    args: &[&Bound<'py, PyAny>],
) -> PyResult<Bound<'py, PyAny>> {
    run_in_context(&copy_context(callable.py())?, callable, args)
}

/// `contextvars.copy_context()`.
pub fn copy_context(py: Python<'_>) -> PyResult<Bound<'_, PyAny>> {
    // SAFETY: the GIL is held; the result is a new reference or NULL with an
    // exception set.
    unsafe { Bound::from_owned_ptr_or_err(py, PyContext_CopyCurrent()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pyo3::types::PyDict;

    fn eval<'py>(py: Python<'py>, code: &str) -> Bound<'py, PyAny> {
        let globals = PyDict::new(py);
        py.run(&std::ffi::CString::new(code).unwrap(), Some(&globals), None)
            .unwrap();
        globals.get_item("result").unwrap().unwrap()
    }

    #[test]
    fn calls_pass_every_argument_in_order() {
        Python::initialize();
        Python::attach(|py| {
            let collect = eval(py, "result = lambda *a: a");
            for n in [0, 1, 3, INLINE_ARGS, INLINE_ARGS + 1, 20] {
                let args: Vec<Bound<'_, PyAny>> = (0..n)
                    .map(|i| i.into_pyobject(py).unwrap().into_any())
                    .collect();
                let refs: Vec<&Bound<'_, PyAny>> = args.iter().collect();
                let got = call(&collect, &refs).unwrap();
                let expected = PyTuple::new(py, &args).unwrap();
                assert!(got.eq(expected).unwrap(), "{n} arguments");
            }
            // A bound method may use the slot before the arguments.
            let method = eval(py, "result = [].count");
            let one = 1i32.into_pyobject(py).unwrap().into_any();
            assert_eq!(call(&method, &[&one]).unwrap().extract::<i32>().unwrap(), 0);
        });
    }

    #[test]
    fn a_copied_context_keeps_what_the_call_sets_and_errors_come_through() {
        Python::initialize();
        Python::attach(|py| {
            let (var, set, get) = eval(
                py,
                "import contextvars\n\
                 var = contextvars.ContextVar('v', default='outer')\n\
                 def set_it(value):\n    var.set(value)\n    return var.get()\n\
                 result = (var, set_it, var.get)",
            )
            .extract::<(Bound<'_, PyAny>, Bound<'_, PyAny>, Bound<'_, PyAny>)>()
            .unwrap();
            let inner = "inner".into_pyobject(py).unwrap().into_any();
            let seen = call_in_copied_context(&set, &[&inner]).unwrap();
            assert_eq!(seen.extract::<String>().unwrap(), "inner");
            assert_eq!(
                call(&get, &[]).unwrap().extract::<String>().unwrap(),
                "outer"
            );
            drop(var);

            let boom = eval(py, "def boom():\n    raise KeyError('x')\nresult = boom");
            let err = call_in_copied_context(&boom, &[]).unwrap_err();
            assert!(err.is_instance_of::<pyo3::exceptions::PyKeyError>(py));
            // The context was left: a second call can enter a copy again.
            assert!(call_in_copied_context(&get, &[]).is_ok());
        });
    }

    #[test]
    fn entering_a_context_twice_or_a_non_context_raises_as_context_run_does() {
        Python::initialize();
        Python::attach(|py| {
            let context = copy_context(py).unwrap();
            let reenter = eval(
                py,
                "def reenter(ctx):\n    return ctx.run(len, '')\nresult = reenter",
            );
            let err = run_in_context(&context, &reenter, &[&context]).unwrap_err();
            assert!(err.is_instance_of::<pyo3::exceptions::PyRuntimeError>(py));
            let not_context = 3i32.into_pyobject(py).unwrap().into_any();
            let err = run_in_context(&not_context, &reenter, &[]).unwrap_err();
            assert!(err.is_instance_of::<pyo3::exceptions::PyTypeError>(py));
        });
    }
}
