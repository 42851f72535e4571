//! Route lookup shared by every door: a handler to run, or the problem
//! response (404, 405 with `Allow`) that answers instead.

use std::sync::Arc;

use cello_core::problem::Problem;

use crate::app::{AppCore, Route, Routed};
use crate::convert::problem_parts;
use crate::response::ResponseParts;

pub enum Dispatch {
    Handle {
        route: Arc<Route>,
        params: Vec<(String, String)>,
        head_from_get: bool,
    },
    Respond(ResponseParts),
}

/// Routes `method route_path`; problems name `shown_path` (the request's path).
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
            let problem = Problem::new(405)
                .with_detail(format!("{method} is not allowed on {shown_path}"))
                .with_instance(shown_path);
            let mut parts = problem_parts(&problem);
            if let Ok(allow) = http::HeaderValue::from_str(&allow) {
                parts.headers.insert(http::header::ALLOW, allow);
            }
            Dispatch::Respond(parts)
        }
        Routed::NotFound => {
            let problem = Problem::new(404)
                .with_detail(format!("no route for {method} {shown_path}"))
                .with_instance(shown_path);
            Dispatch::Respond(problem_parts(&problem))
        }
    }
}

/// A problem after which the connection is not reused (an unread body remains).
pub fn closing_problem(status: u16, detail: String, path: &str) -> ResponseParts {
    let problem = Problem::new(status).with_detail(detail).with_instance(path);
    let mut parts = problem_parts(&problem);
    parts.headers.insert(
        http::header::CONNECTION,
        http::HeaderValue::from_static("close"),
    );
    parts
}

pub fn too_large(limit: usize, path: &str) -> ResponseParts {
    closing_problem(
        413,
        format!("request body exceeds the limit of {limit} bytes"),
        path,
    )
}
