//! JSON bytes to Python objects: simd-json, with serde_json as the fallback
//! that also words the error when the body is malformed.

use std::sync::Mutex;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};
use simd_json::{tape::Node, StaticNode};

/// Why a body could not be parsed; becomes a 400 problem.
pub struct JsonError(pub String);

pub fn parse<'py>(py: Python<'py>, bytes: &[u8]) -> Result<Bound<'py, PyAny>, JsonErrorOrPy> {
    let mut buf = bytes.to_vec();
    // The tape, not a simd-json Value: it keeps object keys in document
    // order (Python dicts are ordered; a Value's map is not) and builds no
    // intermediate maps.
    let parsed = match simd_json::to_tape(&mut buf) {
        Ok(tape) => {
            let mut at = 0;
            tape_to_py(py, &tape.0, &mut at).map_err(JsonErrorOrPy::Py)
        }
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

/// The value starting at `nodes[*at]`, moving `at` past it.
fn tape_to_py<'py>(
    py: Python<'py>,
    nodes: &[Node<'_>],
    at: &mut usize,
) -> PyResult<Bound<'py, PyAny>> {
    let Some(node) = nodes.get(*at) else {
        return Err(PyValueError::new_err("truncated JSON tape"));
    };
    *at += 1;
    Ok(match *node {
        Node::Static(node) => match node {
            StaticNode::Null => py.None().into_bound(py),
            StaticNode::Bool(b) => b.into_pyobject(py)?.to_owned().into_any(),
            StaticNode::I64(i) => i.into_pyobject(py)?.into_any(),
            StaticNode::U64(u) => u.into_pyobject(py)?.into_any(),
            StaticNode::F64(f) => f.into_pyobject(py)?.into_any(),
        },
        Node::String(s) => PyString::new(py, s).into_any(),
        Node::Array { len, .. } => {
            let list = PyList::empty(py);
            for _ in 0..len {
                list.append(tape_to_py(py, nodes, at)?)?;
            }
            list.into_any()
        }
        Node::Object { len, .. } => {
            let dict = PyDict::new(py);
            for _ in 0..len {
                let Some(Node::String(key)) = nodes.get(*at) else {
                    return Err(PyValueError::new_err("JSON object key is not a string"));
                };
                *at += 1;
                let value = tape_to_py(py, nodes, at)?;
                dict.set_item(object_key(py, key), value)?;
            }
            dict.into_any()
        }
    })
}

/// Slots in the key cache (a power of two).
const KEY_SLOTS: usize = 1024;
/// Longer keys are not cached.
const KEY_MAX_LEN: usize = 64;

type KeySlots = Vec<Option<(Box<str>, Py<PyString>)>>;

/// An object key as a str. The same few keys come back request after
/// request, so the str made for one (with its hash computed) is kept in a
/// small direct-mapped cache and shared: no new object, no rehashing on
/// insertion. Strings are immutable, so sharing them is safe.
fn object_key<'py>(py: Python<'py>, key: &str) -> Bound<'py, PyString> {
    static CACHE: Mutex<KeySlots> = Mutex::new(Vec::new());
    if key.len() > KEY_MAX_LEN {
        return PyString::new(py, key);
    }
    let slot = key_hash(key.as_bytes()) & (KEY_SLOTS - 1);
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if cache.is_empty() {
        cache.resize_with(KEY_SLOTS, || None);
    }
    if let Some((known, text)) = &cache[slot] {
        if **known == *key {
            return text.bind(py).clone();
        }
    }
    let text = PyString::new(py, key);
    // Computed once here, cached in the str, reused by every dict insert.
    let _ = text.hash();
    cache[slot] = Some((key.into(), text.clone().unbind()));
    text
}

/// FNV-1a: short keys, no allocation, good enough spread for 1024 slots.
fn key_hash(bytes: &[u8]) -> usize {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash as usize
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
