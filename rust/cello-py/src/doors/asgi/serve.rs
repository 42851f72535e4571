//! Door 2: the native half of `App.__call__`.
//!
//! For each `http` scope the Python adapter opens an `Exchange`, which runs
//! the app's native middleware and routing at once, exactly as the native
//! server does. The adapter then either hands the request to a mounted ASGI
//! app, or reads the body from `receive` and has the exchange run the same
//! pipeline the native server runs, resolving a future with the result.
//! Every response head it sends goes back through the exchange, so the
//! middleware sees it whoever made it.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cello_core::middleware::{Chain, Context as LayerContext, Encoders, OutBody, Outgoing};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::io::asgi_header_map;
use crate::bridge::eager::TaskStarter;
use crate::pipeline::app::Cello;
use crate::pipeline::routing::{dispatch, Dispatch, Refusal};
use crate::pipeline::{self, Completion, Endpoint, Runner};
use crate::types::body::{spools, BodyState};
use crate::types::forms::BodySpool;
use crate::types::request::{refuse_head, Request, RequestHead};
use crate::types::response::ResponseParts;

/// The pipeline bound to one event loop, for ASGI calls made on it.
#[pyclass(module = "cello._cello", frozen)]
pub struct AsgiDoor {
    runner: Arc<Runner>,
    /// The app's native middleware, as it was when this door opened.
    chain: Arc<Chain>,
}

#[pymethods]
impl AsgiDoor {
    #[new]
    fn new(py: Python<'_>, app: &Cello, event_loop: Py<PyAny>, start_task: Py<PyAny>) -> Self {
        AsgiDoor {
            runner: Arc::new(Runner {
                app: app.core.clone(),
                start_task: TaskStarter::new(py, start_task),
                event_loop,
                native: None,
                python_middleware: app.core.python_middleware(py),
            }),
            chain: app.core.chain(),
        }
    }

    /// Runs the middleware's request hooks and routing for one `http` scope.
    fn begin(&self, scope: &Bound<'_, PyDict>) -> PyResult<Exchange> {
        let (head, route_path) = cello_asgi::head_from_scope(scope)?;
        let mut head = Box::new(head);
        let mut context = LayerContext::default();
        let layered = !self.chain.is_empty();
        let head_only = head.method == http::Method::HEAD;
        // A head no door may route is refused before any middleware, as the
        // native server refuses what hyper cannot parse.
        let mut plan = refuse_head(head.version, &head.headers, &head.path).map(Plan::Answer);
        if layered && plan.is_none() {
            if let Some(answer) = self.chain.request(&mut head, &mut context) {
                plan = Some(Plan::Answer(answer.into()));
            }
            head.context = context.take_values();
        }
        let plan = match plan {
            Some(plan) => plan,
            None => match dispatch(&self.runner.app, &head.method, &route_path, &head.path) {
                Dispatch::Handle {
                    route,
                    params,
                    head_from_get,
                } => {
                    head.params = params;
                    context.set_route(route.template);
                    if route.mount.is_some() {
                        Plan::Mount(route)
                    } else {
                        Plan::Run {
                            endpoint: Endpoint::Handler(route),
                            head_only: head_only || head_from_get,
                        }
                    }
                }
                Dispatch::Refuse(refusal) => refusal_plan(&self.runner, refusal, &head, head_only),
            },
        };
        Ok(Exchange {
            runner: self.runner.clone(),
            chain: self.chain.clone(),
            context: Mutex::new(context),
            encoders: Mutex::new(None),
            head_only,
            layered,
            state: Mutex::new(Some((head, plan))),
        })
    }
}

/// What answers the request, decided by `begin`.
enum Plan {
    /// A response already made (a layer's answer, a refusal).
    Answer(ResponseParts),
    Run {
        endpoint: Endpoint,
        head_only: bool,
    },
    /// A mounted ASGI app (door 3 inside door 2).
    Mount(Arc<crate::pipeline::app::Route>),
}

/// One request through door 2, between `begin` and its response head.
#[pyclass(module = "cello._cello", frozen)]
pub struct Exchange {
    runner: Arc<Runner>,
    chain: Arc<Chain>,
    context: Mutex<LayerContext>,
    /// What a streamed body's chunks pass through on the way out, when a
    /// layer changes them (compression).
    encoders: Mutex<Option<Encoders>>,
    head_only: bool,
    /// Whether any middleware layer must see the response.
    #[pyo3(get)]
    layered: bool,
    state: Mutex<Option<(Box<RequestHead>, Plan)>>,
}

impl Exchange {
    fn take(&self) -> PyResult<(Box<RequestHead>, Plan)> {
        self.state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("this exchange has already been used"))
    }

    fn peek_mount(&self) -> Option<Arc<crate::pipeline::app::Route>> {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((_, Plan::Mount(route))) => Some(route.clone()),
            _ => None,
        }
    }
}

