//! Reading and writing the fields of `asyncio.Handle` without the attribute
//! protocol.
//!
//! Every awaiting request makes one Handle in `LoopDriver.call_soon`, and
//! the loop iteration reads it back. Through `setattr`/`getattr` each of
//! those field accesses costs a type lookup and a descriptor call, and
//! filling one Handle took more instructions than the rest of `call_soon`.
//! The fields are `__slots__`, kept at fixed offsets inside the object.
//! [`HandleLayout::probe`] finds the offsets once, by storing a distinct
//! marker in each field through the ordinary attribute protocol and finding
//! it in the object's memory, so nothing here depends on CPython's private
//! structs; if any marker is not found exactly once, the caller keeps the
//! attribute protocol.

use pyo3::ffi;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

/// The fields of `asyncio.Handle` (Python 3.11 to 3.14) that `call_soon`
/// fills in, in the order of [`Field`].
pub const HANDLE_SLOTS: [&str; 7] = [
    "_callback",
    "_args",
    "_cancelled",
    "_loop",
    "_source_traceback",
    "_repr",
    "_context",
];

/// One of [`HANDLE_SLOTS`].
#[derive(Clone, Copy)]
pub enum Field {
    Callback = 0,
    Args = 1,
    Cancelled = 2,
    Context = 6,
}

/// Where each of [`HANDLE_SLOTS`] lives inside an object of exactly
/// `handle_type`.
pub struct HandleLayout {
    handle_type: Py<PyAny>,
    offsets: [usize; HANDLE_SLOTS.len()],
}

impl HandleLayout {
    /// The layout of `handle_type`, or None if its fields cannot all be
    /// located (a Python whose Handle is not a plain slotted class).
    pub fn probe(handle_type: &Bound<'_, PyAny>) -> PyResult<Option<Self>> {
        let py = handle_type.py();
        let size: usize = handle_type
            .getattr(intern!(py, "__basicsize__"))?
            .extract()?;
        let item_size: usize = handle_type
            .getattr(intern!(py, "__itemsize__"))?
            .extract()?;
        if item_size != 0 {
            return Ok(None);
        }
        let probe = allocate(handle_type)?;
        let markers = HANDLE_SLOTS
            .iter()
            .map(|name| {
                let marker = PyList::empty(py);
                probe.setattr(*name, &marker).map(|()| marker)
            })
            .collect::<PyResult<Vec<_>>>()?;
        let header = std::mem::size_of::<ffi::PyObject>();
        let word = std::mem::size_of::<*mut ffi::PyObject>();
        let mut offsets = [0; HANDLE_SLOTS.len()];
        for (offset_of_field, marker) in offsets.iter_mut().zip(&markers) {
            let found: Vec<usize> = (header..size)
                .step_by(word)
                // SAFETY: every offset is inside the object's `size` bytes,
                // word-aligned, and read only while the object is alive.
                .filter(|&offset| unsafe { *slot(probe.as_ptr(), offset) } == marker.as_ptr())
                .collect();
            let [offset] = found[..] else {
                return Ok(None);
            };
            *offset_of_field = offset;
        }
        Ok(Some(HandleLayout {
            handle_type: handle_type.clone().unbind(),
            offsets,
        }))
    }

    pub fn handle_type<'py>(&self, py: Python<'py>) -> &Bound<'py, PyAny> {
        self.handle_type.bind(py)
    }

    /// A new Handle with its fields set to `values` (in [`HANDLE_SLOTS`]
    /// order): what `Handle.__init__` does with debug mode off.
    pub fn new_handle<'py>(
        &self,
        py: Python<'py>,
        values: [Bound<'py, PyAny>; HANDLE_SLOTS.len()],
    ) -> PyResult<Bound<'py, PyAny>> {
        let handle = allocate(self.handle_type.bind(py))?;
        for (offset, value) in self.offsets.iter().zip(values) {
            // SAFETY: `handle` is exactly `handle_type`, whose fields are at
            // `offsets`; freshly allocated, every field is NULL, so nothing
            // is overwritten, and the field takes over the new reference.
            unsafe { *slot(handle.as_ptr(), *offset) = value.into_ptr() };
        }
        Ok(handle)
    }

    /// `handle.<field>`, read in place when `handle` is exactly the probed
    /// type (a subclass, such as TimerHandle, goes through getattr).
    pub fn get<'py>(
        &self,
        handle: &Bound<'py, PyAny>,
        field: Field,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = handle.py();
        if !handle.get_type().is(self.handle_type.bind(py)) {
            return handle.getattr(HANDLE_SLOTS[field as usize]);
        }
        // SAFETY: the offset is the field's in an object of this exact type.
        let value = unsafe { *slot(handle.as_ptr(), self.offsets[field as usize]) };
        if value.is_null() {
            return handle.getattr(HANDLE_SLOTS[field as usize]); // raises AttributeError
        }
        // SAFETY: a non-NULL field holds a live object; we take a new reference.
        Ok(unsafe { Bound::from_borrowed_ptr(py, value) })
    }
}

/// A new object of `class` with every field NULL.
fn allocate<'py>(class: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    // SAFETY: `class` is a type object (checked by the cast); tp_alloc gives
    // a new reference with every slot NULL, or NULL with an error set.
    unsafe {
        let class = class.cast::<pyo3::types::PyType>()?;
        Bound::from_owned_ptr_or_err(
            class.py(),
            ffi::PyType_GenericAlloc(class.as_ptr().cast::<ffi::PyTypeObject>(), 0),
        )
    }
}

/// The field `offset` bytes into `object`.
///
/// # Safety
/// `offset` must be word-aligned and inside the object.
unsafe fn slot(object: *mut ffi::PyObject, offset: usize) -> *mut *mut ffi::PyObject {
    unsafe { object.cast::<u8>().add(offset).cast::<*mut ffi::PyObject>() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probed_fields_read_back_what_the_attribute_protocol_sees() {
        Python::initialize();
        Python::attach(|py| {
            let handle_type = py.import("asyncio").unwrap().getattr("Handle").unwrap();
            let layout = HandleLayout::probe(&handle_type)
                .unwrap()
                .expect("asyncio.Handle is slotted");
            let values: [Bound<'_, PyAny>; 7] =
                std::array::from_fn(|i| pyo3::types::PyString::new(py, HANDLE_SLOTS[i]).into_any());
            let handle = layout.new_handle(py, values).unwrap();
            for name in HANDLE_SLOTS {
                let value: String = handle.getattr(name).unwrap().extract().unwrap();
                assert_eq!(value, name);
            }
            handle.setattr("_cancelled", true).unwrap();
            assert!(layout
                .get(&handle, Field::Cancelled)
                .unwrap()
                .is_truthy()
                .unwrap());
            let text: String = layout
                .get(&handle, Field::Context)
                .unwrap()
                .extract()
                .unwrap();
            assert_eq!(text, "_context");
        });
    }

    #[test]
    fn a_class_whose_fields_are_not_all_slots_is_refused() {
        Python::initialize();
        Python::attach(|py| {
            let module =
                PyModule::from_code(py, c"class Loose:\n    pass\n", c"loose.py", c"loose")
                    .unwrap();
            let loose = module.getattr("Loose").unwrap();
            assert!(HandleLayout::probe(&loose).unwrap().is_none());
        });
    }
}
