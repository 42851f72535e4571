//! Route table: matchit's radix tree plus per-method handlers and typed
//! parameter constraints.
//!
//! Static segments beat parameters, which beat catch-alls (matchit's own
//! priority). A path that matches but whose method is not registered yields
//! `MethodNotAllowed` with the `Allow` value; a parameter that fails its
//! constraint makes the route not match at all (404), as if it were absent.

use std::collections::HashMap;
use std::fmt;

use regex::Regex;

/// A check on one path parameter's text.
#[derive(Debug, Clone)]
pub enum Constraint {
    /// An optionally signed decimal integer.
    Int,
    /// A UUID in its canonical 8-4-4-4-12 hex form.
    Uuid,
    /// ASCII letters only.
    Alpha,
    /// ASCII letters and digits only.
    Alphanum,
    /// The whole value must match the expression.
    Regex(Regex),
}

impl Constraint {
    /// Parses the inline form used in `{name:kind}`.
    pub fn from_kind(kind: &str) -> Result<Self, RouteError> {
        match kind {
            "int" => Ok(Constraint::Int),
            "uuid" => Ok(Constraint::Uuid),
            "alpha" => Ok(Constraint::Alpha),
            "alphanum" => Ok(Constraint::Alphanum),
            other => Err(RouteError::UnknownConstraint(other.to_owned())),
        }
    }

    /// Builds a regex constraint anchored to the whole value.
    pub fn regex(pattern: &str) -> Result<Self, RouteError> {
        Regex::new(&format!("^(?:{pattern})$"))
            .map(Constraint::Regex)
            .map_err(|e| RouteError::BadRegex(pattern.to_owned(), e.to_string()))
    }

    pub fn matches(&self, value: &str) -> bool {
        match self {
            Constraint::Int => {
                let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
                !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
            }
            Constraint::Uuid => is_uuid(value),
            Constraint::Alpha => {
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphabetic())
            }
            Constraint::Alphanum => {
                !value.is_empty() && value.bytes().all(|b| b.is_ascii_alphanumeric())
            }
            Constraint::Regex(re) => re.is_match(value),
        }
    }
}

fn is_uuid(value: &str) -> bool {
    let b = value.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Why a route could not be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    MissingSlash(String),
    Duplicate { method: String, path: String },
    Conflict { path: String, reason: String },
    UnknownConstraint(String),
    UnknownParameter { path: String, name: String },
    BadRegex(String, String),
    BadMethod(String),
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::MissingSlash(p) => write!(f, "route path {p:?} must start with '/'"),
            RouteError::Duplicate { method, path } => {
                write!(f, "route {method} {path} is already registered")
            }
            RouteError::Conflict { path, reason } => {
                write!(
                    f,
                    "route {path:?} conflicts with an existing route: {reason}"
                )
            }
            RouteError::UnknownConstraint(k) => write!(
                f,
                "unknown path parameter type {k:?} (expected int, uuid, alpha or alphanum)"
            ),
            RouteError::UnknownParameter { path, name } => {
                write!(
                    f,
                    "constraint for {name:?} names no parameter of route {path:?}"
                )
            }
            RouteError::BadRegex(p, e) => write!(f, "invalid constraint regex {p:?}: {e}"),
            RouteError::BadMethod(m) => write!(f, "invalid HTTP method {m:?}"),
        }
    }
}

impl std::error::Error for RouteError {}

struct MethodRoute<T> {
    method: String,
    constraints: Vec<(String, Constraint)>,
    value: T,
}

struct Entry<T> {
    routes: Vec<MethodRoute<T>>,
}

/// The outcome of looking up a request.
pub enum Lookup<'a, T> {
    Found {
        value: &'a T,
        /// The matched pattern as registered (with inline types removed).
        pattern: &'a str,
        params: Vec<(String, String)>,
        /// A HEAD request answered by the GET handler.
        head_from_get: bool,
    },
    MethodNotAllowed {
        allow: String,
    },
    NotFound,
}

/// Maps (method, path) to a value, usually a handler index.
pub struct Router<T> {
    tree: matchit::Router<usize>,
    entries: Vec<Entry<T>>,
    patterns: Vec<String>,
    by_pattern: HashMap<String, usize>,
}

impl<T> Default for Router<T> {
    fn default() -> Self {
        Router {
            tree: matchit::Router::new(),
            entries: Vec::new(),
            patterns: Vec::new(),
            by_pattern: HashMap::new(),
        }
    }
}

/// The method name that matches every method (used for mounted apps).
pub const ANY_METHOD: &str = "*";

/// The pseudo-method WebSocket routes are registered under: it matches only
/// WebSocket handshakes and never shows in an `Allow` list.
pub const WEBSOCKET_METHOD: &str = "WEBSOCKET";

