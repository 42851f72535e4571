//! `Request`: the per-request object handlers receive.
//!
//! Everything is lazy: the parameter dict, query mapping, headers mapping,
//! cookies, parsed JSON and the body itself are built on first access and
//! cached, so a handler that reads nothing pays for nothing.

use std::sync::Mutex;

use bytes::Bytes;
use cello_core::http::query::{decode_path, parse_bool, parse_float, parse_int, parse_urlencoded};
use cello_core::http::request::check_head;
use cello_core::middleware::ContextValue;
use cello_core::server::RequestBody;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyString};

use crate::conversion::json_reader::{self, JsonError, JsonErrorOrPy};
use crate::ffi::support::{error, support, Ready};
use crate::types::after_response::{self, AfterSlot, Callbacks};
use crate::types::body::{body_error, read_limited, BodyError, BodyState};
use crate::types::convert::problem_parts;
use crate::types::forms::{self, UploadStore};
use crate::types::multidict::{Headers, QueryParams};
use crate::types::response::ResponseParts;

pub use cello_core::http::request::RequestHead;

/// The answer to a head no door may route (`cello_core::http::request::check_head`),
/// or None. The connection is not reused: a body behind such a head cannot be
/// trusted to end where the server would think it does.
pub fn refuse_head(
    version: http::Version,
    headers: &http::HeaderMap,
    path: &str,
) -> Option<ResponseParts> {
    let problem = check_head(version, headers).err()?.with_instance(path);
    let mut parts = problem_parts(&problem);
    parts.headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    Some(parts)
}

/// Not `frozen`: a sync handler's `Request` that nobody kept is emptied and
/// reused for the next one (`NativeIo::new_request`). Everything a request
/// carries must therefore live in these fields, where `clear` resets it: no
/// `dict` or `weakref` slot.
#[pyclass(module = "cello._cello", name = "Request", freelist = 64)]
pub struct Request {
    /// Boxed: built on the I/O side and passed down several calls before it
    /// lands here, where a recycled request swaps it in (see `refill`).
    pub head: Box<RequestHead>,
    body: Mutex<BodyState>,
    params_dict: PyOnceLock<Py<PyDict>>,
    query_params: PyOnceLock<Py<QueryParams>>,
    headers_obj: PyOnceLock<Py<Headers>>,
    cookies: PyOnceLock<Py<PyDict>>,
    /// The `FormData` of the first `form()` call (see `types::forms`).
    form_obj: PyOnceLock<Py<PyAny>>,
    /// The directory of the form's uploaded files, released with the response.
    pub(crate) uploads: PyOnceLock<Py<UploadStore>>,
    json_value: PyOnceLock<Py<PyAny>>,
    context_obj: PyOnceLock<Py<PyAny>>,
    /// `Empty` unless the handler called `_after_response`.
    after_response: Mutex<AfterSlot>,
}

impl Request {
    pub fn new(head: impl Into<Box<RequestHead>>, body: BodyState) -> Self {
        Request {
            head: head.into(),
            body: Mutex::new(body),
            params_dict: PyOnceLock::new(),
            query_params: PyOnceLock::new(),
            headers_obj: PyOnceLock::new(),
            cookies: PyOnceLock::new(),
            form_obj: PyOnceLock::new(),
            uploads: PyOnceLock::new(),
            json_value: PyOnceLock::new(),
            context_obj: PyOnceLock::new(),
            after_response: Mutex::new(AfterSlot::Empty),
        }
    }

    /// Releases everything the request holds and caches: what a recycled
    /// object keeps between two requests. Every field is named, so a new one
    /// cannot be missed.
    pub fn clear(&mut self) {
        let Request {
            head,
            body,
            params_dict,
            query_params,
            headers_obj,
            cookies,
            form_obj,
            uploads,
            json_value,
            context_obj,
            after_response,
        } = self;
        // What owns memory is released; the plain values left behind are
        // overwritten by `refill` before anything can read them.
        let RequestHead {
            method,
            version: _,
            path,
            raw_path,
            query,
            headers,
            params,
            context,
            client: _,
            server: _,
            scheme: _,
            tls,
        } = &mut **head;
        *method = http::Method::GET;
        *path = String::new();
        *raw_path = None;
        *query = String::new();
        *headers = http::HeaderMap::new();
        *params = Vec::new();
        *context = Vec::new();
        *tls = None;
        *body.get_mut().unwrap_or_else(|p| p.into_inner()) = BodyState::Gone;
        *params_dict = PyOnceLock::new();
        *query_params = PyOnceLock::new();
        *headers_obj = PyOnceLock::new();
        *cookies = PyOnceLock::new();
        *form_obj = PyOnceLock::new();
        *uploads = PyOnceLock::new();
        *json_value = PyOnceLock::new();
        *context_obj = PyOnceLock::new();
        *after_response.get_mut().unwrap_or_else(|p| p.into_inner()) = AfterSlot::Empty;
    }

