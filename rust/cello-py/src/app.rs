//! `Cello`: the native half of `cello.App` — route table, exception
//! handlers and settings shared by every door.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use cello_core::router::{Constraint, Lookup, Router};
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
    /// The name of the Tasks that run it ("GET /users/{id}", "mount /api"),
    /// which says what a task is doing in `asyncio.all_tasks()` and costs
    /// nothing per request (asyncio's default "Task-N" is formatted for each).
    pub task_name: Py<PyString>,
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

/// A registered `exception_handler`.
pub struct ExceptionHandler {
    pub exc_type: Py<PyType>,
    pub handler: Py<PyAny>,
    pub is_async: bool,
}

/// State shared by the Python thread and the I/O threads.
pub struct AppCore {
    pub router: RwLock<Router<Arc<Route>>>,
    pub exception_handlers: RwLock<Vec<ExceptionHandler>>,
    pub debug: AtomicBool,
    pub max_body_size: AtomicUsize,
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
            }),
        }
    }

    /// Registers `handler` for `method path`.
    ///
    /// `constraints` holds `(parameter, kind, pattern)`: kind is int, uuid,
    /// alpha, alphanum or regex (with `pattern`). `suspends` False says an
    /// async handler has no `await`, `async with` or `async for`.
    #[pyo3(signature = (method, path, handler, is_async, constraints = Vec::new(), suspends = true))]
    fn add_route(
        &self,
        method: &str,
        path: &str,
        handler: Bound<'_, PyAny>,
        is_async: bool,
        constraints: Vec<(String, String, Option<String>)>,
        suspends: bool,
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
            task_name,
        });
        self.core
            .router
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .add(method, path, checks, route)
            .map_err(|e| PyValueError::new_err(e.to_string()))
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
                    cello_core::router::ANY_METHOD,
                    &path,
                    Vec::new(),
                    route.clone(),
                )
                .map_err(|e| PyValueError::new_err(e.to_string()))?;
        }
        Ok(())
    }

    /// The mounted app serving `path`, as `(app, prefix, state)`, if any.
    fn find_mount(
        &self,
        py: Python<'_>,
        method: &str,
        path: &str,
    ) -> Option<(Py<PyAny>, String, Py<pyo3::types::PyDict>)> {
        match self.core.route(method, path) {
            Routed::Found { route, .. } => route
                .mount
                .as_ref()
                .map(|m| (m.app.clone_ref(py), m.prefix.clone(), m.state.clone_ref(py))),
            _ => None,
        }
    }

    fn add_exception_handler(
        &self,
        exc_type: Bound<'_, PyType>,
        handler: Py<PyAny>,
        is_async: bool,
    ) {
        self.core
            .exception_handlers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(ExceptionHandler {
                exc_type: exc_type.unbind(),
                handler,
                is_async,
            });
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