/// Canonical ordering for the `Allow` header.
const METHOD_ORDER: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

impl<T> Router<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `method path`. `path` may use `{name}`, `{name:int|uuid|alpha|alphanum}`
    /// and a trailing `{*rest}`; `constraints` adds checks by parameter name.
    pub fn add(
        &mut self,
        method: &str,
        path: &str,
        constraints: Vec<(String, Constraint)>,
        value: T,
    ) -> Result<(), RouteError> {
        if !path.starts_with('/') {
            return Err(RouteError::MissingSlash(path.to_owned()));
        }
        let (pattern, names, mut all) = split_inline_types(path)?;
        for (name, _) in &constraints {
            if !names.contains(name) {
                return Err(RouteError::UnknownParameter {
                    path: path.to_owned(),
                    name: name.clone(),
                });
            }
        }
        all.extend(constraints);
        let method = method.to_ascii_uppercase();
        if method != ANY_METHOD && !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(RouteError::BadMethod(method));
        }
        let index = match self.by_pattern.get(&pattern) {
            Some(&index) => index,
            None => {
                let index = self.entries.len();
                self.tree
                    .insert(pattern.clone(), index)
                    .map_err(|e| RouteError::Conflict {
                        path: path.to_owned(),
                        reason: e.to_string(),
                    })?;
                self.entries.push(Entry { routes: Vec::new() });
                self.patterns.push(pattern.clone());
                self.by_pattern.insert(pattern, index);
                index
            }
        };
        let entry = &mut self.entries[index];
        if entry.routes.iter().any(|r| r.method == method) {
            return Err(RouteError::Duplicate {
                method,
                path: path.to_owned(),
            });
        }
        entry.routes.push(MethodRoute {
            method,
            constraints: all,
            value,
        });
        Ok(())
    }

    /// Replaces the value of the registered route `method path` (as given to
    /// [`Router::add`]), keeping its constraints; false when there is none.
    /// An app's global guards, added after some of its routes, wrap those
    /// routes' handlers this way.
    pub fn replace(&mut self, method: &str, path: &str, value: T) -> bool {
        let Ok((pattern, _, _)) = split_inline_types(path) else {
            return false;
        };
        let Some(&index) = self.by_pattern.get(&pattern) else {
            return false;
        };
        let method = method.to_ascii_uppercase();
        match self.entries[index]
            .routes
            .iter_mut()
            .find(|r| r.method == method)
        {
            Some(route) => {
                route.value = value;
                true
            }
            None => false,
        }
    }

    /// Looks up an (already percent-decoded) path.
    pub fn lookup(&self, method: &str, path: &str) -> Lookup<'_, T> {
        let Ok(matched) = self.tree.at(path) else {
            return Lookup::NotFound;
        };
        let index = *matched.value;
        let params: Vec<(String, String)> = matched
            .params
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let passes = |r: &MethodRoute<T>| {
            r.constraints.iter().all(|(name, c)| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .is_some_and(|(_, v)| c.matches(v))
            })
        };
        let routes = &self.entries[index].routes;
        let found = |m: &str| routes.iter().find(|r| r.method == m && passes(r));
        let pattern = self.patterns[index].as_str();
        if let Some(route) = found(method) {
            return Lookup::Found {
                value: &route.value,
                pattern,
                params,
                head_from_get: false,
            };
        }
        // A route registered for "*" (a mounted app) takes any method.
        if let Some(route) = found(ANY_METHOD) {
            return Lookup::Found {
                value: &route.value,
                pattern,
                params,
                head_from_get: false,
            };
        }
        if method == "HEAD" {
            if let Some(route) = found("GET") {
                return Lookup::Found {
                    value: &route.value,
                    pattern,
                    params,
                    head_from_get: true,
                };
            }
        }
        if method == WEBSOCKET_METHOD {
            // A WebSocket handshake to an HTTP-only path: no route.
            return Lookup::NotFound;
        }
        let mut allowed: Vec<&str> = routes
            .iter()
            .filter(|r| passes(r) && r.method != WEBSOCKET_METHOD)
            .map(|r| r.method.as_str())
            .collect();
        if allowed.is_empty() {
            return Lookup::NotFound;
        }
        if allowed.contains(&"GET") && !allowed.contains(&"HEAD") {
            allowed.push("HEAD");
        }
        allowed.sort_by_key(|m| {
            (
                METHOD_ORDER
                    .iter()
                    .position(|o| o == m)
                    .unwrap_or(METHOD_ORDER.len()),
                *m,
            )
        });
        Lookup::MethodNotAllowed {
            allow: allowed.join(", "),
        }
    }
}

