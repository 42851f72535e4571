//! Python objects as template values, and back.
//!
//! Plain data (None, bools, numbers, strings, bytes, lists, tuples, sets,
//! dicts and other mappings) is copied into native `minijinja::Value`s while
//! the GIL is held, so rendering can run with the GIL released. Anything else
//! (a pydantic model, a dataclass, the request, a function) is wrapped: the
//! template reads its attributes and calls it through Python, taking the GIL
//! only for that access. Objects with an `__html__` method (`Markup`) become
//! safe strings that auto-escaping leaves alone.

use std::fmt;
use std::sync::Arc;

use minijinja::value::{Object, ObjectRepr, ValueKind};
use minijinja::{Error, ErrorKind, State, Value};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PyMapping,
    PySequence, PySet, PyString, PyTuple,
};

/// Deeper nesting than this is almost certainly a cycle (a list that
/// contains itself); converting it would overflow the stack.
const MAX_DEPTH: usize = 64;

/// Copies `obj` into a template value.
pub(crate) fn to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    convert(obj, 0)
}

fn convert(obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "template values nest deeper than {MAX_DEPTH} levels (does a list or dict contain itself?)"
        )));
    }
    if obj.is_none() {
        return Ok(Value::from(()));
    }
    if let Ok(s) = obj.cast_exact::<PyString>() {
        return Ok(Value::from(s.to_str()?));
    }
    if let Ok(b) = obj.cast_exact::<PyBool>() {
        return Ok(Value::from(b.is_true()));
    }
    if obj.cast_exact::<PyInt>().is_ok() {
        return Ok(int_value(obj));
    }
    if let Ok(f) = obj.cast_exact::<PyFloat>() {
        return Ok(Value::from(f.value()));
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        let mut items = Vec::with_capacity(dict.len());
        for (key, value) in dict.iter() {
            items.push((convert(&key, depth + 1)?, convert(&value, depth + 1)?));
        }
        return Ok(Value::from_iter(items));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return sequence(list.iter(), depth);
    }
    if let Ok(tuple) = obj.cast::<PyTuple>() {
        return sequence(tuple.iter(), depth);
    }
    // Markup and its kin: already-escaped HTML.
    if let Ok(html) = obj.getattr(pyo3::intern!(obj.py(), "__html__")) {
        let markup = html.call0()?;
        return Ok(Value::from_safe_string(markup.str()?.to_str()?.to_owned()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::from(s.to_str()?));
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::from(b.is_true()));
    }
    if obj.cast::<PyInt>().is_ok() {
        return Ok(int_value(obj));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::from(f.value()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::from(b.as_bytes().to_vec()));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::from(b.to_vec()));
    }
    if let Ok(set) = obj.cast::<PySet>() {
        return sequence(set.iter(), depth);
    }
    if let Ok(set) = obj.cast::<PyFrozenSet>() {
        return sequence(set.iter(), depth);
    }
    if let Ok(mapping) = obj.cast::<PyMapping>() {
        let mut items = Vec::new();
        for pair in mapping.items()?.iter() {
            let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = pair.extract()?;
            items.push((convert(&key, depth + 1)?, convert(&value, depth + 1)?));
        }
        return Ok(Value::from_iter(items));
    }
    if let Ok(seq) = obj.cast::<PySequence>() {
        let mut items = Vec::new();
        for item in seq.try_iter()? {
            items.push(convert(&item?, depth + 1)?);
        }
        return Ok(Value::from(items));
    }
    Ok(Value::from_object(PyObjectValue(obj.clone().unbind())))
}

fn int_value(obj: &Bound<'_, PyAny>) -> Value {
    if let Ok(i) = obj.extract::<i64>() {
        Value::from(i)
    } else if let Ok(i) = obj.extract::<i128>() {
        Value::from(i)
    } else {
        // Beyond 128 bits: shown as its decimal digits.
        Value::from(obj.str().map(|s| s.to_string()).unwrap_or_default())
    }
}

fn sequence<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>, depth: usize) -> PyResult<Value> {
    let mut out = Vec::new();
    for item in items {
        out.push(convert(&item, depth + 1)?);
    }
    Ok(Value::from(out))
}

