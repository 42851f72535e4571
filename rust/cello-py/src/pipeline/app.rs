//! `Cello`: the native half of `cello.App` — route table, exception
//! handlers and settings shared by every door.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::layers::{self, Options};
use crate::types::response::HEADER_ROOM;
use cello_core::middleware::Chain;
use cello_core::routing::{self, Constraint, Lookup, Router};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyString, PyType};

/// One registered handler with the metadata computed at registration.
pub struct Route {
    pub handler: Py<PyAny>,
    pub is_async: bool,
    /// False for an `async def` whose code has no `await`, `async with` or
    /// `async for`: it runs to its end in one step, like a sync handler.
    pub suspends: bool,
    /// Set when the route is a mounted ASGI app rather than a handler.
    pub mount: Option<Mount>,
    /// This route's request-body limit, replacing the app's.
    pub body_limit: Option<usize>,
    /// The name of the Tasks that run it ("GET /users/{id}", "mount /api"),
    /// which says what a task is doing in `asyncio.all_tasks()` and costs
    /// nothing per request (asyncio's default "Task-N" is formatted for each).
    pub task_name: Py<PyString>,
    /// The number of the route's template (`/users/{id}`), which metrics
    /// label its requests with (`cello_core::routing::template_id`).
    pub template: u32,
}

/// A foreign ASGI app served under a path prefix (door 3).
pub struct Mount {
    pub app: Py<PyAny>,
    /// The prefix, without a trailing slash ("" at the root).
    pub prefix: String,
    /// Prepended to `path` and `root_path` (`cello serve --root-path`).
    pub root_path: String,
    /// The app's lifespan state; each request's scope gets a shallow copy.
    pub state: Py<pyo3::types::PyDict>,
}

impl Mount {
    /// The `raw_path`, `path` and `root_path` of a hosted app's scope for
    /// `head`: the path stays whole and the prefix is the root path, both
    /// behind `cello serve --root-path` when one is set.
    pub fn scope_paths(
        &self,
        head: &cello_core::http::request::RequestHead,
    ) -> (String, String, String) {
        if self.root_path.is_empty() {
            (
                head.raw_path().to_owned(),
                head.path.clone(),
                self.prefix.clone(),
            )
        } else {
            (
                format!("{}{}", self.root_path, head.raw_path()),
                format!("{}{}", self.root_path, head.path),
                format!("{}{}", self.root_path, self.prefix),
            )
        }
    }
}

/// A registered `exception_handler`, for an exception class or, as in
/// Starlette, for an `HTTPException` status code.
pub struct ExceptionHandler {
    pub key: HandlerKey,
    pub handler: Py<PyAny>,
    pub is_async: bool,
}

pub enum HandlerKey {
    Class(Py<PyType>),
    Status(u16),
}

/// State shared by the Python thread and the I/O threads.
pub struct AppCore {
    pub router: RwLock<Router<Arc<Route>>>,
    pub exception_handlers: RwLock<Vec<ExceptionHandler>>,
    pub debug: AtomicBool,
    pub max_body_size: AtomicUsize,
    /// Native middleware, run by every door before routing.
    pub chain: RwLock<Arc<Chain>>,
    /// `cello.middleware._Pipeline.run(request, endpoint)` when the app has
    /// Python middleware (`@app.middleware`, `before_request`...).
    pub python_middleware: RwLock<Option<Py<PyAny>>>,
    /// Statuses of the framework's own refusals (404, 405, 413...) that an
    /// exception handler claims: those are answered through Python.
    pub claimed_refusals: RwLock<Vec<u16>>,
}

/// Default request body limit: 10 MiB.
pub const DEFAULT_MAX_BODY: usize = 10 * 1024 * 1024;

/// A route lookup with the handler resolved.
pub enum Routed {
    Found {
        route: Arc<Route>,
        params: Vec<(String, String)>,
        head_from_get: bool,
    },
    MethodNotAllowed(String),
    NotFound,
}

impl AppCore {
    pub fn route(&self, method: &str, path: &str) -> Routed {
        let router = self.router.read().unwrap_or_else(|p| p.into_inner());
        match router.lookup(method, path) {
            Lookup::Found {
                value,
                params,
                head_from_get,
                ..
            } => Routed::Found {
                route: value.clone(),
                params,
                head_from_get,
            },
            Lookup::MethodNotAllowed { allow } => Routed::MethodNotAllowed(allow),
            Lookup::NotFound => Routed::NotFound,
        }
    }