/// The template a route is known by in metrics and traces: its path as
/// registered, with inline types removed (`/users/{id:int}` is
/// `/users/{id}`), so every request it matches shares one label.
pub fn template_of(path: &str) -> String {
    split_inline_types(path).map_or_else(|_| path.to_owned(), |(pattern, _, _)| pattern)
}

/// A route template's number: the same template always gets the same one
/// in a process (templates are numbered as routes are registered, before
/// `run()` forks, so every worker numbers them alike). 0 is no template.
pub fn template_id(template: &str) -> u32 {
    let mut templates = TEMPLATES.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(&id) = templates.ids.get(template) {
        return id;
    }
    let template: std::sync::Arc<str> = template.into();
    templates.names.push(template.clone());
    let id = templates.names.len() as u32;
    templates.ids.insert(template, id);
    id
}

/// The template numbered `id` by [`template_id`].
pub fn template_name(id: u32) -> Option<std::sync::Arc<str>> {
    let templates = TEMPLATES.lock().unwrap_or_else(|p| p.into_inner());
    templates.names.get((id as usize).checked_sub(1)?).cloned()
}

#[derive(Default)]
struct Templates {
    names: Vec<std::sync::Arc<str>>,
    ids: HashMap<std::sync::Arc<str>, u32>,
}

static TEMPLATES: std::sync::LazyLock<std::sync::Mutex<Templates>> =
    std::sync::LazyLock::new(Default::default);

/// A route path with inline types removed: matchit pattern, parameter names,
/// constraints taken from the inline types.
type SplitPath = (String, Vec<String>, Vec<(String, Constraint)>);

