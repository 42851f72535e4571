//! The engine of `cello.AsyncClient`: outgoing HTTP/1.1 requests on hyper's
//! pooled client, with rustls for HTTPS.
//!
//! Requests run on one small tokio runtime (a single thread) that the
//! extension starts on first use, so the client works under any event loop:
//! the native server's, uvicorn's, or a plain `asyncio.run()`. Each request
//! reports back through a Python callable (the Python side passes one that
//! settles an asyncio future with `loop.call_soon_threadsafe`). The Python
//! wrapper lives in `python/cello/client.py`.

#[cfg(test)]
mod tests;

use std::error::Error as _;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, USER_AGENT};
use http::{Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyTuple};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

use crate::types::multidict::Headers;

/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// At most this many idle connections are kept per host.
const POOL_MAX_IDLE_PER_HOST: usize = 32;

/// The runtime requests run on, with the process that started it: a forked
/// worker inherits the handle but not the thread, so it starts its own.
static RUNTIME: Mutex<Option<(u32, Handle)>> = Mutex::new(None);

fn runtime() -> PyResult<Handle> {
    let mut slot = RUNTIME.lock().unwrap_or_else(PoisonError::into_inner);
    let pid = std::process::id();
    if let Some((owner, handle)) = slot.as_ref() {
        if *owner == pid {
            return Ok(handle.clone());
        }
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("cello-http-client")
        .enable_all()
        .build()
        .map_err(|e| {
            PyRuntimeError::new_err(format!("cannot start the HTTP client thread: {e}"))
        })?;
    let handle = runtime.handle().clone();
    // Lives as long as the process: clients can be used until exit.
    std::mem::forget(runtime);
    *slot = Some((pid, handle.clone()));
    Ok(handle)
}

/// Answers being handed to Python right now, and whether the interpreter is
/// exiting. An answer's thread takes the GIL to settle its future; if the
/// interpreter finalized meanwhile (the awaiting program finished while the
/// thread waited for the GIL again), taking it would abort the process. So
/// exit waits for the answers in flight and later ones are dropped.
struct Deliveries {
    exiting: bool,
    active: usize,
}

static DELIVERIES: Mutex<Deliveries> = Mutex::new(Deliveries {
    exiting: false,
    active: 0,
});
static DELIVERED: Condvar = Condvar::new();

/// How long exit waits for answers already being handed over.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Called by an `atexit` hook of `cello.client`: no answer reaches Python
/// after it returns.
#[pyfunction]
pub fn _http_client_exit(py: Python<'_>) {
    py.detach(|| {
        let mut state = DELIVERIES.lock().unwrap_or_else(PoisonError::into_inner);
        state.exiting = true;
        let _ = DELIVERED
            .wait_timeout_while(state, EXIT_GRACE, |s| s.active > 0)
            .unwrap_or_else(PoisonError::into_inner);
    });
}

/// Hands an outcome to Python unless the interpreter is exiting.
fn hand_over(on_done: Py<PyAny>, outcome: Result<Answer, (Failure, String)>) {
    {
        let mut state = DELIVERIES.lock().unwrap_or_else(PoisonError::into_inner);
        if state.exiting {
            // Dropped without the GIL: pyo3 defers the decref.
            return;
        }
        state.active += 1;
    }
    Python::attach(|py| deliver(py, &on_done, outcome));
    let mut state = DELIVERIES.lock().unwrap_or_else(PoisonError::into_inner);
    state.active -= 1;
    DELIVERED.notify_all();
}

/// Why a request failed; the Python side turns each into its exception class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    Timeout,
    Connection,
    Protocol,
    TooLarge,
}

impl Failure {
    fn name(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Connection => "connection",
            Failure::Protocol => "protocol",
            Failure::TooLarge => "too_large",
        }
    }
}

type Connector = HttpsConnector<HttpConnector>;

pub(crate) struct Engine {
    client: Client<Connector, Full<Bytes>>,
    max_response_size: usize,
}

/// `"a: b: c"`: an error and its sources, the way a person wants to read it.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// Sorts a failed exchange into timeout / connection / protocol.
pub(crate) fn classify(err: &hyper_util::client::legacy::Error) -> Failure {
    let mut source: Option<&(dyn std::error::Error + 'static)> = err.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::TimedOut {
                return Failure::Timeout;
            }
            return Failure::Connection;
        }
        if let Some(hyper_err) = cause.downcast_ref::<hyper::Error>() {
            if hyper_err.is_parse() || hyper_err.is_parse_status() {
                return Failure::Protocol;
            }
        }
        source = cause.source();
    }
    // Could not connect, or the connection closed or broke mid-exchange.
    Failure::Connection
}