    /// Fills a cleared request with a new one's head and body.
    pub fn refill(&mut self, py: Python<'_>, head: Box<RequestHead>, body: BodyState) {
        debug_assert!(self.is_vacant(py));
        let cleared = std::mem::replace(&mut self.head, head);
        // A cleared head owns nothing: its box is freed without walking it.
        // SAFETY: `ManuallyDrop<T>` has the layout of `T`, so the allocation
        // is freed with the layout it was made with.
        drop(unsafe {
            Box::from_raw(Box::into_raw(cleared).cast::<std::mem::ManuallyDrop<RequestHead>>())
        });
        *self.body.get_mut().unwrap_or_else(|p| p.into_inner()) = body;
    }

    /// True once cleared: nothing owned, nothing cached.
    pub fn is_vacant(&self, py: Python<'_>) -> bool {
        let head = &self.head;
        head.path.capacity() == 0
            && head.query.capacity() == 0
            && head.raw_path.is_none()
            && head.headers.capacity() == 0
            && head.params.capacity() == 0
            && matches!(
                *self.body.lock().unwrap_or_else(|p| p.into_inner()),
                BodyState::Gone
            )
            && self.params_dict.get(py).is_none()
            && self.query_params.get(py).is_none()
            && self.headers_obj.get(py).is_none()
            && self.cookies.get(py).is_none()
            && self.form_obj.get(py).is_none()
            && self.uploads.get(py).is_none()
            && self.json_value.get(py).is_none()
            && self.context_obj.get(py).is_none()
            && matches!(
                *self
                    .after_response
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()),
                AfterSlot::Empty
            )
    }

    fn header(&self, name: &str) -> Option<String> {
        self.head
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    }

    /// A context value a Python middleware attached, or `RuntimeError(missing)`.
    fn attached(&self, py: Python<'_>, key: &str, missing: &str) -> PyResult<Py<PyAny>> {
        let value = self
            .request_context(py)?
            .bind(py)
            .call_method1(intern!(py, "get"), (key,))?;
        if value.is_none() {
            return Err(PyRuntimeError::new_err(missing.to_owned()));
        }
        Ok(value.unbind())
    }

    /// The body bytes, reading them from the socket on first use.
    pub fn body_bytes(&self, py: Python<'_>) -> PyResult<Bytes> {
        let mut state = self.body.lock().unwrap_or_else(|p| p.into_inner());
        if let BodyState::Ready(bytes) = &*state {
            return Ok(bytes.clone());
        }
        if let BodyState::Failed(e) = &*state {
            return Err(body_error(py, *e));
        }
        if let BodyState::Spooled(file) = &*state {
            // A handle of its own: the lock is not held while the GIL is released.
            let read = file.try_clone().and_then(|file| {
                drop(state);
                py.detach(|| file.read_all())
            });
            return read.map_err(|e| {
                PyRuntimeError::new_err(format!("the spooled request body could not be read: {e}"))
            });
        }
        let BodyState::Pending {
            incoming,
            runtime,
            limit,
            timeout,
        } = std::mem::replace(&mut *state, BodyState::Gone)
        else {
            return Err(error(
                py,
                &support(py)?.client_disconnected,
                "request body is no longer available",
            ));
        };
        let read = py.detach(|| {
            runtime.block_on(async move {
                match timeout {
                    Some(d) => tokio::time::timeout(d, read_limited(incoming, limit))
                        .await
                        .unwrap_or(Err(BodyError::TimedOut)),
                    None => read_limited(incoming, limit).await,
                }
            })
        });
        match read {
            Ok(bytes) => {
                *state = BodyState::Ready(bytes.clone());
                Ok(bytes)
            }
            Err(e) => {
                *state = BodyState::Failed(e);
                Err(body_error(py, e))
            }
        }
    }

    /// Takes a body the handler never read, so the server can discard it.
    pub fn take_unread(&self) -> Option<RequestBody> {
        let mut state = self.body.lock().unwrap_or_else(|p| p.into_inner());
        if !matches!(*state, BodyState::Pending { .. }) {
            return None;
        }
        match std::mem::replace(&mut *state, BodyState::Gone) {
            BodyState::Pending { incoming, .. } => Some(incoming),
            _ => None,
        }
    }

    /// Adds `callback` to the after-response callbacks.
    pub fn add_after_response(&self, py: Python<'_>, callback: Bound<'_, PyAny>) -> PyResult<()> {
        after_response::register(py, &self.after_response, callback)
    }

    /// The after-response callbacks, taken by the door that sends the
    /// response (see `crate::pipeline::after_response`).
    pub fn take_after_response(&self) -> Option<Box<Callbacks>> {
        after_response::take(&self.after_response)
    }

    fn text_value(&self, py: Python<'_>) -> PyResult<String> {
        let bytes = self.body_bytes(py)?;
        String::from_utf8(bytes.to_vec()).map_err(|e| match support(py) {
            Ok(s) => error(
                py,
                &s.bad_request,
                &format!("request body is not valid UTF-8: {e}"),
            ),
            Err(e) => e,
        })
    }

    fn query_map(&self, py: Python<'_>) -> PyResult<&Py<QueryParams>> {
        self.query_params.get_or_try_init(py, || {
            Py::new(
                py,
                QueryParams::new(parse_urlencoded(self.head.query.as_bytes())),
            )
        })
    }

    fn form_source(&self) -> forms::FormSource<'_> {
        forms::FormSource {
            content_type: self.header("content-type"),
            body: &self.body,
            read_body: Box::new(|py| self.body_bytes(py)),
            cache: &self.form_obj,
            uploads: &self.uploads,
        }
    }

    fn callable_str(py: Python<'_>, value: &str) -> PyResult<Py<PyAny>> {
        Ok(support(py)?.callable_str.bind(py).call1((value,))?.unbind())
    }
}

