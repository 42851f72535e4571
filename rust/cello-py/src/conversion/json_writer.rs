//! Python objects to JSON bytes in one pass, byte-for-byte what `orjson.dumps`
//! writes for the same value (pydantic models: what orjson writes for
//! `model.model_dump()`).

use cello_core::json::{write_f64, write_i64, write_str, write_u64};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use pyo3::Borrowed;
use pyo3::{ffi, intern};

/// orjson's nesting limit.
const MAX_DEPTH: usize = 254;

/// Types the writer recognises beyond the builtins, imported once.
struct KnownTypes {
    datetime: Py<PyType>,
    date: Py<PyType>,
    time: Py<PyType>,
    uuid: Py<PyType>,
    enum_: Py<PyType>,
}

static KNOWN: PyOnceLock<KnownTypes> = PyOnceLock::new();

fn known(py: Python<'_>) -> PyResult<&KnownTypes> {
    KNOWN.get_or_try_init(py, || {
        let dt = py.import("datetime")?;
        let ty = |m: &Bound<'_, PyAny>, n: &str| -> PyResult<Py<PyType>> {
            Ok(m.getattr(n)?.cast_into::<PyType>()?.unbind())
        };
        let dt_any = dt.as_any();
        Ok(KnownTypes {
            datetime: ty(dt_any, "datetime")?,
            date: ty(dt_any, "date")?,
            time: ty(dt_any, "time")?,
            uuid: ty(py.import("uuid")?.as_any(), "UUID")?,
            enum_: ty(py.import("enum")?.as_any(), "Enum")?,
        })
    })
}

/// Serialises `obj` to a fresh buffer.
pub fn to_json(obj: &Bound<'_, PyAny>) -> PyResult<Vec<u8>> {
    let mut out = Vec::with_capacity(64);
    write_value(&mut out, obj, 0)?;
    Ok(out)
}

fn type_error(msg: impl Into<String>) -> PyErr {
    PyTypeError::new_err(msg.into())
}

/// Appends `obj` as JSON.
pub fn write_value(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(type_error("Recursion limit reached"));
    }
    // Exact builtin types first: the common case costs one pointer compare.
    if obj.is_exact_instance_of::<PyString>() {
        return write_py_str(out, obj);
    }
    if obj.is_none() {
        out.extend_from_slice(b"null");
        return Ok(());
    }
    if obj.is_exact_instance_of::<PyDict>() {
        return write_dict(out, obj.cast::<PyDict>()?, depth);
    }
    if obj.is_exact_instance_of::<PyList>() {
        return write_list(out, obj.cast::<PyList>()?, depth);
    }
    if obj.is_exact_instance_of::<PyBool>() {
        out.extend_from_slice(if obj.is_truthy()? { b"true" } else { b"false" });
        return Ok(());
    }
    if obj.is_exact_instance_of::<PyInt>() {
        return write_int(out, obj);
    }
    if obj.is_exact_instance_of::<PyFloat>() {
        return write_float(out, obj);
    }
    if obj.is_exact_instance_of::<PyTuple>() {
        return write_sequence(out, obj.cast::<PyTuple>()?.iter(), depth);
    }
    write_other(out, obj, depth)
}

/// Subclasses of the builtins and the non-builtin types orjson supports.
fn write_other(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>, depth: usize) -> PyResult<()> {
    let py = obj.py();
    let types = known(py)?;
    // Enum before the builtins: an IntEnum or StrEnum is written as its value.
    if obj.is_instance(types.enum_.bind(py))? {
        return write_value(out, &obj.getattr(intern!(py, "value"))?, depth + 1);
    }
    // `bool` cannot be subclassed, so only these builtins have subclasses.
    if obj.is_instance_of::<PyString>() {
        return write_py_str(out, obj);
    }
    if obj.is_instance_of::<PyInt>() {
        return write_int(out, obj);
    }
    if obj.is_instance_of::<PyFloat>() {
        return write_float(out, obj);
    }
    if let Ok(dict) = obj.cast::<PyDict>() {
        return write_dict(out, dict, depth);
    }
    if let Ok(list) = obj.cast::<PyList>() {
        return write_list(out, list, depth);
    }
    if obj.is_instance(types.datetime.bind(py))? || obj.is_instance(types.date.bind(py))? {
        return write_isoformat(out, obj);
    }
    if obj.is_instance(types.time.bind(py))? {
        if !obj.getattr(intern!(py, "tzinfo"))?.is_none() {
            return Err(type_error("datetime.time must not have tzinfo set"));
        }
        return write_isoformat(out, obj);
    }
    if obj.is_instance(types.uuid.bind(py))? {
        let text = obj.str()?;
        return write_py_str(out, text.as_any());
    }
    let ty = obj.get_type();
    if let Ok(fields) = ty.getattr(intern!(py, "__dataclass_fields__")) {
        return write_dataclass(out, obj, &fields, depth);
    }
    if ty.hasattr(intern!(py, "__pydantic_fields__"))? {
        let dumped = obj.call_method0(intern!(py, "model_dump"))?;
        return write_value(out, &dumped, depth + 1);
    }
    Err(type_error(format!(
        "Type is not JSON serializable: {}",
        ty.name()?
    )))
}