    pub fn debug(&self) -> bool {
        self.debug.load(Ordering::Relaxed)
    }

    pub fn max_body_size(&self) -> usize {
        self.max_body_size.load(Ordering::Relaxed)
    }

    pub fn chain(&self) -> Arc<Chain> {
        self.chain.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn python_middleware(&self, py: Python<'_>) -> Option<Py<PyAny>> {
        self.python_middleware
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|m| m.clone_ref(py))
    }

    /// Whether a refusal with `status` must go through Python: an exception
    /// handler claims it, or Python middleware must see it.
    pub fn refusal_needs_python(&self, status: u16, has_python_middleware: bool) -> bool {
        has_python_middleware
            || self
                .claimed_refusals
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&status)
    }
}

#[pyclass(module = "cello._cello", name = "Cello", frozen)]
pub struct Cello {
    pub core: Arc<AppCore>,
}

#[pymethods]
impl Cello {
    #[new]
    fn new() -> Self {
        Cello {
            core: Arc::new(AppCore {
                router: RwLock::new(Router::new()),
                exception_handlers: RwLock::new(Vec::new()),
                debug: AtomicBool::new(false),
                max_body_size: AtomicUsize::new(DEFAULT_MAX_BODY),
                chain: RwLock::new(Arc::new(Chain::default())),
                python_middleware: RwLock::new(None),
                claimed_refusals: RwLock::new(Vec::new()),
            }),
        }
    }

