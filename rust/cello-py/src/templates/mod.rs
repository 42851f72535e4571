//! `cello.MiniJinjaEngine`: Jinja2-syntax templates rendered by the
//! `minijinja` crate.
//!
//! The context is copied into native values with the GIL held, then the
//! template renders with the GIL released; only Python objects the template
//! reaches into (attributes, calls) take the GIL back, briefly.
//!
//! The environment sits behind a mutex as an `Arc` that renders clone and
//! let go of at once: changing globals or clearing the cache builds a new
//! environment and swaps it in. A render therefore never holds a lock while
//! it waits for the GIL, so a thread that holds the GIL and wants the lock
//! cannot deadlock with it.

pub(crate) mod values;

#[cfg(test)]
mod tests;

use std::error::Error as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use minijinja::{AutoEscape, Environment, ErrorKind, UndefinedBehavior, Value};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};

/// The name errors and auto-escaping use for `render_string` sources.
pub(crate) const STRING_TEMPLATE_NAME: &str = "<string>";

/// Extensions after which the real one is looked for: `page.html.j2` is HTML.
const TEMPLATE_SUFFIXES: [&str; 3] = [".j2", ".jinja", ".jinja2"];

/// Whether a template of this name is HTML or XML, whose output is escaped.
pub(crate) fn escapes_html(name: &str) -> bool {
    if name == STRING_TEMPLATE_NAME {
        return true;
    }
    let lower = name.to_ascii_lowercase();
    let mut stem = lower.as_str();
    for suffix in TEMPLATE_SUFFIXES {
        if let Some(stripped) = stem.strip_suffix(suffix) {
            stem = stripped;
            break;
        }
    }
    matches!(
        stem.rsplit_once('.').map(|(_, ext)| ext),
        Some("html" | "htm" | "xml" | "xhtml")
    )
}

