//! JSON bytes to Python objects: simd-json, with serde_json as the fallback
//! that also words the error when the body is malformed.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use simd_json::{BorrowedValue, StaticNode};

/// Why a body could not be parsed; becomes a 400 problem.
pub struct JsonError(pub String);

pub fn parse<'py>(py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyAny>, JsonErrorOrPy> {
    let mut buf = bytes.to_vec();
    let parsed = match simd_json::to_borrowed_value(&mut buf) {
        Ok(value) => simd_to_py(py, &value).map_err(JsonErrorOrPy::Py),
        Err(_) => match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(value) => serde_to_py(py, &value).map_err(JsonErrorOrPy::Py),
            Err(e) => Err(JsonErrorOrPy::Json(JsonError(e.to_string()))),
        },
    };
    parsed
}

pub enum JsonErrorOrPy {
    Json(JsonError),
    Py(PyErr),
}

impl From<PyErr> for JsonErrorOrPy {
    fn from(e: PyErr) -> Self {
        JsonErrorOrPy::Py(e)
    }
}

fn simd_to_py<'py>(py: Python<'py>, value: &BorrowedValue<'_>) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        BorrowedValue::Static(node) => match node {
            StaticNode::Null => py.None().into_bound(py),
            StaticNode::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            StaticNode::I64(i) => i.into_pyobject(py)?.into_any(),
            StaticNode::U64(u) => u.into_pyobject(py)?.into_any(),
            StaticNode::F64(f) => f.into_pyobject(py)?.into_any(),
        },
        BorrowedValue::String(s) => s.as_ref().into_pyobject(py)?.into_any(),
        BorrowedValue::Array(items) => {
            let list = PyList::empty(py);
            for item in items.iter() {
                list.append(simd_to_py(py, item)?)?;
            }
            list.into_any()
        }
        BorrowedValue::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map.iter() {
                dict.set_item(k.as_ref(), simd_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

fn serde_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value;
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => s.into_pyobject(py)?.into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(serde_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, serde_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}
