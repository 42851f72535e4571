//! CORS: answers preflight requests before routing (so a path with no
//! OPTIONS route can be preflighted) and tells browsers which origins may
//! read every other response, whoever produced it.
//!
//! Every header value the layer sends is built once, when the layer is;
//! a request without `Origin` costs one header lookup and, when the
//! answer depends on the origin, a `Vary` entry.

use http::header::{self, Entry, HeaderMap, HeaderName, HeaderValue};
use http::Method;

use super::{Answer, Context, Layer, Outgoing, Stage};
use crate::http::problem::Problem;
use crate::http::request::RequestHead;

/// The methods a preflight may ask for when none are configured.
pub const DEFAULT_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Request headers a browser may send cross-origin without the server's
/// leave (the Fetch standard's CORS-safelisted names). They are allowed
/// even when `allow_headers` lists others, since a browser still names
/// them in a preflight when their value is not a simple one (a JSON
/// `Content-Type`).
const SAFELISTED: [&str; 4] = [
    "accept",
    "accept-language",
    "content-language",
    "content-type",
];

/// Sent on every preflight answer, allowed or refused: each of these
/// request headers changes it.
const PREFLIGHT_VARY: &str =
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers";

/// What the CORS layer is configured with, as the Python config class
/// gives it. `None` lists mean "any".
#[derive(Debug, Clone)]
pub struct CorsOptions {
    /// Exact origins (`scheme://host[:port]`); `None` allows any origin
    /// (except `null`) unless `origin_regex` is set.
    pub origins: Option<Vec<String>>,
    /// Origins matching this whole pattern are allowed too.
    pub origin_regex: Option<String>,
    /// `None` allows any method a preflight asks for.
    pub methods: Option<Vec<String>>,
    /// `None` allows any request header a preflight asks for.
    pub allow_headers: Option<Vec<String>>,
    pub expose_headers: Vec<String>,
    pub credentials: bool,
    pub max_age: u64,
}

impl Default for CorsOptions {
    fn default() -> Self {
        CorsOptions {
            origins: None,
            origin_regex: None,
            methods: Some(DEFAULT_METHODS.iter().map(|m| (*m).to_owned()).collect()),
            allow_headers: None,
            expose_headers: Vec::new(),
            credentials: false,
            max_age: 86_400,
        }
    }
}

/// A configuration the layer cannot be built from, naming the option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorsError {
    pub option: &'static str,
    pub reason: String,
}

impl std::fmt::Display for CorsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid CORS option '{}': {}", self.option, self.reason)
    }
}

impl std::error::Error for CorsError {}

fn invalid(option: &'static str, reason: impl Into<String>) -> CorsError {
    CorsError {
        option,
        reason: reason.into(),
    }
}

pub struct Cors {
    any_origin: bool,
    /// Lower-cased; compared ignoring ASCII case.
    origins: Vec<Vec<u8>>,
    origin_regex: Option<regex::Regex>,
    /// `None`: any method.
    methods: Option<Vec<Method>>,
    allow_methods: HeaderValue,
    /// `None`: any header.
    allowed_headers: Option<Vec<HeaderName>>,
    /// What a preflight that names no headers is told (a configured list).
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    credentials: bool,
    max_age: HeaderValue,
    /// False for a plain `*` policy, whose responses are the same for
    /// every origin; otherwise responses vary on `Origin`.
    varies: bool,
}

/// What the request hook decided, kept for the way out. `by` names the
/// layer that decided, so that when two CORS policies cover a path only
/// the first one the request passed acts on it.
struct Seen {
    by: usize,
    verdict: Verdict,
}

enum Verdict {
    /// This layer answered: its answer carries everything already.
    Preflight,
    /// The value for `Access-Control-Allow-Origin`.
    Allowed(HeaderValue),
    Refused,
}

fn joined<'a>(
    option: &'static str,
    items: impl Iterator<Item = &'a str>,
) -> Result<HeaderValue, CorsError> {
    let text = items.collect::<Vec<_>>().join(", ");
    HeaderValue::from_str(&text)
        .map_err(|_| invalid(option, format!("{text:?} is not a header value")))
}

fn header_names(option: &'static str, names: &[String]) -> Result<Vec<HeaderName>, CorsError> {
    names
        .iter()
        .map(|name| {
            HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid(option, format!("{name:?} is not a header name")))
        })
        .collect()
}

