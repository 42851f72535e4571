//! `Response` and its constructors.
//!
//! A response is a status, lower-cased header pairs and a payload: bytes, or a
//! Python iterable/async iterable streamed chunk by chunk.

use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use cello_core::http::file::{FileSlice, CHUNK};
use cello_core::middleware::Content;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::conversion::headers::{append_pairs, checked_header, extract_headers};
use crate::conversion::json_writer::to_json;
use crate::types::cookies::{cookie_expires, cookie_max_age, set_cookie_value, CookieAttributes};

/// What the body is made of.
pub enum Payload {
    Bytes(Bytes),
    Stream(Py<PyAny>),
    /// A file's bytes, read as they are sent (a static file).
    File(FileSlice),
}

impl Payload {
    fn clone_ref(&self, py: Python<'_>) -> Payload {
        match self {
            Payload::Bytes(b) => Payload::Bytes(b.clone()),
            Payload::Stream(s) => Payload::Stream(s.clone_ref(py)),
            Payload::File(f) => Payload::File(f.clone()),
        }
    }
}

/// A file slice as a Python iterator of chunks, for the doors that send
/// bodies through Python (the app under an ASGI server).
#[pyclass(module = "cello._cello")]
pub struct FileChunks {
    slice: FileSlice,
    sent: u64,
}

impl FileChunks {
    pub fn new(slice: FileSlice) -> Self {
        FileChunks { slice, sent: 0 }
    }
}

#[pymethods]
impl FileChunks {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let (slice, sent) = (&self.slice, self.sent);
        let chunk = py.detach(|| slice.read_at(sent, CHUNK))?;
        if chunk.is_empty() {
            return Ok(None);
        }
        self.sent += chunk.len() as u64;
        Ok(Some(PyBytes::new(py, &chunk)))
    }
}

/// A finished response, independent of the door it leaves through. The
/// headers are hyper's own map, so the native door hands them over as they
/// are and every header is checked once, where it enters.
pub struct ResponseParts {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub payload: Payload,
}

/// How many headers the native middleware of the apps in this process may
/// add to a response (the largest of their chains): a capacity hint only.
pub static HEADER_ROOM: AtomicUsize = AtomicUsize::new(0);

pub const JSON: &str = "application/json";

// Content types as header values made at compile time: `from_static`
// checks every byte of its string when it runs.
pub const JSON_TYPE: http::HeaderValue = http::HeaderValue::from_static(JSON);
pub const OCTET_STREAM_TYPE: http::HeaderValue =
    http::HeaderValue::from_static("application/octet-stream");

/// A middleware layer's own answer (a preflight, a refusal).
impl From<cello_core::middleware::Answer> for ResponseParts {
    fn from(answer: cello_core::middleware::Answer) -> Self {
        ResponseParts {
            status: answer.status,
            headers: answer.headers,
            payload: match answer.body {
                Content::Bytes(bytes) => Payload::Bytes(bytes),
                Content::File(slice) => Payload::File(slice),
            },
        }
    }
}

impl ResponseParts {
    pub fn bytes(status: u16, content_type: http::HeaderValue, body: impl Into<Bytes>) -> Self {
        // Room for the content-length that `finalize` adds, and for the
        // headers native middleware adds: growing the map later rehashes it.
        let room = 2 + HEADER_ROOM.load(Ordering::Relaxed);
        let mut headers = http::HeaderMap::with_capacity(room);
        headers.insert(http::header::CONTENT_TYPE, content_type);
        ResponseParts {
            status,
            headers,
            payload: Payload::Bytes(body.into()),
        }
    }

    /// Adds checked header pairs (see `checked_header`), after the ones there.
    pub fn append_headers(&mut self, pairs: &[(String, String)]) {
        append_pairs(&mut self.headers, pairs);
    }

    /// Sets checked header pairs, each replacing any header of its name.
    pub fn replace_headers(&mut self, pairs: &[(String, String)]) {
        for (name, _) in pairs {
            if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
                self.headers.remove(name);
            }
        }
        self.append_headers(pairs);
    }
}

