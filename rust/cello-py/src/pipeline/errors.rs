//! Exceptions to responses: the app's exception handlers (by status code,
//! then by class), `HTTPException`s as problems, and the logged 500.

use std::sync::Arc;

use cello_core::http::problem::{Extension, Problem};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString};

use super::{deliver, settle, Answer, Completion, Runner, Stage};
use crate::conversion::headers::extract_headers;
use crate::conversion::json_writer;
use crate::ffi::support::support;
use crate::pipeline::app::{AppCore, HandlerKey};
use crate::types::convert::{own_response, problem_parts, to_parts};
use crate::types::request::Request;
use crate::types::response::ResponseParts;

/// A user exception handler for the exception's class or nearest base, then
/// `HTTPException`, then a logged 500.
pub(crate) fn handle_exception(
    py: Python<'_>,
    runner: &Arc<Runner>,
    request: &Bound<'_, Request>,
    err: PyErr,
    completion: Completion,
) -> Answer {
    // `into_value` attaches the traceback, which handlers and logs need.
    let exc = err.clone_ref(py).into_value(py).into_bound(py).into_any();
    if let Some((handler, is_async)) = find_exception_handler(py, &runner.app, &exc) {
        let outcome = handler.bind(py).call1((request, &exc));
        return settle(
            py,
            runner,
            request,
            outcome,
            is_async,
            Stage::ExceptionHandler,
            completion,
            None,
        );
    }
    let parts = match http_exception_parts(py, request, &exc) {
        Some(parts) => parts,
        None => internal_error(py, runner, request, &err),
    };
    deliver(py, runner, parts, completion, request)
}

pub(crate) fn find_exception_handler(
    py: Python<'_>,
    app: &AppCore,
    exc: &Bound<'_, PyAny>,
) -> Option<(Py<PyAny>, bool)> {
    let handlers = app
        .exception_handlers
        .read()
        .unwrap_or_else(|p| p.into_inner());
    if handlers.is_empty() {
        return None;
    }
    // As in Starlette, a handler for an `HTTPException`'s status code comes
    // before the handlers for its classes.
    if handlers
        .iter()
        .any(|h| matches!(h.key, HandlerKey::Status(_)))
    {
        let support = support(py).ok()?;
        if exc.is_instance(support.http_exception.bind(py)).ok()? {
            let status: u16 = exc
                .getattr(intern!(py, "status_code"))
                .ok()?
                .extract()
                .ok()?;
            let found = handlers
                .iter()
                .find(|h| matches!(h.key, HandlerKey::Status(s) if s == status));
            if let Some(h) = found {
                return Some((h.handler.clone_ref(py), h.is_async));
            }
        }
    }
    let mro = exc.get_type().getattr(intern!(py, "__mro__")).ok()?;
    for cls in mro.try_iter().ok()? {
        let cls = cls.ok()?;
        let found = handlers
            .iter()
            .find(|h| matches!(&h.key, HandlerKey::Class(c) if c.bind(py).is(&cls)));
        if let Some(h) = found {
            return Some((h.handler.clone_ref(py), h.is_async));
        }
    }
    None
}

/// `HTTPException(status_code, detail, headers)` as a problem response.
pub(crate) fn http_exception_parts(
    py: Python<'_>,
    request: &Bound<'_, Request>,
    exc: &Bound<'_, PyAny>,
) -> Option<ResponseParts> {
    let support = support(py).ok()?;
    if !exc.is_instance(support.http_exception.bind(py)).ok()? {
        return None;
    }
    // A raised `ProblemDetails` is sent as it renders itself.
    match own_response(exc) {
        Ok(Some(response)) => match to_parts(&response) {
            Ok(parts) => return Some(parts),
            Err(e) => log_error(py, &e, request),
        },
        Ok(None) => {}
        Err(e) => log_error(py, &e, request),
    }
    let status: u16 = exc
        .getattr(intern!(py, "status_code"))
        .ok()?
        .extract()
        .ok()?;
    let mut problem = Problem::new(status).with_instance(request.borrow().head.path.clone());
    if let Ok(detail) = exc.getattr(intern!(py, "detail")) {
        problem = with_detail(problem, &detail);
    }
    let mut parts = problem_parts(&problem);
    if let Ok(headers) = exc.getattr(intern!(py, "headers")) {
        if let Ok(extra) = extract_headers(Some(&headers)) {
            parts.append_headers(&extra);
        }
    }
    Some(parts)
}

/// A str `detail` as is; a list or dict (validation errors) as JSON; else its str().
fn with_detail(problem: Problem, detail: &Bound<'_, PyAny>) -> Problem {
    if detail.is_none() {
        return problem;
    }
    if detail.is_instance_of::<PyList>() || detail.is_instance_of::<PyDict>() {
        if let Ok(json) = json_writer::to_json(detail) {
            return problem.with_json_detail(json);
        }
    }
    problem.with_detail(detail.str().map(|s| s.to_string()).unwrap_or_default())
}

/// Logs the exception and builds the 500 problem (traceback only in debug).
pub(crate) fn internal_error(
    py: Python<'_>,
    runner: &Runner,
    request: &Bound<'_, Request>,
    err: &PyErr,
) -> ResponseParts {
    log_error(py, err, request);
    let mut problem = Problem::new(500).with_instance(request.borrow().head.path.clone());
    if runner.app.debug() {
        let value = err.clone_ref(py).into_value(py).into_bound(py);
        let name = value
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_default();
        let message = value.str().map(|s| s.to_string()).unwrap_or_default();
        problem = problem.with_detail(if message.is_empty() {
            name
        } else {
            format!("{name}: {message}")
        });
        if let Ok(support) = support(py) {
            if let Ok(tb) = support.format_exception.bind(py).call1((value,)) {
                if let Ok(tb) = tb.cast::<PyString>() {
                    problem
                        .extensions
                        .push(("traceback".to_owned(), Extension::Text(tb.to_string())));
                }
            }
        }
    } else {
        problem = problem.with_detail("The server encountered an unexpected error.");
    }
    problem_parts(&problem)
}

pub(crate) fn log_error(py: Python<'_>, err: &PyErr, request: &Bound<'_, Request>) {
    let exc = err.clone_ref(py).into_value(py);
    let logged = support(py).and_then(|s| s.log_exception.bind(py).call1((exc, request)));
    if logged.is_err() {
        err.print(py);
    }
}