/// A view of a test request's `headers=` argument as pairs.
fn header_map(headers: Option<&Bound<'_, PyAny>>) -> PyResult<http::HeaderMap> {
    let mut map = http::HeaderMap::new();
    let Some(headers) = headers else {
        return Ok(map);
    };
    let items = match headers.cast::<PyDict>() {
        Ok(d) => d.items().into_any(),
        Err(_) => headers.clone(),
    };
    for pair in items.try_iter()? {
        let (k, v): (String, String) = pair?.extract()?;
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("invalid header name {k:?}")))?;
        let value = http::HeaderValue::from_str(&v)
            .map_err(|_| PyValueError::new_err(format!("invalid value for header {k:?}")))?;
        map.append(name, value);
    }
    Ok(map)
}

#[pymethods]
impl Request {
    /// Builds a request by hand, for unit tests of handlers.
    #[new]
    #[pyo3(signature = (method, path, params = None, query = None, headers = None, body = None))]
    fn py_new(
        method: &str,
        path: &str,
        params: Option<Vec<(String, String)>>,
        query: Option<&Bound<'_, PyAny>>,
        headers: Option<&Bound<'_, PyAny>>,
        body: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let method = http::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| PyValueError::new_err(format!("invalid HTTP method {method:?}")))?;
        let (path, query_string) = match path.split_once('?') {
            Some((p, q)) => (p.to_owned(), q.to_owned()),
            None => (path.to_owned(), String::new()),
        };
        let query_string = match query {
            None => query_string,
            Some(q) => {
                let items = match q.cast::<PyDict>() {
                    Ok(d) => d.items().into_any(),
                    Err(_) => q.clone(),
                };
                let mut ser = Vec::new();
                for pair in items.try_iter()? {
                    let (k, v): (String, String) = pair?.extract()?;
                    ser.push(format!(
                        "{}={}",
                        percent_encoding::utf8_percent_encode(
                            &k,
                            percent_encoding::NON_ALPHANUMERIC
                        ),
                        percent_encoding::utf8_percent_encode(
                            &v,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    ));
                }
                ser.join("&")
            }
        };
        let body = match body {
            None => Bytes::new(),
            Some(b) => match b.extract::<String>() {
                Ok(s) => Bytes::from(s),
                Err(_) => Bytes::from(b.extract::<Vec<u8>>()?),
            },
        };
        let head = RequestHead {
            method,
            version: http::Version::HTTP_11,
            path: decode_path(&path),
            raw_path: Some(path),
            query: query_string,
            headers: header_map(headers)?,
            params: params.unwrap_or_default(),
            context: Vec::new(),
            client: None,
            server: None,
            scheme: "http",
            tls: None,
        };
        Ok(Request::new(head, BodyState::Ready(body)))
    }