fn body_bytes(body: &Bound<'_, PyAny>) -> PyResult<Bytes> {
    if let Ok(s) = body.cast::<PyString>() {
        return Ok(Bytes::from(s.to_str()?.to_owned()));
    }
    if let Ok(b) = body.cast::<PyBytes>() {
        return Ok(Bytes::copy_from_slice(b.as_bytes()));
    }
    if let Ok(b) = body.cast::<PyByteArray>() {
        return Ok(Bytes::from(b.to_vec()));
    }
    if let Ok(b) = body.extract::<Vec<u8>>() {
        return Ok(Bytes::from(b));
    }
    Err(PyTypeError::new_err(format!(
        "response body must be str or bytes, not {}; use Response.json() for data",
        body.get_type().name()?
    )))
}

#[pyclass(module = "cello._cello", name = "Response", subclass)]
pub struct Response {
    #[pyo3(get)]
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub payload: Payload,
    /// Runs after this response is sent (`background=`): a `BackgroundTasks`
    /// or any zero-argument callable, registered with the request's
    /// after-response callbacks when a handler returns the response.
    pub background: Option<Py<PyAny>>,
}

impl Response {
    /// The `Response` a Python middleware's `call_next` returns.
    pub fn from_parts(parts: ResponseParts) -> Self {
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        Response {
            status: parts.status,
            headers,
            payload: parts.payload,
            background: None,
        }
    }

    pub fn to_parts(&self, py: Python<'_>) -> ResponseParts {
        let mut headers = http::HeaderMap::new();
        append_pairs(&mut headers, &self.headers);
        ResponseParts {
            status: self.status,
            headers,
            payload: self.payload.clone_ref(py),
        }
    }

    fn with(status: u16, content_type: Option<&str>, payload: Payload) -> Self {
        let headers = content_type
            .map(|ct| vec![("content-type".to_owned(), ct.to_owned())])
            .unwrap_or_default();
        Response {
            status,
            headers,
            payload,
            background: None,
        }
    }

    fn replace_header(&mut self, name: String, value: String) {
        self.headers.retain(|(k, _)| *k != name);
        self.headers.push((name, value));
    }

    fn add_headers(mut self, headers: Option<&Bound<'_, PyAny>>) -> PyResult<Self> {
        for (k, v) in extract_headers(headers)? {
            self.replace_header(k, v);
        }
        Ok(self)
    }

    fn with_background(mut self, background: Option<Bound<'_, PyAny>>) -> PyResult<Self> {
        self.background = checked_background(background)?;
        Ok(self)
    }
}

/// A response's `background`: None, or something to call with no arguments.
fn checked_background(background: Option<Bound<'_, PyAny>>) -> PyResult<Option<Py<PyAny>>> {
    match background {
        Some(b) if b.is_none() => Ok(None),
        Some(b) if !b.is_callable() => Err(PyTypeError::new_err(format!(
            "Response background must be a BackgroundTasks or a function taking no arguments, not {}",
            b.get_type().name()?
        ))),
        other => Ok(other.map(Bound::unbind)),
    }
}

fn check_status(status: u16) -> PyResult<u16> {
    if (100..=599).contains(&status) {
        Ok(status)
    } else {
        Err(PyValueError::new_err(format!(
            "invalid HTTP status code {status}"
        )))
    }
}

#[pymethods]
impl Response {
    #[new]
    #[pyo3(signature = (body = None, status = 200, headers = None, content_type = None, background = None))]
    fn py_new(
        body: Option<&Bound<'_, PyAny>>,
        status: u16,
        headers: Option<&Bound<'_, PyAny>>,
        content_type: Option<&str>,
        background: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let bytes = match body {
            Some(b) if !b.is_none() => body_bytes(b)?,
            _ => Bytes::new(),
        };
        let content_type = content_type.unwrap_or("text/plain; charset=utf-8");
        checked_header("content-type", content_type)?;
        Response::with(
            check_status(status)?,
            Some(content_type),
            Payload::Bytes(bytes),
        )
        .add_headers(headers)?
        .with_background(background)
    }

    #[setter]
    fn set_status(&mut self, status: u16) -> PyResult<()> {
        self.status = check_status(status)?;
        Ok(())
    }