    /// Registers `handler` for `method path`.
    ///
    /// `constraints` holds `(parameter, kind, pattern)`: kind is int, uuid,
    /// alpha, alphanum or regex (with `pattern`). `suspends` False says an
    /// async handler has no `await`, `async with` or `async for`.
    #[pyo3(signature = (method, path, handler, is_async, constraints = Vec::new(), suspends = true, body_limit = None))]
    // Each argument is one of the Python call's keywords.
    #[allow(clippy::too_many_arguments)]
    fn add_route(
        &self,
        method: &str,
        path: &str,
        handler: Bound<'_, PyAny>,
        is_async: bool,
        constraints: Vec<(String, String, Option<String>)>,
        suspends: bool,
        body_limit: Option<usize>,
    ) -> PyResult<()> {
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(PyValueError::new_err(format!(
                "invalid HTTP method {method:?}"
            )));
        }
        let mut checks = Vec::with_capacity(constraints.len());
        for (name, kind, pattern) in constraints {
            let constraint = match (kind.as_str(), pattern) {
                ("regex", Some(p)) => Constraint::regex(&p),
                ("regex", None) => {
                    return Err(PyValueError::new_err("a regex constraint needs a pattern"))
                }
                (kind, _) => Constraint::from_kind(kind),
            }
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
            checks.push((name, constraint));
        }
        let task_name = PyString::new(handler.py(), &format!("{method} {path}")).unbind();
        let route = Arc::new(Route {
            handler: handler.unbind(),
            is_async,
            suspends,
            mount: None,
            body_limit,
            task_name,
            template: routing::template_id(&routing::template_of(path)),
        });
        self.core
            .router
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(method, path, checks, route)
            .map_err(|e| PyValueError::new_err(e.to_string()))
    }

    /// Gives the registered route `method path` a new handler, keeping its
    /// constraints: how global guards added after a route reach it.
    #[pyo3(signature = (method, path, handler, is_async, suspends = true, body_limit = None))]
    fn replace_route(
        &self,
        method: &str,
        path: &str,
        handler: Bound<'_, PyAny>,
        is_async: bool,
        suspends: bool,
        body_limit: Option<usize>,
    ) -> PyResult<()> {
        let task_name = PyString::new(handler.py(), &format!("{method} {path}")).unbind();
        let route = Arc::new(Route {
            handler: handler.unbind(),
            is_async,
            suspends,
            mount: None,
            body_limit,
            task_name,
            template: routing::template_id(&routing::template_of(path)),
        });
        let replaced = self
            .core
            .router
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .replace(method, path, route);
        if replaced {
            Ok(())
        } else {
            Err(PyValueError::new_err(format!(
                "no route {method} {path} to replace"
            )))
        }
    }

    /// Serves the ASGI `app` for every path under `prefix`, any method.
    #[pyo3(signature = (prefix, app, state, root_path = ""))]
    fn mount(
        &self,
        py: Python<'_>,
        prefix: &str,
        app: Py<PyAny>,
        state: Py<pyo3::types::PyDict>,
        root_path: &str,
    ) -> PyResult<()> {
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && !prefix.starts_with('/') {
            return Err(PyValueError::new_err(format!(
                "mount prefix {prefix:?} must start with '/'"
            )));
        }
        if prefix.contains(['{', '}']) {
            return Err(PyValueError::new_err(
                "a mount prefix cannot contain parameters",
            ));
        }
        let shown_prefix = if prefix.is_empty() { "/" } else { prefix };
        let route = Arc::new(Route {
            handler: py.None(),
            is_async: false,
            suspends: false,
            task_name: PyString::new(py, &format!("mount {shown_prefix}")).unbind(),
            body_limit: None,
            template: routing::template_id(&format!("{prefix}/{{*path}}")),
            mount: Some(Mount {
                app,
                prefix: prefix.to_owned(),
                root_path: root_path.trim_end_matches('/').to_owned(),
                state,
            }),
        });
        let mut router = self.core.router.write().unwrap_or_else(|p| p.into_inner());
        let exact = if prefix.is_empty() {
            "/".to_owned()
        } else {
            prefix.to_owned()
        };
        let mut paths = vec![exact, format!("{prefix}/{{*path}}")];
        if !prefix.is_empty() {
            paths.push(format!("{prefix}/"));
        }
        for path in paths {
            router
                .add(
                    cello_core::routing::ANY_METHOD,
                    &path,
                    Vec::new(),
                    route.clone(),
                )
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        Ok(())
    }

    /// Registers `handler` for an exception class or an `HTTPException`
    /// status code; `refusals` are the statuses of the framework's own
    /// refusals it covers, which from now on are answered through it.
    #[pyo3(signature = (key, handler, is_async, refusals = Vec::new()))]
    fn add_exception_handler(
        &self,
        key: &Bound<'_, PyAny>,
        handler: Py<PyAny>,
        is_async: bool,
        refusals: Vec<u16>,
    ) -> PyResult<()> {
        let key = match key.cast::<PyType>() {
            Ok(cls) => HandlerKey::Class(cls.clone().unbind()),
            Err(_) => HandlerKey::Status(key.extract()?),
        };
        self.core
            .exception_handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(ExceptionHandler {
                key,
                handler,
                is_async,
            });
        let mut claimed = self
            .core
            .claimed_refusals
            .write()
            .unwrap_or_else(|p| p.into_inner());
        for status in refusals {
            if !claimed.contains(&status) {
                claimed.push(status);
            }
        }
        Ok(())
    }

    /// Adds a native middleware layer (`kind` with its `options`) for every
    /// path, or for `prefix` and the paths below it.
    #[pyo3(signature = (kind, prefix = "", options = None))]
    fn add_layer(
        &self,
        kind: &str,
        prefix: &str,
        options: Option<&Bound<'_, pyo3::types::PyDict>>,
    ) -> PyResult<()> {
        let layer = layers::build(kind, &Options(options))?;
        let mut chain = self.core.chain.write().unwrap_or_else(|p| p.into_inner());
        // Servers and doors hold the chain they started with: a layer added
        // later makes a new chain rather than changing one in use.
        let mut next = Chain::clone(&chain);
        next.push(prefix, layer)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        HEADER_ROOM.fetch_max(next.headers_added(), Ordering::Relaxed);
        *chain = Arc::new(next);
        Ok(())
    }

    /// `(name, prefix)` of each native layer, in the order requests pass them.
    fn layers(&self) -> Vec<(String, String)> {
        self.core
            .chain()
            .names()
            .into_iter()
            .map(|(name, prefix)| (name.to_owned(), prefix.to_owned()))
            .collect()
    }

    /// Sets (or with None clears) the Python middleware runner.
    fn set_python_middleware(&self, runner: Option<Py<PyAny>>) {
        *self
            .core
            .python_middleware
            .write()
            .unwrap_or_else(|p| p.into_inner()) = runner;
    }

    #[getter]
    fn get_debug(&self) -> bool {
        self.core.debug()
    }

    #[setter]
    fn set_debug(&self, debug: bool) {
        self.core.debug.store(debug, Ordering::Relaxed);
    }

    #[getter]
    fn get_max_body_size(&self) -> usize {
        self.core.max_body_size()
    }

    #[setter]
    fn set_max_body_size(&self, size: usize) {
        self.core.max_body_size.store(size, Ordering::Relaxed);
    }
}