fn write_py_str(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let mut size: ffi::Py_ssize_t = 0;
    // SAFETY: `obj` is a str instance (checked by every caller); the returned
    // buffer is owned by the str object, which outlives this borrow.
    let data = unsafe { ffi::PyUnicode_AsUTF8AndSize(obj.as_ptr(), &mut size) };
    if data.is_null() {
        // Clear the UnicodeEncodeError; the message mirrors orjson's.
        let _ = PyErr::take(obj.py());
        return Err(type_error("str is not valid UTF-8: surrogates not allowed"));
    }
    // SAFETY: CPython guarantees `size` valid UTF-8 bytes at `data`.
    let text = unsafe {
        std::str::from_utf8_unchecked(std::slice::from_raw_parts(data.cast::<u8>(), size as usize))
    };
    write_str(out, text);
    Ok(())
}

/// Slots in the key cache (a power of two).
const KEY_SLOTS: usize = 512;

/// A cached key: the str object and its JSON form.
type KeySlots = Vec<Option<(Py<PyAny>, Box<[u8]>)>>;

thread_local! {
    /// Dict keys already written: the same str objects (literals in the
    /// handler's code) come back on every request. Each slot holds the key
    /// (a strong reference, so its address cannot be reused by another
    /// object while cached) and its JSON form.
    static KEYS: std::cell::RefCell<KeySlots> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Writes an exact-str dict key, from the cache when this very object was
/// written before.
fn write_key(out: &mut Vec<u8>, key: &Bound<'_, PyAny>) -> PyResult<()> {
    let address = key.as_ptr() as usize;
    let slot = (address >> 4) & (KEY_SLOTS - 1);
    let hit = KEYS.with_borrow(|keys| match keys.get(slot) {
        Some(Some((known, json))) if known.as_ptr() as usize == address => {
            out.extend_from_slice(json);
            true
        }
        _ => false,
    });
    if hit {
        return Ok(());
    }
    let start = out.len();
    write_py_str(out, key)?;
    let json: Box<[u8]> = out[start..].into();
    let key = key.clone().unbind();
    KEYS.with_borrow_mut(|keys| {
        if keys.is_empty() {
            keys.resize_with(KEY_SLOTS, || None);
        }
        keys[slot] = Some((key, json));
    });
    Ok(())
}

fn write_float(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    write_f64(out, obj.cast::<PyFloat>()?.value());
    Ok(())
}

fn write_int(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    // SAFETY: `obj` is an int (checked by every caller); on overflow CPython
    // sets an exception, which is cleared before trying the unsigned range.
    let signed = unsafe { ffi::PyLong_AsLongLong(obj.as_ptr()) };
    if signed != -1 || PyErr::take(obj.py()).is_none() {
        write_i64(out, signed);
        return Ok(());
    }
    if let Ok(v) = obj.extract::<u64>() {
        write_u64(out, v);
        return Ok(());
    }
    Err(type_error("Integer exceeds 64-bit range"))
}

fn write_dict(out: &mut Vec<u8>, dict: &Bound<'_, PyDict>, depth: usize) -> PyResult<()> {
    let py = dict.py();
    out.push(b'{');
    let mut pos: ffi::Py_ssize_t = 0;
    let mut key: *mut ffi::PyObject = std::ptr::null_mut();
    let mut value: *mut ffi::PyObject = std::ptr::null_mut();
    let mut first = true;
    // PyDict_Next hands out borrowed references. Writing a key or a scalar
    // runs no Python code, so those are used as they are; any other value is
    // turned into an owned reference before Python code (a dataclass
    // attribute, `isoformat`, `model_dump`) could run and change the dict
    // under us.
    // SAFETY: `dict` is a live dict; `pos`, `key` and `value` are the cursor
    // and out-parameters PyDict_Next expects.
    while unsafe { ffi::PyDict_Next(dict.as_ptr(), &mut pos, &mut key, &mut value) } != 0 {
        // SAFETY: PyDict_Next returned non-null borrowed references.
        let (key, value) = unsafe { (Borrowed::from_ptr(py, key), Borrowed::from_ptr(py, value)) };
        if !first {
            out.push(b',');
        }
        first = false;
        if key.is_exact_instance_of::<PyString>() {
            write_key(out, &key)?;
        } else if key.is_instance_of::<PyString>() {
            write_py_str(out, &key)?;
        } else {
            return Err(type_error("Dict key must be str"));
        }
        out.push(b':');
        write_item(out, value, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}

/// Writes a container's item given as a borrowed reference: a scalar as it
/// is (writing one runs no Python code), anything else through an owned
/// reference, as its writing may run code that drops the container's own.
fn write_item(out: &mut Vec<u8>, item: Borrowed<'_, '_, PyAny>, depth: usize) -> PyResult<()> {
    let scalar = item.is_exact_instance_of::<PyString>()
        || item.is_none()
        || item.is_exact_instance_of::<PyInt>()
        || item.is_exact_instance_of::<PyFloat>()
        || item.is_exact_instance_of::<PyBool>();
    if scalar {
        write_value(out, &item, depth)
    } else {
        write_value(out, &item.to_owned(), depth)
    }
}

fn write_list(out: &mut Vec<u8>, list: &Bound<'_, PyList>, depth: usize) -> PyResult<()> {
    let py = list.py();
    out.push(b'[');
    let mut index: ffi::Py_ssize_t = 0;
    // The length is re-read each step: writing an item may run Python code
    // (a dataclass, `model_dump`) that changes the list.
    // SAFETY: `list` is a live list.
    while index < unsafe { ffi::PyList_Size(list.as_ptr()) } {
        // SAFETY: `index` is in range; the item is a borrowed reference,
        // which `write_item` owns before anything could run.
        let item = unsafe { Borrowed::from_ptr(py, ffi::PyList_GetItem(list.as_ptr(), index)) };
        if index > 0 {
            out.push(b',');
        }
        write_item(out, item, depth + 1)?;
        index += 1;
    }
    out.push(b']');
    Ok(())
}

fn write_sequence<'py>(
    out: &mut Vec<u8>,
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    depth: usize,
) -> PyResult<()> {
    out.push(b'[');
    let mut first = true;
    for item in items {
        if !first {
            out.push(b',');
        }
        first = false;
        write_value(out, &item, depth + 1)?;
    }
    out.push(b']');
    Ok(())
}

fn write_isoformat(out: &mut Vec<u8>, obj: &Bound<'_, PyAny>) -> PyResult<()> {
    let text = obj.call_method0(intern!(obj.py(), "isoformat"))?;
    write_py_str(out, &text)
}

/// A dataclass the way orjson writes it: the instance `__dict__` in
/// insertion order without `_private` names, or, for slotted classes, the
/// declared fields (skipping `ClassVar`/`InitVar` pseudo-fields).
fn write_dataclass(
    out: &mut Vec<u8>,
    obj: &Bound<'_, PyAny>,
    fields: &Bound<'_, PyAny>,
    depth: usize,
) -> PyResult<()> {
    let py = obj.py();
    if let Ok(attrs) = obj.getattr(intern!(py, "__dict__")) {
        if let Ok(attrs) = attrs.cast::<PyDict>() {
            out.push(b'{');
            let mut first = true;
            for (name, value) in attrs.iter() {
                let Ok(key) = name.cast::<PyString>() else {
                    continue;
                };
                if key.to_str()?.starts_with('_') {
                    continue;
                }
                if !first {
                    out.push(b',');
                }
                first = false;
                write_py_str(out, &name)?;
                out.push(b':');
                write_value(out, &value, depth + 1)?;
            }
            out.push(b'}');
            return Ok(());
        }
    }
    let fields = fields.cast::<PyDict>()?;
    let field_marker = py.import("dataclasses")?.getattr("_FIELD")?;
    out.push(b'{');
    let mut first = true;
    for (name, field) in fields.iter() {
        if !field.getattr(intern!(py, "_field_type"))?.is(&field_marker) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        write_py_str(out, &name)?;
        out.push(b':');
        let value = obj.getattr(name.cast::<PyString>()?)?;
        write_value(out, &value, depth + 1)?;
    }
    out.push(b'}');
    Ok(())
}