/// Turns `{id:int}` into `{id}` plus an `Int` constraint, and lists every
/// parameter name (catch-alls included).
fn split_inline_types(path: &str) -> Result<SplitPath, RouteError> {
    let mut pattern = String::with_capacity(path.len());
    let mut names = Vec::new();
    let mut constraints = Vec::new();
    let mut rest = path;
    while let Some(open) = rest.find('{') {
        if rest[open..].starts_with("{{") {
            pattern.push_str(&rest[..open + 2]);
            rest = &rest[open + 2..];
            continue;
        }
        let Some(close) = rest[open..].find('}') else {
            pattern.push_str(rest);
            rest = "";
            break;
        };
        let inner = &rest[open + 1..open + close];
        pattern.push_str(&rest[..open]);
        let (name, kind) = match inner.split_once(':') {
            Some((n, k)) => (n, Some(k)),
            None => (inner, None),
        };
        pattern.push('{');
        pattern.push_str(name);
        pattern.push('}');
        let bare = name.trim_start_matches('*').to_owned();
        if let Some(kind) = kind {
            constraints.push((bare.clone(), Constraint::from_kind(kind)?));
        }
        names.push(bare);
        rest = &rest[open + close + 1..];
    }
    pattern.push_str(rest);
    Ok((pattern, names, constraints))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router<String> {
        let mut r = Router::new();
        for (m, p) in routes {
            r.add(m, p, vec![], format!("{m} {p}")).unwrap();
        }
        r
    }

    #[test]
    fn replace_swaps_one_route_s_value_and_keeps_its_constraints() {
        let mut r = router(&[("GET", "/users/{id:int}"), ("POST", "/users/{id:int}")]);
        assert!(r.replace("get", "/users/{id:int}", "guarded".into()));
        assert!(!r.replace("PUT", "/users/{id:int}", "x".into()));
        assert!(!r.replace("GET", "/nowhere", "x".into()));
        match r.lookup("GET", "/users/7") {
            Lookup::Found { value, .. } => assert_eq!(value, "guarded"),
            _ => panic!("GET /users/7 must match"),
        }
        assert!(matches!(r.lookup("GET", "/users/x"), Lookup::NotFound));
        match r.lookup("POST", "/users/7") {
            Lookup::Found { value, .. } => assert_eq!(value, "POST /users/{id:int}"),
            _ => panic!("POST /users/7 must match"),
        }
    }

    fn hit(r: &Router<String>, m: &str, p: &str) -> Option<(String, Vec<(String, String)>)> {
        match r.lookup(m, p) {
            Lookup::Found { value, params, .. } => Some((value.clone(), params)),
            _ => None,
        }
    }

    #[test]
    fn static_beats_param_beats_catch_all() {
        let r = router(&[
            ("GET", "/users/me"),
            ("GET", "/users/{id}"),
            ("GET", "/{*rest}"),
        ]);
        assert_eq!(hit(&r, "GET", "/users/me").unwrap().0, "GET /users/me");
        let (v, params) = hit(&r, "GET", "/users/42").unwrap();
        assert_eq!(v, "GET /users/{id}");
        assert_eq!(params, vec![("id".into(), "42".into())]);
        let (v, params) = hit(&r, "GET", "/a/b/c").unwrap();
        assert_eq!(v, "GET /{*rest}");
        assert_eq!(params, vec![("rest".into(), "a/b/c".into())]);
    }

    #[test]
    fn websocket_routes_stay_out_of_http_routing() {
        let r = router(&[
            ("GET", "/items"),
            ("WEBSOCKET", "/items"),
            ("WEBSOCKET", "/ws"),
        ]);
        // HTTP never sees the WebSocket pseudo-method: not in Allow, not a 405.
        match r.lookup("PUT", "/items") {
            Lookup::MethodNotAllowed { allow } => assert_eq!(allow, "GET, HEAD"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(r.lookup("GET", "/ws"), Lookup::NotFound));
        // A handshake finds its route, and only its route.
        assert_eq!(hit(&r, "WEBSOCKET", "/ws").unwrap().0, "WEBSOCKET /ws");
        assert_eq!(
            hit(&r, "WEBSOCKET", "/items").unwrap().0,
            "WEBSOCKET /items"
        );
        let r = router(&[("GET", "/http")]);
        assert!(matches!(r.lookup("WEBSOCKET", "/http"), Lookup::NotFound));
    }

    #[test]
    fn wrong_method_gives_allow_list() {
        let r = router(&[("GET", "/items"), ("POST", "/items"), ("DELETE", "/items")]);
        match r.lookup("PUT", "/items") {
            Lookup::MethodNotAllowed { allow } => assert_eq!(allow, "GET, HEAD, POST, DELETE"),
            _ => panic!("expected 405"),
        }
    }

    #[test]
    fn head_falls_back_to_get() {
        let r = router(&[("GET", "/")]);
        match r.lookup("HEAD", "/") {
            Lookup::Found { head_from_get, .. } => assert!(head_from_get),
            _ => panic!("expected HEAD to use GET"),
        }
    }

    #[test]
    fn inline_and_named_constraints() {
        let mut r = Router::new();
        r.add("GET", "/n/{id:int}", vec![], 1).unwrap();
        r.add("GET", "/u/{id}", vec![("id".into(), Constraint::Uuid)], 2)
            .unwrap();
        r.add(
            "GET",
            "/s/{slug}",
            vec![("slug".into(), Constraint::regex("[a-z-]+").unwrap())],
            3,
        )
        .unwrap();
        assert!(matches!(
            r.lookup("GET", "/n/-12"),
            Lookup::Found { value: 1, .. }
        ));
        assert!(matches!(r.lookup("GET", "/n/12a"), Lookup::NotFound));
        assert!(matches!(
            r.lookup("GET", "/u/123e4567-e89b-12d3-a456-426614174000"),
            Lookup::Found { value: 2, .. }
        ));
        assert!(matches!(r.lookup("GET", "/u/nope"), Lookup::NotFound));
        assert!(matches!(
            r.lookup("GET", "/s/hello-world"),
            Lookup::Found { value: 3, .. }
        ));
        assert!(matches!(r.lookup("GET", "/s/Hello"), Lookup::NotFound));
    }

    #[test]
    fn registration_errors_are_specific() {
        let mut r = Router::new();
        r.add("GET", "/a/{id}", vec![], ()).unwrap();
        assert!(matches!(
            r.add("get", "/a/{id}", vec![], ()),
            Err(RouteError::Duplicate { .. })
        ));
        assert!(matches!(
            r.add("GET", "/a/{name}", vec![], ()),
            Err(RouteError::Conflict { .. })
        ));
        assert!(matches!(
            r.add("GET", "nope", vec![], ()),
            Err(RouteError::MissingSlash(_))
        ));
        assert!(matches!(
            r.add("GET", "/b/{x:float}", vec![], ()),
            Err(RouteError::UnknownConstraint(_))
        ));
        assert!(matches!(
            r.add("GET", "/c/{x}", vec![("y".into(), Constraint::Int)], ()),
            Err(RouteError::UnknownParameter { .. })
        ));
    }

    #[test]
    fn any_method_route_takes_every_method_after_specific_ones() {
        let mut r = Router::new();
        r.add(ANY_METHOD, "/m/{*rest}", vec![], "mounted").unwrap();
        r.add("GET", "/m/own", vec![], "own").unwrap();
        assert!(matches!(
            r.lookup("PATCH", "/m/x/y"),
            Lookup::Found {
                value: &"mounted",
                ..
            }
        ));
        assert!(matches!(
            r.lookup("GET", "/m/own"),
            Lookup::Found { value: &"own", .. }
        ));
    }

    #[test]
    fn trailing_slash_is_significant() {
        let r = router(&[("GET", "/users")]);
        assert!(hit(&r, "GET", "/users").is_some());
        assert!(hit(&r, "GET", "/users/").is_none());
    }
}
