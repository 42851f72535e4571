//! Route lookup shared by every door: a handler to run, or the refusal
//! (404, 405 with `Allow`) that answers instead.

use std::sync::Arc;

use cello_core::http::problem::Problem;

use crate::pipeline::app::{AppCore, Route, Routed};
use crate::types::convert::problem_parts;
use crate::types::response::ResponseParts;

pub enum Dispatch {
    Handle {
        route: Arc<Route>,
        params: Vec<(String, String)>,
        head_from_get: bool,
    },
    Refuse(Refusal),
}

/// One of the framework's own error answers (404, 405, 408, 413). It is
/// answered in Rust unless an exception handler or Python middleware must
/// see it, in which case the pipeline raises it as the matching
/// `cello.exceptions` class; both ways give the same bytes.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub detail: String,
    pub headers: Vec<(String, String)>,
}

impl Refusal {
    fn new(status: u16, detail: String) -> Self {
        Refusal {
            status,
            detail,
            headers: Vec::new(),
        }
    }

    fn with_header(mut self, name: &str, value: String) -> Self {
        self.headers.push((name.to_owned(), value));
        self
    }

    pub fn not_found(method: &http::Method, path: &str) -> Self {
        Refusal::new(404, format!("no route for {method} {path}"))
    }

    pub fn method_not_allowed(method: &http::Method, path: &str, allow: String) -> Self {
        Refusal::new(405, format!("{method} is not allowed on {path}")).with_header("allow", allow)
    }

    /// A body over the limit: the connection is not reused, as the rest of
    /// that body is still on it.
    pub fn too_large(limit: usize) -> Self {
        Refusal::new(
            413,
            format!("request body exceeds the limit of {limit} bytes"),
        )
        .closing()
    }

    pub fn body_timed_out() -> Self {
        Refusal::new(408, "the request body was not received in time".into()).closing()
    }

    fn closing(self) -> Self {
        self.with_header("connection", "close".into())
    }

    /// The problem response, for a request to `path`.
    pub fn parts(&self, path: &str) -> ResponseParts {
        let problem = Problem::new(self.status)
            .with_detail(self.detail.clone())
            .with_instance(path);
        let mut parts = problem_parts(&problem);
        parts.append_headers(&self.headers);
        parts
    }
}

/// Routes `method route_path`; refusals name `shown_path` (the request's path).
pub fn dispatch(
    app: &AppCore,
    method: &http::Method,
    route_path: &str,
    shown_path: &str,
) -> Dispatch {
    match app.route(method.as_str(), route_path) {
        Routed::Found {
            route,
            params,
            head_from_get,
        } => Dispatch::Handle {
            route,
            params,
            head_from_get,
        },
        Routed::MethodNotAllowed(allow) => {
            Dispatch::Refuse(Refusal::method_not_allowed(method, shown_path, allow))
        }
        Routed::NotFound => Dispatch::Refuse(Refusal::not_found(method, shown_path)),
    }
}
