//! Door 2: the native half of `App.__call__`. The Python adapter reads the
//! body from `receive`; this turns the scope into a `Request` and runs the
//! same pipeline the native server runs, resolving a future with the result.

use std::sync::Arc;

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::app::Cello;
use crate::eager::TaskStarter;
use crate::pipeline::{self, Completion, Runner};
use crate::request::{refuse_head, BodyState, Request};
use crate::routing::{dispatch, too_large, Dispatch};

/// The pipeline bound to one event loop, for ASGI calls made on it.
#[pyclass(module = "cello._cello", frozen)]
pub struct AsgiDoor {
    runner: Arc<Runner>,
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
            }),
        }
    }

    /// Handles one `http` scope whose body was read (`None`: it was over the
    /// limit). `future` receives `(status, headers, body, stream)`.
    fn handle(
        &self,
        py: Python<'_>,
        scope: &Bound<'_, PyDict>,
        body: Option<Vec<u8>>,
        future: Py<PyAny>,
    ) -> PyResult<()> {
        let (mut head, route_path) = cello_asgi::head_from_scope(scope)?;
        let head_only = head.method == http::Method::HEAD;
        let shown_path = head.path.clone();
        let refused = refuse_head(head.version, &head.headers, &shown_path);
        let routed = match (refused, &body) {
            (Some(parts), _) => Dispatch::Respond(parts),
            (None, None) => {
                Dispatch::Respond(too_large(self.runner.app.max_body_size(), &shown_path))
            }
            (None, Some(_)) => dispatch(&self.runner.app, &head.method, &route_path, &shown_path),
        };
        let body = BodyState::Ready(body.unwrap_or_default().into());
        match routed {
            Dispatch::Respond(parts) => {
                let request = Bound::new(py, Request::new(head, body))?;
                let completion = Completion::Asgi {
                    future,
                    head: head_only,
                };
                pipeline::deliver(py, &self.runner, parts, completion, &request).delivered();
            }
            Dispatch::Handle {
                route,
                params,
                head_from_get,
            } => {
                head.params = params;
                let request = Bound::new(py, Request::new(head, body))?;
                let completion = Completion::Asgi {
                    future,
                    head: head_only || head_from_get,
                };
                pipeline::run(py, &self.runner, &route, request, completion).delivered();
            }
        }
        Ok(())
    }
}