/// Reads the body, refusing more than `limit` bytes.
async fn read_body(
    mut body: hyper::body::Incoming,
    declared: Option<u64>,
    limit: usize,
) -> Result<Bytes, (Failure, String)> {
    let too_large = || {
        (
            Failure::TooLarge,
            format!("the response body is larger than max_response_size ({limit} bytes)"),
        )
    };
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large());
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(64 * 1024) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            let kind = if e.is_parse() {
                Failure::Protocol
            } else {
                Failure::Connection
            };
            (
                kind,
                format!("reading the response body failed: {}", error_chain(&e)),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            if buffer.len() + data.len() > limit {
                return Err(too_large());
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

pub(crate) struct Answer {
    status: u16,
    reason: &'static str,
    headers: Vec<(String, String)>,
    body: Bytes,
}

pub(crate) async fn exchange(
    engine: Arc<Engine>,
    request: Request<Full<Bytes>>,
) -> Result<Answer, (Failure, String)> {
    let target = request.uri().to_string();
    let is_head = request.method() == Method::HEAD;
    let response = engine.client.request(request).await.map_err(|e| {
        let failure = classify(&e);
        (
            failure,
            format!("request to {target} failed: {}", error_chain(&e)),
        )
    })?;
    let (parts, body) = response.into_parts();
    // A HEAD answer and a 204 or 304 carry no body, whatever their
    // Content-Length says.
    let bodiless = is_head
        || parts.status == http::StatusCode::NO_CONTENT
        || parts.status == http::StatusCode::NOT_MODIFIED;
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|_| !bodiless);
    let body = read_body(body, declared, engine.max_response_size).await?;
    let headers = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let text = match value.to_str() {
                Ok(s) => s.to_owned(),
                // Header bytes outside ASCII: Latin-1, as HTTP defines them.
                Err(_) => value.as_bytes().iter().map(|&b| b as char).collect(),
            };
            (name.as_str().to_owned(), text)
        })
        .collect();
    Ok(Answer {
        status: parts.status.as_u16(),
        reason: parts.status.canonical_reason().unwrap_or(""),
        headers,
        body,
    })
}

/// The trust roots: the Mozilla set compiled in, or only the certificates of
/// a PEM file (a private CA, a self-signed server).
fn connector(ca_file: Option<&PathBuf>, connect_timeout: Duration) -> PyResult<Connector> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match ca_file {
        None => builder.with_webpki_roots(),
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certificates = CertificateDer::pem_file_iter(path).map_err(|e| {
                PyValueError::new_err(format!(
                    "AsyncClient verify: cannot read the CA file {}: {e}",
                    path.display()
                ))
            })?;
            for certificate in certificates {
                let certificate = certificate.map_err(|e| {
                    PyValueError::new_err(format!(
                        "AsyncClient verify: {} is not a PEM certificate file: {e}",
                        path.display()
                    ))
                })?;
                roots.add(certificate).map_err(|e| {
                    PyValueError::new_err(format!(
                        "AsyncClient verify: a certificate in {} is not usable: {e}",
                        path.display()
                    ))
                })?;
            }
            if roots.is_empty() {
                return Err(PyValueError::new_err(format!(
                    "AsyncClient verify: {} holds no certificate",
                    path.display()
                )));
            }
            // rustls is built with ring as its only provider, which the
            // builder picks.
            let config = rustls::ClientConfig::builder()
                .with_root_certificates(roots)
                .with_no_client_auth();
            builder.with_tls_config(config)
        }
    };
    Ok(builder.https_or_http().enable_http1().wrap_connector(http))
}

/// Checks a URL the client can send to: absolute, http or https, with a host.
pub(crate) fn parse_url(url: &str) -> Result<Uri, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => {
            return Err(format!(
                "invalid URL {url:?}: the scheme must be http or https, not {other:?}"
            ))
        }
        None => {
            return Err(format!(
                "invalid URL {url:?}: it must start with http:// or https://"
            ))
        }
    }
    match uri.host() {
        Some(host) if !host.is_empty() => Ok(uri),
        _ => Err(format!("invalid URL {url:?}: it has no host")),
    }
}

/// `cello._cello._HttpClient`: one connection pool and its settings.
#[pyclass(module = "cello._cello", name = "_HttpClient", frozen)]
pub struct HttpClient {
    engine: Mutex<Option<Arc<Engine>>>,
    timeout: Duration,
}