#[pymethods]
impl Exchange {
    /// The mounted ASGI app serving this request and the scope it should
    /// see (`root_path` extended by the prefix, its own lifespan state, and
    /// the headers as the middleware left them), or None.
    fn mount<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
    ) -> PyResult<Option<(Py<PyAny>, Bound<'py, PyDict>)>> {
        let Some(route) = self.peek_mount() else {
            return Ok(None);
        };
        let (head, _) = self.take()?;
        let mount = route.mount.as_ref().expect("a mount plan holds a mount");
        let scope = scope.copy()?;
        let root: String = match scope.get_item("root_path")? {
            Some(root) => root.extract()?,
            None => String::new(),
        };
        scope.set_item("root_path", format!("{root}{}", mount.prefix))?;
        scope.set_item("state", mount.state.bind(py).copy()?)?;
        if self.layered {
            scope.set_item("headers", cello_asgi::headers_to_asgi(py, &head.headers)?)?;
        }
        Ok(Some((mount.app.clone_ref(py), scope)))
    }

    /// Runs the pipeline with the body read from `receive`: bytes, or a
    /// `BodySpool` for a multipart body (`None`: it was over the limit).
    /// `future` receives `(status, headers, body, stream)`.
    fn run(&self, py: Python<'_>, body: Option<Body>, future: Py<PyAny>) -> PyResult<()> {
        let limit = self.body_limit();
        let (head, plan) = self.take()?;
        let head_only = head.method == http::Method::HEAD;
        let plan = match (body.is_some(), plan) {
            (false, Plan::Run { .. }) => {
                let refusal = Refusal::too_large(limit);
                refusal_plan(&self.runner, refusal, &head, head_only)
            }
            (_, plan) => plan,
        };
        let body = match body {
            None => BodyState::Ready(Bytes::new()),
            Some(Body::Bytes(bytes)) => BodyState::Ready(bytes.into()),
            Some(Body::Spool(spool)) => spool.get().take()?,
        };
        let request = Bound::new(py, Request::new(head, body))?;
        match plan {
            Plan::Answer(parts) => {
                let completion = Completion::Asgi {
                    future,
                    head: head_only,
                };
                pipeline::deliver(py, &self.runner, parts, completion, &request).delivered();
            }
            Plan::Run {
                endpoint,
                head_only,
            } => {
                let completion = Completion::Asgi {
                    future,
                    head: head_only,
                };
                pipeline::run(py, &self.runner, endpoint, request, completion).delivered();
            }
            Plan::Mount(_) => {
                return Err(PyRuntimeError::new_err(
                    "a mounted app's request is served through mount()",
                ))
            }
        }
        Ok(())
    }

    /// The most body bytes `run` takes for this request: its route's own
    /// limit, else the app's.
    #[getter]
    fn body_limit(&self) -> usize {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((
                _,
                Plan::Run {
                    endpoint: Endpoint::Handler(route),
                    ..
                },
            )) => route.body_limit,
            _ => None,
        }
        .unwrap_or_else(|| self.runner.app.max_body_size())
    }

    /// Whether the request needs its body read before `run` (an answer
    /// already made does not).
    #[getter]
    fn wants_body(&self) -> bool {
        matches!(
            &*self.state.lock().unwrap_or_else(|p| p.into_inner()),
            Some((_, Plan::Run { .. }))
        )
    }

    /// Whether that body is a multipart form, to be spooled (`BodySpool`)
    /// rather than read into memory.
    #[getter]
    fn spools_body(&self) -> bool {
        match &*self.state.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((head, Plan::Run { .. })) => spools(&head.headers),
            _ => false,
        }
    }

    /// Runs the middleware's response hooks: `(status, headers, body)` as
    /// they leave, with `body` None when the response streams (`body` given
    /// None) and still should. A streamed body's chunks then pass `encode`,
    /// and its end `end`, when `encoding` says so.
    fn finish<'py>(
        &self,
        py: Python<'py>,
        status: u16,
        headers: &Bound<'py, PyAny>,
        body: Option<&[u8]>,
    ) -> PyResult<(u16, Bound<'py, PyList>, Option<Bound<'py, PyBytes>>)> {
        let map = asgi_header_map(headers)?;
        let full = body.map(Bytes::copy_from_slice);
        let mut out = Outgoing::new(status, map, full, self.head_only);
        let mut context = self.context.lock().unwrap_or_else(|p| p.into_inner());
        self.chain.response(&mut context, &mut out);
        *self.encoders.lock().unwrap_or_else(|p| p.into_inner()) = out.take_encoders();
        let body = match out.body {
            OutBody::Full(bytes) => Some(PyBytes::new(py, &bytes)),
            OutBody::Withheld => Some(PyBytes::new(py, b"")),
            OutBody::Streamed => None,
        };
        Ok((
            out.status,
            cello_asgi::headers_to_asgi(py, &out.headers)?,
            body,
        ))
    }

    /// Whether a streamed body's chunks must pass `encode` and `end`.
    #[getter]
    fn encoding(&self) -> bool {
        self.encoders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// One chunk of a streamed body as it goes out (possibly empty).
    fn encode<'py>(&self, py: Python<'py>, chunk: &[u8]) -> Bound<'py, PyBytes> {
        let mut encoders = self.encoders.lock().unwrap_or_else(|p| p.into_inner());
        match encoders.as_mut() {
            Some(encoders) => PyBytes::new(py, &encoders.chunk(Bytes::copy_from_slice(chunk))),
            None => PyBytes::new(py, chunk),
        }
    }

    /// The last bytes of a streamed body, after its last chunk.
    fn end<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let encoders = self
            .encoders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        match encoders {
            Some(mut encoders) => PyBytes::new(py, &encoders.finish()),
            None => PyBytes::new(py, b""),
        }
    }
}

/// A refusal is answered through the pipeline when an exception handler
/// or Python middleware must see it, else at once.
fn refusal_plan(runner: &Runner, refusal: Refusal, head: &RequestHead, head_only: bool) -> Plan {
    let has_middleware = runner.python_middleware.is_some();
    if runner
        .app
        .refusal_needs_python(refusal.status, has_middleware)
    {
        Plan::Run {
            endpoint: Endpoint::Refusal(Box::new(refusal)),
            head_only,
        }
    } else {
        Plan::Answer(refusal.parts(&head.path))
    }
}

/// What `Exchange.run` takes as the request body.
#[derive(FromPyObject)]
enum Body {
    Bytes(Vec<u8>),
    Spool(Py<BodySpool>),
}