/// Turns a template value back into a Python object (the arguments of a
/// Python function called from a template).
pub(crate) fn to_python<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    if let Some(wrapped) = value.downcast_object_ref::<PyObjectValue>() {
        return Ok(wrapped.0.bind(py).clone());
    }
    Ok(match value.kind() {
        ValueKind::Undefined | ValueKind::None => py.None().into_bound(py),
        ValueKind::Bool => PyBool::new(py, value.is_true()).to_owned().into_any(),
        ValueKind::Number => {
            if let Ok(i) = i64::try_from(value.clone()) {
                i.into_pyobject(py)?.into_any()
            } else if let Ok(i) = i128::try_from(value.clone()) {
                i.into_pyobject(py)?.into_any()
            } else {
                f64::try_from(value.clone())
                    .unwrap_or(f64::NAN)
                    .into_pyobject(py)?
                    .into_any()
            }
        }
        ValueKind::String => PyString::new(py, value.as_str().unwrap_or_default()).into_any(),
        ValueKind::Bytes => PyBytes::new(py, value.as_bytes().unwrap_or_default()).into_any(),
        ValueKind::Seq | ValueKind::Iterable => {
            let list = PyList::empty(py);
            if let Ok(items) = value.try_iter() {
                for item in items {
                    list.append(to_python(py, &item)?)?;
                }
            }
            list.into_any()
        }
        ValueKind::Map => {
            let dict = PyDict::new(py);
            if let Ok(keys) = value.try_iter() {
                for key in keys {
                    let item = value.get_item(&key).unwrap_or_default();
                    dict.set_item(to_python(py, &key)?, to_python(py, &item)?)?;
                }
            }
            dict.into_any()
        }
        // Macros, template functions and other engine objects.
        _ => PyString::new(py, &value.to_string()).into_any(),
    })
}

/// The error a template sees when Python code it called raised: the Python
/// exception travels as the source, so the engine can chain it.
pub(crate) fn python_failure(err: PyErr) -> Error {
    let detail = Python::attach(|py| err.value(py).repr().map(|r| r.to_string()))
        .unwrap_or_else(|_| "a Python call failed".to_owned());
    Error::new(ErrorKind::InvalidOperation, detail).with_source(err)
}

/// A Python object the template reads through attribute access and calls.
///
/// Attributes whose name starts with `_` are hidden, so a template cannot
/// reach `__class__`, `__globals__` and from there the interpreter.
pub(crate) struct PyObjectValue(pub(crate) Py<PyAny>);

impl fmt::Debug for PyObjectValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<python object>")
    }
}

impl PyObjectValue {
    fn call_python(py: Python<'_>, callable: &Bound<'_, PyAny>, args: &[Value]) -> PyResult<Value> {
        let (positional, keywords) = match args.split_last() {
            Some((last, rest)) if last.is_kwargs() => (rest, Some(last)),
            _ => (args, None),
        };
        let positional = positional
            .iter()
            .map(|arg| to_python(py, arg))
            .collect::<PyResult<Vec<_>>>()?;
        let keywords = match keywords {
            Some(kwargs) => Some(to_python(py, kwargs)?.cast_into::<PyDict>()?),
            None => None,
        };
        let result = callable.call(PyTuple::new(py, positional)?, keywords.as_ref())?;
        to_value(&result)
    }
}

impl Object for PyObjectValue {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Plain
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let name = key.as_str()?;
        if name.starts_with('_') {
            return None;
        }
        Python::attach(|py| {
            let attr = self.0.bind(py).getattr(name).ok()?;
            to_value(&attr).ok()
        })
    }

    fn is_true(self: &Arc<Self>) -> bool {
        Python::attach(|py| self.0.bind(py).is_truthy().unwrap_or(true))
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        Python::attach(|py| Self::call_python(py, self.0.bind(py), args)).map_err(python_failure)
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        if method.starts_with('_') {
            return Err(Error::new(
                ErrorKind::UnknownMethod,
                format!("method {method} is private"),
            ));
        }
        Python::attach(|py| {
            let bound = self.0.bind(py);
            match bound.getattr(method) {
                Ok(callable) => Self::call_python(py, &callable, args).map_err(python_failure),
                Err(_) => Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!("object has no method named {method}"),
                )),
            }
        })
    }

    fn render(self: &Arc<Self>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = Python::attach(|py| {
            self.0
                .bind(py)
                .str()
                .map(|s| s.to_string())
                .unwrap_or_default()
        });
        f.write_str(&text)
    }
}