fn duration(option: &str, seconds: f64) -> PyResult<Duration> {
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(PyValueError::new_err(format!(
            "AsyncClient {option} must be a positive number of seconds, not {seconds}"
        )));
    }
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| PyValueError::new_err(format!("AsyncClient {option} is too large: {seconds}")))
}

#[pymethods]
impl HttpClient {
    #[new]
    #[pyo3(signature = (timeout, max_response_size, ca_file = None))]
    fn new(timeout: f64, max_response_size: usize, ca_file: Option<PathBuf>) -> PyResult<Self> {
        let timeout = duration("timeout", timeout)?;
        if max_response_size == 0 {
            return Err(PyValueError::new_err(
                "AsyncClient max_response_size must be a positive number of bytes",
            ));
        }
        let connector = connector(ca_file.as_ref(), timeout)?;
        let runtime = runtime()?;
        let _context = runtime.enter();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(HttpClient {
            engine: Mutex::new(Some(Arc::new(Engine {
                client,
                max_response_size,
            }))),
            timeout,
        })
    }

    /// Starts a request; `on_done(ok, payload)` is called from the client's
    /// thread with `(status, reason, headers, body)` or `(kind, message)`.
    #[pyo3(signature = (method, url, headers, body, timeout, on_done))]
    fn send(
        &self,
        method: &str,
        url: &str,
        headers: Vec<(String, String)>,
        body: Option<Vec<u8>>,
        timeout: Option<f64>,
        on_done: Py<PyAny>,
    ) -> PyResult<PendingRequest> {
        let engine = self
            .engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("this AsyncClient is closed"))?;
        let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| PyValueError::new_err(format!("invalid HTTP method {method:?}")))?;
        let uri = parse_url(url).map_err(PyValueError::new_err)?;
        let timeout = match timeout {
            Some(seconds) => duration("timeout", seconds)?,
            None => self.timeout,
        };
        let mut request = Request::builder().method(method).uri(uri);
        let mut has_user_agent = false;
        for (name, value) in &headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| PyValueError::new_err(format!("invalid header name {name:?}")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                PyValueError::new_err(format!("invalid value for header {name}: {value:?}"))
            })?;
            has_user_agent |= name == USER_AGENT;
            request = request.header(name, value);
        }
        if !has_user_agent {
            request = request.header(USER_AGENT, concat!("cello/", env!("CARGO_PKG_VERSION")));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| PyValueError::new_err(format!("invalid request: {e}")))?;
        let target = url.to_owned();
        let task = runtime()?.spawn(async move {
            let outcome = match tokio::time::timeout(timeout, exchange(engine, request)).await {
                Ok(outcome) => outcome,
                Err(_) => Err((
                    Failure::Timeout,
                    format!(
                        "no complete response from {target} within {} s",
                        timeout.as_secs_f64()
                    ),
                )),
            };
            hand_over(on_done, outcome);
        });
        Ok(PendingRequest { task })
    }

    /// Drops the pool (idle connections close); later requests raise.
    fn close(&self) {
        self.engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    #[getter]
    fn closed(&self) -> bool {
        self.engine
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_none()
    }
}

fn deliver(py: Python<'_>, on_done: &Py<PyAny>, outcome: Result<Answer, (Failure, String)>) {
    let payload = match outcome {
        Ok(answer) => Headers::new(answer.headers)
            .into_pyobject(py)
            .and_then(|headers| {
                PyTuple::new(
                    py,
                    [
                        answer.status.into_pyobject(py)?.into_any(),
                        answer.reason.into_pyobject(py)?.into_any(),
                        headers.into_any(),
                        PyBytes::new(py, &answer.body).into_any(),
                    ],
                )
            })
            .map(|payload| (true, payload)),
        Err((failure, message)) => (failure.name(), message)
            .into_pyobject(py)
            .map(|payload| (false, payload)),
    };
    let result = payload.and_then(|(ok, payload)| on_done.call1(py, (ok, payload)));
    // The loop may be closed by now (the caller gave up and exited): no one
    // is waiting for this answer any more.
    drop(result);
}

/// A request in flight; `cancel()` stops it (the caller was cancelled).
#[pyclass(module = "cello._cello", name = "_PendingRequest", frozen)]
pub struct PendingRequest {
    task: JoinHandle<()>,
}

#[pymethods]
impl PendingRequest {
    fn cancel(&self) {
        self.task.abort();
    }
}