impl Cors {
    pub fn new(options: CorsOptions) -> Result<Self, CorsError> {
        let (any_origin, origins) = match options.origins {
            None => (options.origin_regex.is_none(), Vec::new()),
            Some(list) => {
                let any = list.iter().any(|o| o == "*");
                let listed = list
                    .into_iter()
                    .filter(|o| o != "*")
                    .map(|o| {
                        if HeaderValue::from_str(&o).is_err() || o.is_empty() {
                            return Err(invalid("origins", format!("{o:?} is not an origin")));
                        }
                        Ok(o.to_ascii_lowercase().into_bytes())
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                (any, listed)
            }
        };
        let origin_regex = options
            .origin_regex
            .map(|pattern| {
                // A partial match would let `https://example.com.evil.net`
                // through a pattern written for `https://example.com`.
                regex::Regex::new(&format!("^(?:{pattern})$"))
                    .map_err(|e| invalid("origin_regex", e.to_string()))
            })
            .transpose()?;

        let methods = match options.methods {
            Some(list) if !list.iter().any(|m| m == "*") => Some(
                list.iter()
                    .map(|m| {
                        Method::from_bytes(m.as_bytes())
                            .map_err(|_| invalid("methods", format!("{m:?} is not a method")))
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
            _ => None,
        };
        let allow_methods = match &methods {
            Some(list) => joined("methods", list.iter().map(Method::as_str))?,
            // Never read: a preflight is told the method it asked for.
            None => HeaderValue::from_static("*"),
        };

        let (allowed_headers, allow_headers) = match options.allow_headers {
            Some(list) if !list.iter().any(|h| h == "*") => {
                let configured = header_names("allow_headers", &list)?;
                let mut allowed = configured.clone();
                allowed.extend(SAFELISTED.iter().map(|h| HeaderName::from_static(h)));
                let value = (!configured.is_empty())
                    .then(|| joined("allow_headers", configured.iter().map(HeaderName::as_str)))
                    .transpose()?;
                (Some(allowed), value)
            }
            _ => (None, None),
        };

        let exposed = header_names("expose_headers", &options.expose_headers)?;
        let expose_headers = if options.expose_headers.iter().any(|h| h == "*") {
            Some(HeaderValue::from_static("*"))
        } else {
            (!exposed.is_empty())
                .then(|| joined("expose_headers", exposed.iter().map(HeaderName::as_str)))
                .transpose()?
        };

        Ok(Cors {
            varies: !any_origin || options.credentials,
            any_origin,
            origins,
            origin_regex,
            methods,
            allow_methods,
            allowed_headers,
            allow_headers,
            expose_headers,
            credentials: options.credentials,
            max_age: HeaderValue::from(options.max_age),
        })
    }

    fn id(&self) -> usize {
        self as *const Cors as usize
    }

    /// Exact origins only: `https://example.com` does not let in
    /// `https://example.com.evil.net`, and the opaque `null` origin (sandboxed
    /// frames, `file:` pages) only when listed.
    fn allows_origin(&self, origin: &HeaderValue) -> bool {
        let origin = origin.as_bytes();
        if self
            .origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
        {
            return true;
        }
        if origin == b"null" {
            return false;
        }
        self.any_origin
            || self.origin_regex.as_ref().is_some_and(|pattern| {
                std::str::from_utf8(origin).is_ok_and(|origin| pattern.is_match(origin))
            })
    }

    /// The `Access-Control-Allow-Origin` for an allowed origin: `*` when
    /// that tells the browser enough, else the origin itself (browsers
    /// refuse `*` on credentialed requests).
    fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.any_origin && !self.credentials {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    fn allows_method(&self, requested: &HeaderValue) -> bool {
        // Method names are case-sensitive; browsers upper-case the standard ones.
        match &self.methods {
            Some(methods) => methods
                .iter()
                .any(|m| m.as_str().as_bytes() == requested.as_bytes()),
            None => true,
        }
    }

    /// The first requested header that is not allowed, if any.
    fn refused_header<'a>(&self, requested: &'a [&'a HeaderValue]) -> Option<&'a str> {
        let allowed = self.allowed_headers.as_ref()?;
        requested
            .iter()
            .flat_map(|value| value.to_str().unwrap_or("\u{fffd}").split(','))
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .find(|name| {
                !allowed
                    .iter()
                    .any(|a| a.as_str().eq_ignore_ascii_case(name))
            })
    }

    fn refuse(&self, head: &RequestHead, detail: String) -> Answer {
        let problem = Problem::new(403)
            .with_detail(detail)
            .with_instance(head.path.as_str());
        let mut answer = Answer::problem(&problem);
        answer
            .headers
            .insert(header::VARY, HeaderValue::from_static(PREFLIGHT_VARY));
        answer
    }

    fn preflight(&self, head: &RequestHead, origin: &HeaderValue, method: &HeaderValue) -> Answer {
        if !self.allows_origin(origin) {
            return self.refuse(head, "CORS origin not allowed".to_owned());
        }
        if !self.allows_method(method) {
            let method = method.to_str().unwrap_or("(not text)");
            return self.refuse(head, format!("CORS method not allowed: {method}"));
        }
        let requested: Vec<&HeaderValue> = head
            .headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .iter()
            .collect();
        if let Some(name) = self.refused_header(&requested) {
            return self.refuse(head, format!("CORS header not allowed: {name}"));
        }

        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin(origin),
        );
        let methods = match self.methods {
            Some(_) => self.allow_methods.clone(),
            None => method.clone(),
        };
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, methods);
        // Every requested header passed the check above: naming them back
        // is the answer that works with and without credentials.
        let allow_headers = match requested.as_slice() {
            [] => self.allow_headers.clone(),
            [one] => Some((*one).clone()),
            several => joined(
                "allow_headers",
                several.iter().filter_map(|v| v.to_str().ok()),
            )
            .ok(),
        };
        if let Some(value) = allow_headers {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, value);
        }
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        if self.credentials {
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        headers.insert(header::VARY, HeaderValue::from_static(PREFLIGHT_VARY));
        Answer::empty(204, headers)
    }
}

/// Adds `Origin` to the response's `Vary`, keeping what is there: a
/// response that already varies on it (or on everything) is left alone.
fn vary_on_origin(headers: &mut HeaderMap) {
    match headers.entry(header::VARY) {
        Entry::Vacant(slot) => {
            slot.insert(HeaderValue::from_static("Origin"));
        }
        Entry::Occupied(mut slot) => {
            let covered = slot.iter().any(|value| {
                value
                    .as_bytes()
                    .split(|b| *b == b',')
                    .map(<[u8]>::trim_ascii)
                    .any(|name| name == b"*" || name.eq_ignore_ascii_case(b"origin"))
            });
            if covered {
                return;
            }
            let first = slot.get_mut();
            let mut merged = Vec::with_capacity(first.len() + 8);
            merged.extend_from_slice(first.as_bytes());
            merged.extend_from_slice(b", Origin");
            if let Ok(value) = HeaderValue::from_bytes(&merged) {
                *first = value;
            }
        }
    }
}

impl Layer for Cors {
    fn name(&self) -> &'static str {
        "Cors"
    }

    fn stage(&self) -> Stage {
        Stage::Cors
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        let origin = head.headers.get(header::ORIGIN)?;
        if context.noted::<Seen>().is_some() {
            return None;
        }
        // An OPTIONS request without Access-Control-Request-Method is an
        // ordinary one: it goes on to routing like any other.
        if head.method == Method::OPTIONS {
            if let Some(method) = head.headers.get(header::ACCESS_CONTROL_REQUEST_METHOD) {
                let answer = self.preflight(head, origin, method);
                context.note(Seen {
                    by: self.id(),
                    verdict: Verdict::Preflight,
                });
                return Some(answer);
            }
        }
        let verdict = if self.allows_origin(origin) {
            Verdict::Allowed(self.allow_origin(origin))
        } else {
            Verdict::Refused
        };
        context.note(Seen {
            by: self.id(),
            verdict,
        });
        None
    }

    fn headers_added(&self) -> usize {
        // Allow-Origin, Vary, and Allow-Credentials or Expose-Headers.
        3
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let headers = &mut response.headers;
        match context.noted::<Seen>() {
            None if self.varies => vary_on_origin(headers),
            None => {}
            Some(seen) if seen.by != self.id() => {}
            Some(Seen {
                verdict: Verdict::Preflight,
                ..
            }) => {}
            Some(Seen {
                verdict: Verdict::Refused,
                ..
            }) => vary_on_origin(headers),
            Some(Seen {
                verdict: Verdict::Allowed(origin),
                ..
            }) => {
                headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
                if self.credentials {
                    headers.insert(
                        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                        HeaderValue::from_static("true"),
                    );
                }
                if let Some(exposed) = &self.expose_headers {
                    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, exposed.clone());
                }
                vary_on_origin(headers);
            }
        }
    }
}

#[cfg(test)]
mod tests;