/// A fresh environment: templates load from `dir`; HTML-ish names (and
/// `render_string` sources) are escaped when `auto_escape` is on.
pub(crate) fn new_environment(
    dir: PathBuf,
    auto_escape: bool,
    strict_undefined: bool,
) -> Environment<'static> {
    let mut env = Environment::new();
    env.set_loader(minijinja::path_loader(dir));
    env.set_undefined_behavior(if strict_undefined {
        UndefinedBehavior::Strict
    } else {
        UndefinedBehavior::Lenient
    });
    if auto_escape {
        env.set_auto_escape_callback(|name| {
            if escapes_html(name) {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
    } else {
        env.set_auto_escape_callback(|_| AutoEscape::None);
    }
    env
}

/// The Python exception for a template error: its class (from
/// `cello.templates`) follows the kind, and it carries the template's name,
/// the line and the message; a Python exception raised inside the template
/// becomes its `__cause__`.
/// `requested` names the template when the error has no location (the
/// template asked for does not exist).
pub(crate) fn template_error(
    py: Python<'_>,
    err: &minijinja::Error,
    requested: Option<&str>,
) -> PyErr {
    let err = innermost(err);
    let class_name = match err.kind() {
        ErrorKind::TemplateNotFound => "TemplateNotFound",
        ErrorKind::SyntaxError => "TemplateSyntaxError",
        ErrorKind::UndefinedError => "UndefinedError",
        _ => "TemplateError",
    };
    let message = describe(err);
    let name = err.name().or(requested).map(str::to_owned);
    let line = err.line();
    let build = || -> PyResult<PyErr> {
        let module = py.import("cello.templates")?;
        let class = module.getattr(class_name)?;
        let instance = class.call1((message.clone(), name.clone(), line))?;
        let exception = PyErr::from_value(instance);
        let mut source = err.source();
        while let Some(cause) = source {
            if let Some(python) = cause.downcast_ref::<PyErr>() {
                exception.set_cause(py, Some(python.clone_ref(py)));
                break;
            }
            source = cause.source();
        }
        Ok(exception)
    };
    build().unwrap_or_else(|e| e)
}

/// The error where it happened: an error in an included or parent template
/// comes wrapped in the error of the template that included it.
pub(crate) fn innermost(err: &minijinja::Error) -> &minijinja::Error {
    let mut deepest = err;
    let mut source = err.source();
    while let Some(cause) = source {
        if let Some(inner) = cause.downcast_ref::<minijinja::Error>() {
            if inner.name().is_some() {
                deepest = inner;
            }
        }
        source = cause.source();
    }
    deepest
}

/// `"<what went wrong> (in <name>, line <n>)"`; the location is that of
/// the template where it went wrong (an included one, say).
pub(crate) fn describe(err: &minijinja::Error) -> String {
    let what = match (err.kind(), err.detail()) {
        // "template \"x.html\" does not exist"
        (ErrorKind::TemplateNotFound, Some(detail)) => detail.to_owned(),
        (kind, Some(detail)) => format!("{kind}: {detail}"),
        (kind, None) => kind.to_string(),
    };
    match (err.name(), err.line()) {
        (Some(name), Some(line)) => format!("{what} (in {name}, line {line})"),
        (Some(name), None) => format!("{what} (in {name})"),
        _ => what,
    }
}

/// The template context: the `ctx` mapping (or nothing) and the keyword
/// arguments, which win on a shared key.
fn context(ctx: Option<&Bound<'_, PyAny>>, kwargs: Option<&Bound<'_, PyDict>>) -> PyResult<Value> {
    let mut items: Vec<(Value, Value)> = Vec::new();
    if let Some(ctx) = ctx.filter(|c| !c.is_none()) {
        if ctx.cast::<PyDict>().is_err() && ctx.cast::<PyMapping>().is_err() {
            return Err(PyTypeError::new_err(format!(
                "the template context must be a dict, not {}",
                ctx.get_type().name()?
            )));
        }
        let value = values::to_value(ctx)?;
        if let Ok(keys) = value.try_iter() {
            for key in keys {
                let item = value.get_item(&key).unwrap_or_default();
                items.push((key, item));
            }
        }
    }
    if let Some(kwargs) = kwargs {
        for (key, item) in kwargs.iter() {
            items.push((values::to_value(&key)?, values::to_value(&item)?));
        }
    }
    Ok(Value::from_iter(items))
}

/// `MiniJinjaEngine(template_dir="templates", auto_escape=True, strict_undefined=False)`.
#[pyclass(module = "cello._cello", frozen)]
pub struct MiniJinjaEngine {
    env: Mutex<Arc<Environment<'static>>>,
    template_dir: PathBuf,
    auto_escape: bool,
    strict_undefined: bool,
}

impl MiniJinjaEngine {
    fn current(&self) -> Arc<Environment<'static>> {
        self.env
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Applies `change` to a copy of the environment and swaps the copy in.
    fn update(&self, change: impl FnOnce(&mut Environment<'static>)) {
        let mut guard = self.env.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Environment::clone(&guard);
        change(&mut next);
        *guard = Arc::new(next);
    }
}

#[pymethods]
impl MiniJinjaEngine {
    #[new]
    #[pyo3(
        signature = (template_dir = PathBuf::from("templates"), auto_escape = true, strict_undefined = false),
        text_signature = "(template_dir='templates', auto_escape=True, strict_undefined=False)"
    )]
    fn new(template_dir: PathBuf, auto_escape: bool, strict_undefined: bool) -> Self {
        let env = new_environment(template_dir.clone(), auto_escape, strict_undefined);
        MiniJinjaEngine {
            env: Mutex::new(Arc::new(env)),
            template_dir,
            auto_escape,
            strict_undefined,
        }
    }

    /// Renders the template file `name` (a path relative to `template_dir`).
    #[pyo3(signature = (name, ctx = None, **kwargs))]
    fn render(
        &self,
        py: Python<'_>,
        name: &str,
        ctx: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let context = context(ctx, kwargs)?;
        let env = self.current();
        let owned = name.to_owned();
        py.detach(move || env.get_template(&owned).and_then(|t| t.render(context)))
            .map_err(|e| template_error(py, &e, Some(name)))
    }

    /// Renders template source given as a string.
    #[pyo3(signature = (source, ctx = None, **kwargs))]
    fn render_string(
        &self,
        py: Python<'_>,
        source: &str,
        ctx: Option<&Bound<'_, PyAny>>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<String> {
        let context = context(ctx, kwargs)?;
        let env = self.current();
        let source = source.to_owned();
        py.detach(move || env.render_named_str(STRING_TEMPLATE_NAME, &source, context))
            .map_err(|e| template_error(py, &e, Some(STRING_TEMPLATE_NAME)))
    }

    /// Makes `value` available to every template as `name`.
    fn add_global(&self, name: &str, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let value = values::to_value(value)?;
        let name = name.to_owned();
        self.update(|env| env.add_global(name, value));
        Ok(())
    }

    /// `add_global` for each item of a dict.
    fn add_globals(&self, globals: &Bound<'_, PyAny>) -> PyResult<()> {
        let mapping = globals
            .cast::<PyMapping>()
            .map_err(|_| PyTypeError::new_err("add_globals() takes a dict of names to values"))?;
        let mut converted = Vec::new();
        for pair in mapping.items()?.iter() {
            let (name, value): (String, Bound<'_, PyAny>) = pair.extract()?;
            converted.push((name, values::to_value(&value)?));
        }
        self.update(|env| {
            for (name, value) in converted {
                env.add_global(name, value);
            }
        });
        Ok(())
    }

    /// Forgets the loaded templates: the next render reads the files again.
    fn clear_cache(&self) {
        self.update(|env| env.clear_templates());
    }

    #[getter]
    fn template_dir(&self) -> String {
        self.template_dir.to_string_lossy().into_owned()
    }

    #[getter]
    fn auto_escape(&self) -> bool {
        self.auto_escape
    }

    #[getter]
    fn strict_undefined(&self) -> bool {
        self.strict_undefined
    }

    fn __repr__(&self) -> String {
        format!(
            "MiniJinjaEngine(template_dir={:?}, auto_escape={}, strict_undefined={})",
            self.template_dir.to_string_lossy(),
            if self.auto_escape { "True" } else { "False" },
            if self.strict_undefined {
                "True"
            } else {
                "False"
            },
        )
    }
}
