//! `request.form()` and `request.files()`: URL-encoded and multipart bodies
//! into `cello.forms.FormData`, and the spool door 2 streams a multipart body
//! into. Both doors hand the multipart parser the same thing: a body in
//! memory or in a spool file, fed to it chunk by chunk without the GIL.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cello_core::http::multipart::{
    FormError, FormParser, Limits, Part, Spool, SpoolFile, Spooled, UploadDir,
};
use cello_core::http::query::{form_refusal, parse_urlencoded};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyTuple;

use crate::ffi::support::{error, support};
use crate::types::body::{BodyState, SPOOL_THRESHOLD};

/// How much of the body the parser is given at a time.
const FEED_CHUNK: usize = 256 * 1024;

/// `cello.forms`' two builders, imported once.
struct Builders {
    from_fields: Py<PyAny>,
    from_parts: Py<PyAny>,
}

static BUILDERS: PyOnceLock<Builders> = PyOnceLock::new();

fn builders(py: Python<'_>) -> PyResult<&'static Builders> {
    BUILDERS.get_or_try_init(py, || {
        let forms = py.import("cello.forms")?;
        Ok(Builders {
            from_fields: forms.getattr("_from_fields")?.unbind(),
            from_parts: forms.getattr("_from_parts")?.unbind(),
        })
    })
}

/// The limits of one `form()` call: the defaults, with what the caller set.
pub(crate) fn limits(
    max_file_size: Option<i64>,
    max_form_size: Option<i64>,
    max_field_size: Option<i64>,
    max_fields: Option<i64>,
    max_files: Option<i64>,
) -> PyResult<Limits> {
    fn checked(name: &str, value: Option<i64>, default: u64) -> PyResult<u64> {
        match value {
            None => Ok(default),
            Some(v) if v >= 0 => Ok(v as u64),
            Some(v) => Err(PyValueError::new_err(format!(
                "{name} must be 0 or more, not {v}"
            ))),
        }
    }
    let d = Limits::default();
    Ok(Limits {
        max_file_size: checked("max_file_size", max_file_size, d.max_file_size)?,
        max_form_size: checked("max_form_size", max_form_size, d.max_form_size)?,
        max_field_size: checked("max_field_size", max_field_size, d.max_field_size)?,
        max_fields: checked("max_fields", max_fields, d.max_fields as u64)? as usize,
        max_files: checked("max_files", max_files, d.max_files as u64)? as usize,
    })
}

/// What `form()` needs of a request (given by `Request`, which this module
/// does not name, so the two do not depend on each other).
pub(crate) struct FormSource<'a> {
    pub content_type: Option<String>,
    pub body: &'a Mutex<BodyState>,
    /// Reads a body still on the socket (`Request::body_bytes`).
    pub read_body: Box<dyn Fn(Python<'_>) -> PyResult<Bytes> + 'a>,
    /// Where the parsed form is cached.
    pub cache: &'a PyOnceLock<Py<PyAny>>,
    /// Where the upload directory is kept, to be released with the response.
    pub uploads: &'a PyOnceLock<Py<UploadStore>>,
}

/// The request's form, parsed on the first call and cached.
pub(crate) fn form(request: FormSource<'_>, py: Python<'_>, limits: Limits) -> PyResult<Py<PyAny>> {
    if let Some(form) = request.cache.get(py) {
        return Ok(form.clone_ref(py));
    }
    let built = match request.content_type.as_deref() {
        Some(ct) if is_multipart(ct) => multipart(&request, py, ct, limits)?,
        ct => {
            if let Some(refusal) = ct.and_then(form_refusal) {
                return Err(error(py, &support(py)?.unsupported_media_type, &refusal));
            }
            let bytes = (request.read_body)(py)?;
            builders(py)?
                .from_fields
                .call1(py, (parse_urlencoded(&bytes),))?
        }
    };
    Ok(request.cache.get_or_init(py, || built).clone_ref(py))
}

fn is_multipart(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("multipart/form-data"))
}

/// Parses a multipart body from wherever the door left it.
fn multipart(
    request: &FormSource<'_>,
    py: Python<'_>,
    content_type: &str,
    limits: Limits,
) -> PyResult<Py<PyAny>> {
    let mut parser = FormParser::new(content_type, limits, std::env::temp_dir())
        .map_err(|e| form_error(py, e))?;
    let parsed = {
        let state = request.body.lock().unwrap_or_else(|p| p.into_inner());
        match &*state {
            BodyState::Ready(bytes) => {
                let bytes = bytes.clone();
                drop(state);
                py.detach(|| feed_bytes(parser, bytes))
            }
            BodyState::Spooled(file) => {
                // Read through a handle of its own, so the lock is not held
                // while the GIL is released.
                let file = file.try_clone().map_err(|e| {
                    PyOSError::new_err(format!("the spooled request body could not be read: {e}"))
                })?;
                drop(state);
                py.detach(|| feed_file(&mut parser, &file).and_then(|()| parser.finish()))
            }
            _ => {
                // Still on the socket (or failed): read it the usual way.
                drop(state);
                let bytes = (request.read_body)(py)?;
                py.detach(|| feed_bytes(parser, bytes))
            }
        }
    };
    let form = parsed.map_err(|e| form_error(py, e))?;
    let parts = form
        .parts
        .into_iter()
        .map(|part| -> PyResult<Bound<'_, PyTuple>> {
            match part {
                Part::Text(field) => PyTuple::new(py, [field.name, field.value]),
                Part::File(file) => (
                    file.name,
                    file.filename,
                    file.content_type,
                    file.path.to_string_lossy().into_owned(),
                    file.size,
                )
                    .into_pyobject(py),
            }
        })
        .collect::<PyResult<Vec<_>>>()?;
    let store = form
        .dir
        .map(|dir| Py::new(py, UploadStore::new(dir)))
        .transpose()?;
    if let Some(store) = &store {
        // Only the first parse reaches here (the form is cached).
        let _ = request.uploads.set(py, store.clone_ref(py));
    }
    builders(py)?.from_parts.call1(py, (parts, store))
}