    #[getter]
    fn method(&self) -> &str {
        self.head.method.as_str()
    }

    #[getter]
    fn path(&self) -> &str {
        &self.head.path
    }

    #[getter]
    fn query_string(&self) -> &str {
        &self.head.query
    }

    #[getter]
    fn params<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = self.params_dict.get_or_try_init(py, || -> PyResult<_> {
            let dict = PyDict::new(py);
            for (k, v) in &self.head.params {
                dict.set_item(k, v)?;
            }
            Ok(dict.unbind())
        })?;
        Ok(dict.bind(py).clone())
    }

    #[getter]
    fn query(&self, py: Python<'_>) -> PyResult<Py<QueryParams>> {
        Ok(self.query_map(py)?.clone_ref(py))
    }

    #[getter]
    fn query_params(&self, py: Python<'_>) -> PyResult<Py<QueryParams>> {
        Ok(self.query_map(py)?.clone_ref(py))
    }

    #[getter]
    fn headers(&self, py: Python<'_>) -> PyResult<Py<Headers>> {
        let headers = self.headers_obj.get_or_try_init(py, || {
            let pairs = self
                .head
                .headers
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            Py::new(py, Headers::new(pairs))
        })?;
        Ok(headers.clone_ref(py))
    }

    /// Cookies from every `Cookie` header; a repeated name keeps the last value.
    #[getter]
    fn cookies<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = self.cookies.get_or_try_init(py, || -> PyResult<_> {
            let dict = PyDict::new(py);
            for value in self.head.headers.get_all(http::header::COOKIE) {
                for part in String::from_utf8_lossy(value.as_bytes()).split(';') {
                    let part = part.trim();
                    if part.is_empty() {
                        continue;
                    }
                    let (k, v) = part.split_once('=').unwrap_or(("", part));
                    let v = v.trim().trim_matches('"');
                    dict.set_item(k.trim(), decode_path(v))?;
                }
            }
            Ok(dict.unbind())
        })?;
        Ok(dict.bind(py).clone())
    }

    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.body_bytes(py)?))
    }

    /// The body decoded as UTF-8; invalid bytes raise `BadRequest` (400).
    fn text(&self, py: Python<'_>) -> PyResult<String> {
        self.text_value(py)
    }

    /// The body parsed as JSON, once; malformed JSON raises `BadRequest` (400).
    fn json(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        if let Some(v) = self.json_value.get(py) {
            return Ok(v.clone_ref(py));
        }
        let bytes = self.body_bytes(py)?;
        let value = match json_reader::parse(py, &bytes) {
            Ok(v) => v.unbind(),
            Err(JsonErrorOrPy::Py(e)) => return Err(e),
            Err(JsonErrorOrPy::Json(e)) => {
                return Err(error(
                    py,
                    &support(py)?.bad_request,
                    &format!("request body is not valid JSON: {}", e.0),
                ))
            }
        };
        let _ = self.json_value.set(py, value.clone_ref(py));
        Ok(value)
    }

    /// The form: a `FormData` (a dict of the last value per name, also
    /// awaitable) from a URL-encoded or multipart body, parsed once; the
    /// limits apply to a multipart body (see `types::forms`).
    #[pyo3(signature = (*, max_file_size = None, max_form_size = None, max_field_size = None, max_fields = None, max_files = None))]
    fn form(
        &self,
        py: Python<'_>,
        max_file_size: Option<i64>,
        max_form_size: Option<i64>,
        max_field_size: Option<i64>,
        max_fields: Option<i64>,
        max_files: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let limits = forms::limits(
            max_file_size,
            max_form_size,
            max_field_size,
            max_fields,
            max_files,
        )?;
        forms::form(self.form_source(), py, limits)
    }

    /// The uploaded files of a multipart form, by field name (also awaitable).
    #[pyo3(signature = (*, max_file_size = None, max_form_size = None, max_field_size = None, max_fields = None, max_files = None))]
    fn files(
        &self,
        py: Python<'_>,
        max_file_size: Option<i64>,
        max_form_size: Option<i64>,
        max_field_size: Option<i64>,
        max_fields: Option<i64>,
        max_files: Option<i64>,
    ) -> PyResult<Py<PyAny>> {
        let limits = forms::limits(
            max_file_size,
            max_form_size,
            max_field_size,
            max_fields,
            max_files,
        )?;
        let form = forms::form(self.form_source(), py, limits)?;
        Ok(form.bind(py).call_method0(intern!(py, "_files"))?.unbind())
    }

    fn body_async(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let body = self.body(py)?;
        Ok(Ready::of(py, body.into_any())?.unbind())
    }

    fn text_async(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let text = self.text_value(py)?;
        Ok(Ready::of(py, text.into_pyobject(py)?.into_any())?.unbind())
    }

    fn json_async(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let value = self.json(py)?;
        Ok(Ready::of(py, value.into_bound(py))?.unbind())
    }

    /// The `Content-Type` header (callable, for the older `content_type()` form), or None.
    #[getter]
    fn content_type(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        self.header("content-type")
            .map(|v| Self::callable_str(py, &v))
            .transpose()
    }

    /// The `Last-Event-ID` header: the id of the last server-sent event a
    /// reconnecting client saw, or None.
    #[getter]
    fn last_event_id(&self) -> Option<String> {
        self.header("last-event-id")
    }

    #[getter]
    fn content_length(&self) -> Option<u64> {
        self.header("content-length")
            .and_then(|v| v.trim().parse().ok())
    }

    fn is_json(&self) -> bool {
        self.header("content-type")
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
    }

    fn is_form(&self) -> bool {
        self.header("content-type").is_some_and(|v| {
            v.to_ascii_lowercase()
                .contains("application/x-www-form-urlencoded")
        })
    }

    fn is_multipart(&self) -> bool {
        self.header("content-type")
            .is_some_and(|v| v.to_ascii_lowercase().contains("multipart/"))
    }

    #[pyo3(signature = (name, default = None))]
    fn get_header(
        &self,
        py: Python<'_>,
        name: &str,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match self.header(&name.to_ascii_lowercase()) {
            Some(v) => Ok(v.into_pyobject(py)?.into_any().unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    #[pyo3(signature = (name, default = None))]
    fn get_query_param(
        &self,
        py: Python<'_>,
        name: &str,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match self.query_map(py)?.get().0.get(name) {
            Some(v) => Ok(v.into_pyobject(py)?.into_any().unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    /// A malformed value is the client's fault: `BadRequest` (400) naming the parameter.
    #[pyo3(signature = (name, default = None))]
    fn get_query_int(
        &self,
        py: Python<'_>,
        name: &str,
        default: Option<i64>,
    ) -> PyResult<Option<i64>> {
        match self.query_map(py)?.get().0.get(name) {
            Some(v) => typed(py, "query parameter", name, v, parse_int).map(Some),
            None => Ok(default),
        }
    }

    /// Finite numbers only: `nan` and `inf` are refused like any malformed value.
    #[pyo3(signature = (name, default = None))]
    fn get_query_float(
        &self,
        py: Python<'_>,
        name: &str,
        default: Option<f64>,
    ) -> PyResult<Option<f64>> {
        match self.query_map(py)?.get().0.get(name) {
            Some(v) => typed(py, "query parameter", name, v, parse_float).map(Some),
            None => Ok(default),
        }
    }

    /// True for true/1/yes/on, False for false/0/no/off or an empty value
    /// (any case); anything else is a `BadRequest`.
    #[pyo3(signature = (name, default = None))]
    fn get_query_bool(
        &self,
        py: Python<'_>,
        name: &str,
        default: Option<bool>,
    ) -> PyResult<Option<bool>> {
        match self.query_map(py)?.get().0.get(name) {
            Some(v) => typed(py, "query parameter", name, v, parse_bool).map(Some),
            None => Ok(default),
        }
    }

    #[pyo3(signature = (name, default = None))]
    fn get_param(
        &self,
        py: Python<'_>,
        name: &str,
        default: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        match self.head.params.iter().find(|(k, _)| k == name) {
            Some((_, v)) => Ok(v.into_pyobject(py)?.into_any().unbind()),
            None => Ok(default.unwrap_or_else(|| py.None())),
        }
    }

    #[pyo3(signature = (name, default = None))]
    fn get_param_int(
        &self,
        py: Python<'_>,
        name: &str,
        default: Option<i64>,
    ) -> PyResult<Option<i64>> {
        match self.head.params.iter().find(|(k, _)| k == name) {
            Some((_, v)) => typed(py, "path parameter", name, v, parse_int).map(Some),
            None => Ok(default),
        }
    }

    /// First `X-Forwarded-For` address, else `X-Real-IP`, else the peer address.
    #[getter]
    fn client_ip(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let forwarded = self
            .header("x-forwarded-for")
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()))
            .filter(|s| !s.is_empty())
            .or_else(|| self.header("x-real-ip").map(|v| v.trim().to_owned()));
        let ip = forwarded.or_else(|| self.head.client.map(|a| a.ip().to_string()));
        ip.map(|ip| Self::callable_str(py, &ip)).transpose()
    }

    /// `X-Forwarded-Host`, else `Host`, else the server address.
    #[getter]
    fn host(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let host = self
            .header("x-forwarded-host")
            .or_else(|| self.header("host"))
            .or_else(|| self.head.server.map(|a| a.to_string()))
            .unwrap_or_default();
        Self::callable_str(py, &host)
    }

    #[getter]
    fn scheme(&self) -> &str {
        self.head.scheme
    }

    /// The HTTP version as ASGI names it: "1.0", "1.1", "2" or "3".
    #[getter]
    fn http_version<'py>(&self, py: Python<'py>) -> Bound<'py, PyString> {
        cello_asgi::http_version(py, self.head.version)
    }

    /// The peer's `(host, port)`, as ASGI's `client` (None when unknown).
    #[getter]
    fn client<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        cello_asgi::address_tuple(py, self.head.client)
    }

    /// The local `(host, port)` the request arrived on, as ASGI's `server`.
    #[getter]
    fn server<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        cello_asgi::address_tuple(py, self.head.server)
    }

    /// The client's certificate (PEM) on a TLS connection where it sent
    /// one, else None.
    #[getter]
    fn client_cert(&self) -> Option<String> {
        let tls = self.head.tls.as_ref()?;
        tls.client_chain
            .first()
            .map(|der| cello_core::server::tls::to_pem(der))
    }

    /// The TLS session of a request that came over TLS, in the shape of
    /// the ASGI TLS extension (`tls_version`, `cipher_suite`,
    /// `client_cert_chain` as PEM strings, `client_cert_error`); None over
    /// plain HTTP.
    #[getter]
    fn tls<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(tls) = self.head.tls.as_ref() else {
            return Ok(None);
        };
        crate::types::tls::tls_extension(py, tls).map(Some)
    }

    /// The full URL as the client addressed it.
    #[getter]
    fn url(&self, py: Python<'_>) -> PyResult<String> {
        let host: String = self.host(py)?.extract(py)?;
        let raw_path: String =
            percent_encoding::utf8_percent_encode(&self.head.path, PATH_ENCODE).to_string();
        let mut url = format!("{}://{}{}", self.head.scheme, host, raw_path);
        if !self.head.query.is_empty() {
            url.push('?');
            url.push_str(&self.head.query);
        }
        Ok(url)
    }

    fn user_agent(&self) -> Option<String> {
        self.header("user-agent")
    }

    /// Whether the `Accept` header admits `content_type` (wildcards honoured).
    fn accepts(&self, content_type: &str) -> bool {
        let Some(accept) = self.header("accept") else {
            return true;
        };
        let wanted = content_type.to_ascii_lowercase();
        let (wanted_type, _) = wanted.split_once('/').unwrap_or((&wanted, ""));
        accept.split(',').any(|item| {
            let range = item
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            range == "*/*" || range == wanted || range == format!("{wanted_type}/*")
        })
    }

    fn is_xhr(&self) -> bool {
        self.header("x-requested-with")
            .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
    }

    fn is_secure(&self) -> bool {
        self.head.scheme == "https"
            || self
                .header("x-forwarded-proto")
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
            || self
                .header("x-forwarded-scheme")
                .is_some_and(|v| v.eq_ignore_ascii_case("https"))
    }

    /// Per-request storage shared by middleware, guards and the handler.
    #[getter(context)]
    fn request_context(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let ctx = self.context_obj.get_or_try_init(py, || {
            let ctx = support(py)?.context.bind(py).call0()?;
            // What native middleware attached (the request ID...).
            for (key, value) in &self.head.context {
                match value {
                    ContextValue::Text(text) => ctx.set_item(key, text)?,
                    ContextValue::Json(json) => {
                        let value =
                            json_reader::parse(py, json.as_bytes()).map_err(|e| match e {
                                JsonErrorOrPy::Py(e) => e,
                                JsonErrorOrPy::Json(JsonError(message)) => PyValueError::new_err(
                                    format!("request.context[{key:?}] is not JSON: {message}"),
                                ),
                            })?;
                        ctx.set_item(key, value)?
                    }
                }
            }
            Ok::<_, PyErr>(ctx.unbind())
        })?;
        Ok(ctx.clone_ref(py))
    }

    #[pyo3(name = "get_context")]
    fn context_value(&self, py: Python<'_>, key: &Bound<'_, PyAny>) -> PyResult<Py<PyAny>> {
        Ok(self
            .request_context(py)?
            .bind(py)
            .call_method1(intern!(py, "get"), (key,))?
            .unbind())
    }

    fn set_context(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
        value: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        self.request_context(py)?.bind(py).set_item(key, value)
    }

    fn get_context_string(
        &self,
        py: Python<'_>,
        key: &Bound<'_, PyAny>,
    ) -> PyResult<Option<String>> {
        let value = self.context_value(py, key)?;
        if value.is_none(py) {
            return Ok(None);
        }
        Ok(Some(value.bind(py).str()?.to_string()))
    }

    /// `request.session`: the session the sessions middleware attached to
    /// the context; without sessions enabled, a `RuntimeError` that says how
    /// to enable them.
    #[getter]
    fn session(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.attached(
            py,
            "session",
            "request.session needs sessions: call app.enable_sessions(SessionConfig(...)) first",
        )
    }

    /// `request.csrf_token`: this client's CSRF token, set by `app.enable_csrf()`.
    #[getter]
    fn csrf_token(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.attached(
            py,
            "csrf_token",
            "request.csrf_token needs CSRF protection: call app.enable_csrf(CsrfConfig(...)) first",
        )
    }

    /// The request ID set by the request-ID middleware, else `X-Request-ID`.
    fn request_id(&self, py: Python<'_>) -> PyResult<Option<String>> {
        if let Some(ctx) = self.context_obj.get(py) {
            if let Some(id) = ctx
                .bind(py)
                .call_method1(intern!(py, "get"), ("request_id",))?
                .extract::<Option<String>>()?
            {
                return Ok(Some(id));
            }
        }
        Ok(self.header("x-request-id"))
    }

    /// Runs `callback` (no arguments; it may return an awaitable) after the
    /// response has been sent, in registration order, on the event loop.
    fn _after_response(&self, py: Python<'_>, callback: Bound<'_, PyAny>) -> PyResult<()> {
        self.add_after_response(py, callback)
    }

    fn __repr__(&self) -> String {
        format!("<Request {} {}>", self.head.method, self.head.path)
    }
}

/// Parses a typed getter's value; a malformed one is a `BadRequest` (400)
/// whose detail names the parameter, as the value came from the client.
fn typed<T>(
    py: Python<'_>,
    kind: &str,
    name: &str,
    value: &str,
    parse: fn(&str) -> Result<T, &'static str>,
) -> PyResult<T> {
    parse(value.trim()).map_err(|expected| {
        let message = format!("{kind} {name:?} is not {expected}: {value:?}");
        match support(py) {
            Ok(s) => error(py, &s.bad_request, &message),
            Err(e) => e,
        }
    })
}

/// Characters re-escaped when rebuilding `url` from the decoded path.
const PATH_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'%');