    /// A copy of the headers as a dict (a repeated header shows its last value).
    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for (k, v) in &self.headers {
            dict.set_item(k, v)?;
        }
        Ok(dict)
    }

    #[staticmethod]
    #[pyo3(signature = (data, status = None, headers = None, background = None))]
    fn json(
        data: &Bound<'_, PyAny>,
        status: Option<u16>,
        headers: Option<&Bound<'_, PyAny>>,
        background: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let body = to_json(data)?;
        Response::with(
            check_status(status.unwrap_or(200))?,
            Some(JSON),
            Payload::Bytes(body.into()),
        )
        .add_headers(headers)?
        .with_background(background)
    }

    #[staticmethod]
    #[pyo3(signature = (content, status = None, headers = None))]
    fn text(
        content: &Bound<'_, PyAny>,
        status: Option<u16>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Response::with(
            check_status(status.unwrap_or(200))?,
            Some("text/plain; charset=utf-8"),
            Payload::Bytes(body_bytes(content)?),
        )
        .add_headers(headers)
    }

    #[staticmethod]
    #[pyo3(signature = (content, status = None, headers = None))]
    fn html(
        content: &Bound<'_, PyAny>,
        status: Option<u16>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        Response::with(
            check_status(status.unwrap_or(200))?,
            Some("text/html; charset=utf-8"),
            Payload::Bytes(body_bytes(content)?),
        )
        .add_headers(headers)
    }

    #[staticmethod]
    #[pyo3(signature = (data, content_type = None, status = None, headers = None))]
    fn binary(
        data: &Bound<'_, PyAny>,
        content_type: Option<&str>,
        status: Option<u16>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let ct = content_type.unwrap_or("application/octet-stream");
        checked_header("content-type", ct)?;
        Response::with(
            check_status(status.unwrap_or(200))?,
            Some(ct),
            Payload::Bytes(body_bytes(data)?),
        )
        .add_headers(headers)
    }

    /// A file as an attachment; the type is guessed from the extension.
    #[staticmethod]
    #[pyo3(signature = (path, filename = None, content_type = None, status = None))]
    fn file(
        py: Python<'_>,
        path: &Bound<'_, PyAny>,
        filename: Option<&str>,
        content_type: Option<&str>,
        status: Option<u16>,
    ) -> PyResult<Self> {
        let os = py.import("os")?;
        let path: String = os.call_method1("fspath", (path,))?.extract()?;
        let data = py.detach(|| std::fs::read(&path)).map_err(PyErr::from)?;
        let guessed: Option<String> = match content_type {
            Some(ct) => Some(ct.to_owned()),
            None => py
                .import("mimetypes")?
                .call_method1("guess_type", (&path,))?
                .get_item(0)?
                .extract()?,
        };
        let ct = guessed.unwrap_or_else(|| "application/octet-stream".to_owned());
        checked_header("content-type", &ct)?;
        let name = filename.map(str::to_owned).unwrap_or_else(|| {
            std::path::Path::new(&path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        let mut resp = Response::with(
            check_status(status.unwrap_or(200))?,
            Some(&ct),
            Payload::Bytes(data.into()),
        );
        resp.headers
            .push(("content-disposition".to_owned(), content_disposition(&name)));
        Ok(resp)
    }

    /// 302 by default, 301 when `permanent`, or any 3xx given as `status`.
    #[staticmethod]
    #[pyo3(signature = (url, permanent = None, status = None))]
    fn redirect(url: &str, permanent: Option<bool>, status: Option<u16>) -> PyResult<Self> {
        let status = status.unwrap_or(if permanent.unwrap_or(false) { 301 } else { 302 });
        if !(300..400).contains(&status) {
            return Err(PyValueError::new_err(format!(
                "redirect status must be 3xx, not {status}"
            )));
        }
        let location = checked_header("location", url).map(|_| url.to_owned())?;
        let mut resp = Response::with(status, None, Payload::Bytes(Bytes::new()));
        resp.headers.push(("location".to_owned(), location));
        Ok(resp)
    }

    #[staticmethod]
    fn no_content() -> Self {
        Response::with(204, None, Payload::Bytes(Bytes::new()))
    }

    #[staticmethod]
    #[pyo3(signature = (data = None, location = None))]
    fn created(data: Option<&Bound<'_, PyAny>>, location: Option<&str>) -> PyResult<Self> {
        let mut resp = match data {
            Some(d) if !d.is_none() => {
                Response::with(201, Some(JSON), Payload::Bytes(to_json(d)?.into()))
            }
            _ => Response::with(201, None, Payload::Bytes(Bytes::new())),
        };
        if let Some(loc) = location {
            checked_header("location", loc)?;
            resp.headers.push(("location".to_owned(), loc.to_owned()));
        }
        Ok(resp)
    }

    /// XML from a string as-is, or from dicts/lists/scalars under `root_name`.
    #[staticmethod]
    #[pyo3(signature = (data, status = None, root_name = None))]
    fn xml(
        data: &Bound<'_, PyAny>,
        status: Option<u16>,
        root_name: Option<&str>,
    ) -> PyResult<Self> {
        let body = if let Ok(s) = data.cast::<PyString>() {
            s.to_str()?.to_owned()
        } else {
            let root = root_name.unwrap_or("root");
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
            write_xml(&mut out, root, data)?;
            out
        };
        Ok(Response::with(
            check_status(status.unwrap_or(200))?,
            Some("application/xml; charset=utf-8"),
            Payload::Bytes(body.into()),
        ))
    }

    /// Streams an iterable or async iterable of str/bytes chunks as they are produced.
    #[staticmethod]
    #[pyo3(signature = (source, content_type = None, status = None, headers = None))]
    fn stream(
        source: &Bound<'_, PyAny>,
        content_type: Option<&str>,
        status: Option<u16>,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let py = source.py();
        if !source.hasattr(intern!(py, "__aiter__"))? && !source.hasattr(intern!(py, "__iter__"))? {
            return Err(PyTypeError::new_err(
                "Response.stream() needs an iterable or async iterable",
            ));
        }
        let ct = content_type.unwrap_or("application/octet-stream");
        checked_header("content-type", ct)?;
        Response::with(
            check_status(status.unwrap_or(200))?,
            Some(ct),
            Payload::Stream(source.clone().unbind()),
        )
        .add_headers(headers)
    }

    /// A server-sent event stream (`text/event-stream`) of the events
    /// `source` yields, with keepalive comments while it is idle. Built in
    /// `cello.sse` as a `Response.stream`, so it streams like one.
    #[staticmethod]
    #[pyo3(
        signature = (source, *, keepalive = Some(15.0), headers = None, status = 200),
        text_signature = "(source, *, keepalive=15.0, headers=None, status=200)"
    )]
    fn sse<'py>(
        source: &Bound<'py, PyAny>,
        keepalive: Option<f64>,
        headers: Option<&Bound<'py, PyAny>>,
        status: u16,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = source.py();
        let kwargs = PyDict::new(py);
        kwargs.set_item(intern!(py, "keepalive"), keepalive)?;
        kwargs.set_item(intern!(py, "headers"), headers)?;
        kwargs.set_item(intern!(py, "status"), status)?;
        py.import(intern!(py, "cello.sse"))?
            .getattr(intern!(py, "sse_response"))?
            .call((source,), Some(&kwargs))
    }

    /// Sets a header, replacing any previous value; CR, LF and NUL are rejected.
    fn set_header(&mut self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = value.str()?.to_string();
        let name = checked_header(name, &value)?;
        self.replace_header(name, value);
        Ok(())
    }

    /// Appends a header, keeping earlier values of the same name.
    fn add_header(&mut self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = value.str()?.to_string();
        let name = checked_header(name, &value)?;
        self.headers.push((name, value));
        Ok(())
    }

    /// Appends a `Set-Cookie`. Every attribute is checked, as a `;`, CR or LF
    /// in any of them would add attributes or headers of the caller's choosing.
    #[pyo3(signature = (name, value = "", max_age = None, path = "/", domain = None, secure = false, httponly = false, samesite = Some("Lax"), expires = None))]
    #[allow(clippy::too_many_arguments)]
    fn set_cookie(
        &mut self,
        name: &str,
        value: &str,
        max_age: Option<&Bound<'_, PyAny>>,
        path: Option<&str>,
        domain: Option<&str>,
        secure: bool,
        httponly: bool,
        samesite: Option<&str>,
        expires: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let max_age = max_age
            .filter(|v| !v.is_none())
            .map(cookie_max_age)
            .transpose()?;
        let expires = expires
            .filter(|v| !v.is_none())
            .map(cookie_expires)
            .transpose()?;
        let attributes = CookieAttributes {
            max_age,
            expires,
            path,
            domain,
            secure,
            httponly,
            samesite,
        };
        let cookie = set_cookie_value(name, value, &attributes)?;
        self.headers.push(("set-cookie".to_owned(), cookie));
        Ok(())
    }

    #[pyo3(signature = (name, path = "/", domain = None))]
    fn delete_cookie(
        &mut self,
        name: &str,
        path: Option<&str>,
        domain: Option<&str>,
    ) -> PyResult<()> {
        let attributes = CookieAttributes {
            max_age: Some(0),
            expires: Some("Thu, 01 Jan 1970 00:00:00 GMT".to_owned()),
            path,
            domain,
            secure: false,
            httponly: false,
            samesite: Some("Lax"),
        };
        let cookie = set_cookie_value(name, "", &attributes)?;
        self.headers.push(("set-cookie".to_owned(), cookie));
        Ok(())
    }

    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        match &self.payload {
            Payload::Bytes(b) => Ok(PyBytes::new(py, b)),
            Payload::Stream(_) => Err(PyTypeError::new_err(
                "a streaming response has no body bytes until it is sent",
            )),
            Payload::File(slice) => Ok(PyBytes::new(py, &py.detach(|| slice.read_all())?)),
        }
    }

    fn content_type(&self) -> Option<String> {
        self.headers
            .iter()
            .find(|(k, _)| k == "content-type")
            .map(|(_, v)| v.clone())
    }

    fn content_length(&self) -> Option<usize> {
        match &self.payload {
            Payload::Bytes(b) => Some(b.len()),
            Payload::Stream(_) => None,
            Payload::File(slice) => Some(slice.len as usize),
        }
    }

    /// What runs after the response is sent (see the `background` field).
    #[getter]
    fn background(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.background.as_ref().map(|b| b.clone_ref(py))
    }

    #[setter]
    fn set_background(&mut self, background: Option<Bound<'_, PyAny>>) -> PyResult<()> {
        self.background = checked_background(background)?;
        Ok(())
    }

    fn __repr__(&self) -> String {
        format!("<Response {}>", self.status)
    }
}