fn feed_bytes(
    mut parser: FormParser,
    bytes: Bytes,
) -> Result<cello_core::http::multipart::Form, FormError> {
    let mut offset = 0;
    while offset < bytes.len() {
        let end = (offset + FEED_CHUNK).min(bytes.len());
        parser.feed(bytes.slice(offset..end))?;
        offset = end;
    }
    parser.finish()
}

fn feed_file(parser: &mut FormParser, file: &SpoolFile) -> Result<(), FormError> {
    let mut offset = 0u64;
    loop {
        let chunk = file.read_at(offset, FEED_CHUNK).map_err(|e| {
            FormError::Storage(format!("the spooled request body could not be read: {e}"))
        })?;
        if chunk.is_empty() {
            return Ok(());
        }
        offset += chunk.len() as u64;
        parser.feed(chunk)?;
    }
}

fn form_error(py: Python<'_>, e: FormError) -> PyErr {
    let support = match support(py) {
        Ok(s) => s,
        Err(e) => return e,
    };
    match e {
        FormError::TooLarge(detail) => error(py, &support.payload_too_large, &detail),
        FormError::Malformed(detail) => error(py, &support.bad_request, &detail),
        FormError::Storage(detail) => PyOSError::new_err(detail),
    }
}

/// The directory holding one form's uploaded files. Every `UploadedFile`
/// of the form keeps it; when the last one goes (with the request, unless
/// the application kept one), the directory and its files are removed.
/// The pipeline also releases it when the response is handed to the door
/// (`release_uploads`), so a reference kept by a logged traceback or a
/// reference cycle cannot keep the files on disk.
#[pyclass(module = "cello._cello", frozen)]
pub struct UploadStore {
    path: String,
    dir: Mutex<Option<Arc<UploadDir>>>,
}

impl UploadStore {
    fn new(dir: Arc<UploadDir>) -> Self {
        UploadStore {
            path: dir.path().to_string_lossy().into_owned(),
            dir: Mutex::new(Some(dir)),
        }
    }
}

#[pymethods]
impl UploadStore {
    #[getter]
    fn path(&self) -> &str {
        &self.path
    }

    /// Removes the directory and its files now.
    fn release(&self, py: Python<'_>) {
        let dir = self.dir.lock().unwrap_or_else(|p| p.into_inner()).take();
        py.detach(|| drop(dir));
    }

    #[getter]
    fn released(&self) -> bool {
        self.dir.lock().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    fn __repr__(&self) -> String {
        format!("<UploadStore {}>", self.path)
    }
}

/// Removes the request's uploaded files, if it has any: the request is
/// over once its response is handed to the door.
pub(crate) fn release_uploads(py: Python<'_>, uploads: &PyOnceLock<Py<UploadStore>>) {
    if let Some(store) = uploads.get(py) {
        store.get().release(py);
    }
}

/// A request body door 2 receives as ASGI messages, spooled like door 1's
/// (memory first, a temporary file past a threshold) and handed to
/// `Exchange.run` in place of bytes.
#[pyclass(module = "cello._cello", frozen)]
pub struct BodySpool {
    spool: Mutex<Option<Spool>>,
}

impl BodySpool {
    /// The spooled body as a request body; the spool is left empty.
    pub(crate) fn take(&self) -> PyResult<BodyState> {
        let spool = self
            .spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this BodySpool was already used"))?;
        Ok(match spool.finish() {
            Spooled::Memory(bytes) => BodyState::Ready(bytes),
            Spooled::File(file) => BodyState::Spooled(file),
        })
    }
}

#[pymethods]
impl BodySpool {
    #[new]
    fn new() -> Self {
        BodySpool {
            spool: Mutex::new(Some(Spool::new(SPOOL_THRESHOLD, None))),
        }
    }

    fn write(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        let mut spool = self.spool.lock().unwrap_or_else(|p| p.into_inner());
        let spool = spool
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("this BodySpool was already used"))?;
        py.detach(|| spool.write(data))
            .map_err(|e| PyOSError::new_err(format!("the request body could not be spooled: {e}")))
    }

    fn __len__(&self) -> usize {
        self.spool
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map_or(0, |s| s.len() as usize)
    }
}