fn content_disposition(filename: &str) -> String {
    let ascii_safe = filename.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
        && !filename.contains(['"', '\\']);
    if ascii_safe {
        format!("attachment; filename=\"{filename}\"")
    } else {
        let fallback: String = filename
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() && c != '"' && c != '\\' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!(
            "attachment; filename=\"{fallback}\"; filename*=UTF-8''{}",
            percent_encoding::utf8_percent_encode(filename, percent_encoding::NON_ALPHANUMERIC)
        )
    }
}

fn xml_escape(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

fn write_xml(out: &mut String, tag: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
    let valid_tag = tag
        .chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if !valid_tag {
        return Err(PyValueError::new_err(format!(
            "{tag:?} is not a valid XML element name"
        )));
    }
    out.push('<');
    out.push_str(tag);
    out.push('>');
    if let Ok(dict) = value.cast::<PyDict>() {
        for (k, v) in dict.iter() {
            write_xml(out, &k.str()?.to_string(), &v)?;
        }
    } else if value.cast::<PyList>().is_ok() || value.cast::<PyTuple>().is_ok() {
        for item in value.try_iter()? {
            write_xml(out, "item", &item?)?;
        }
    } else if value.is_none() {
    } else if let Ok(b) = value.extract::<bool>() {
        out.push_str(if b { "true" } else { "false" });
    } else {
        xml_escape(out, &value.str()?.to_string());
    }
    out.push_str("</");
    out.push_str(tag);
    out.push('>');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{ResponseParts, JSON_TYPE};

    #[test]
    fn replaced_headers_drop_every_earlier_value_of_their_name() {
        let mut parts = ResponseParts::bytes(200, JSON_TYPE, "{}");
        parts.append_headers(&[("x-a".into(), "1".into()), ("x-a".into(), "2".into())]);
        parts.replace_headers(&[
            ("x-a".into(), "3".into()),
            ("content-type".into(), "text/plain".into()),
        ]);
        let all = |name: &str| -> Vec<&[u8]> {
            parts
                .headers
                .get_all(name)
                .iter()
                .map(|v| v.as_bytes())
                .collect()
        };
        assert_eq!(all("x-a"), [b"3"]);
        assert_eq!(all("content-type"), [b"text/plain"]);
    }
}
