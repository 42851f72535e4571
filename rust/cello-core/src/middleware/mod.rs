//! Middleware: layers that see every request before routing and every
//! response on its way out, whichever door the request came through.
//!
//! A layer's hooks are plain synchronous functions over the request head and
//! the response head: they run on the I/O thread, without the GIL, and cost
//! nothing when no layer is installed (the doors skip the chain entirely).
//! Layers run in the order they were added on the way in and in reverse on
//! the way out, like the layers of an onion; a layer that answers a request
//! itself (a CORS preflight, a refusal) sends that answer back out through
//! the layers it has passed, so every response, the framework's own 404, 405
//! and 413 included, is seen by the same layers.

mod request_id;

pub use request_id::RequestId;

use std::sync::Arc;

use bytes::Bytes;

use crate::http::problem::{Problem, CONTENT_TYPE};
use crate::http::request::RequestHead;

/// Values layers attach to one request: what they need again on the way out,
/// and what handlers read as `request.context`.
#[derive(Debug, Default, Clone)]
pub struct Context {
    values: Vec<(&'static str, String)>,
    /// Bit `i` is set when the request passed layer `i` on its way in.
    passed: u64,
}

impl Context {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    pub fn insert(&mut self, key: &'static str, value: String) {
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.values.push((key, value)),
        }
    }

    pub fn values(&self) -> &[(&'static str, String)] {
        &self.values
    }
}

/// A response a layer gives instead of routing the request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    /// An RFC 7807 answer, as every framework-generated refusal is.
    pub fn problem(problem: &Problem) -> Self {
        let mut headers = http::HeaderMap::with_capacity(2);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(CONTENT_TYPE),
        );
        Answer {
            status: problem.status,
            headers,
            body: problem.to_json().into(),
        }
    }
}

/// One middleware. Both hooks default to doing nothing.
pub trait Layer: Send + Sync + 'static {
    /// The name `repr()` and error messages use.
    fn name(&self) -> &'static str;

    /// Before routing. Returning an answer skips routing and the endpoint.
    fn request(&self, _head: &mut RequestHead, _context: &mut Context) -> Option<Answer> {
        None
    }

    /// On every response the request gets, after the endpoint (or a layer)
    /// produced it and before the door sends it.
    fn response(&self, _context: &Context, _status: u16, _headers: &mut http::HeaderMap) {}
}

/// A layer limited to the paths under a prefix (a blueprint's `use`).
#[derive(Clone)]
struct Scoped {
    prefix: String,
    layer: Arc<dyn Layer>,
}

impl Scoped {
    fn covers(&self, path: &str) -> bool {
        self.prefix.is_empty()
            || path
                .strip_prefix(self.prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// The installed layers, in the order requests pass them.
#[derive(Default, Clone)]
pub struct Chain {
    layers: Vec<Scoped>,
}

impl Chain {
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Adds `layer` for every path (`prefix` empty) or for `prefix` and the
    /// paths below it.
    pub fn push(&mut self, prefix: &str, layer: Box<dyn Layer>) -> Result<(), TooManyLayers> {
        if self.layers.len() >= MAX_LAYERS {
            return Err(TooManyLayers);
        }
        self.layers.push(Scoped {
            prefix: prefix.trim_end_matches('/').to_owned(),
            layer: Arc::from(layer),
        });
        Ok(())
    }

    pub fn names(&self) -> Vec<(&'static str, &str)> {
        self.layers
            .iter()
            .map(|s| (s.layer.name(), s.prefix.as_str()))
            .collect()
    }

    /// Runs the request hooks in order; stops at the first layer that answers.
    pub fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        for (index, scoped) in self.layers.iter().enumerate() {
            if !scoped.covers(&head.path) {
                continue;
            }
            context.passed |= 1 << index;
            if let Some(answer) = scoped.layer.request(head, context) {
                return Some(answer);
            }
        }
        None
    }

    /// Runs the response hooks of the layers the request passed, innermost first.
    pub fn response(&self, context: &Context, status: u16, headers: &mut http::HeaderMap) {
        for (index, scoped) in self.layers.iter().enumerate().rev() {
            if context.passed & (1 << index) != 0 {
                scoped.layer.response(context, status, headers);
            }
        }
    }
}

/// The most layers one chain holds (one bit each in `Context`).
pub const MAX_LAYERS: usize = 64;

#[derive(Debug)]
pub struct TooManyLayers;

impl std::fmt::Display for TooManyLayers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an app takes at most {MAX_LAYERS} native middleware layers"
        )
    }
}

impl std::error::Error for TooManyLayers {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn head(path: &str, headers: &[(&str, &str)]) -> RequestHead {
        let mut map = http::HeaderMap::new();
        for (name, value) in headers {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        RequestHead {
            method: http::Method::GET,
            version: http::Version::HTTP_11,
            path: path.to_owned(),
            raw_path: None,
            query: String::new(),
            headers: map,
            params: Vec::new(),
            context: Vec::new(),
            client: None,
            server: None,
            scheme: "http",
        }
    }

    /// Records its hooks into a shared log and answers when told to.
    struct Probe {
        tag: &'static str,
        answers: bool,
        log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl Layer for Probe {
        fn name(&self) -> &'static str {
            self.tag
        }

        fn request(&self, _head: &mut RequestHead, _context: &mut Context) -> Option<Answer> {
            self.log.lock().unwrap().push(format!("in {}", self.tag));
            self.answers
                .then(|| Answer::problem(&Problem::new(418).with_detail(self.tag)))
        }

        fn response(&self, _context: &Context, status: u16, headers: &mut http::HeaderMap) {
            self.log
                .lock()
                .unwrap()
                .push(format!("out {} {status}", self.tag));
            headers.append("x-seen", http::HeaderValue::from_static(self.tag));
        }
    }

    fn chain(
        layers: &[(&'static str, &str, bool)],
    ) -> (Chain, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut chain = Chain::default();
        for (tag, prefix, answers) in layers {
            chain
                .push(
                    prefix,
                    Box::new(Probe {
                        tag,
                        answers: *answers,
                        log: log.clone(),
                    }),
                )
                .unwrap();
        }
        (chain, log)
    }

    #[test]
    fn layers_run_in_order_on_the_way_in_and_in_reverse_on_the_way_out() {
        let (chain, log) = chain(&[("a", "", false), ("b", "", false)]);
        let mut head = head("/x", &[]);
        let mut context = Context::default();
        assert!(chain.request(&mut head, &mut context).is_none());
        let mut headers = http::HeaderMap::new();
        chain.response(&context, 200, &mut headers);
        assert_eq!(
            *log.lock().unwrap(),
            ["in a", "in b", "out b 200", "out a 200"]
        );
        let seen: Vec<_> = headers.get_all("x-seen").iter().collect();
        assert_eq!(seen, ["b", "a"]);
    }

    #[test]
    fn an_answer_goes_back_out_through_the_layers_it_passed_only() {
        let (chain, log) = chain(&[("a", "", false), ("b", "", true), ("c", "", false)]);
        let mut head = head("/x", &[]);
        let mut context = Context::default();
        let answer = chain.request(&mut head, &mut context).expect("b answers");
        assert_eq!(answer.status, 418);
        let mut headers = answer.headers;
        chain.response(&context, answer.status, &mut headers);
        assert_eq!(
            *log.lock().unwrap(),
            ["in a", "in b", "out b 418", "out a 418"]
        );
    }

    #[test]
    fn a_scoped_layer_sees_its_prefix_and_the_paths_below_only() {
        let (chain, log) = chain(&[("api", "/api/", false)]);
        for path in ["/api", "/api/users", "/apix", "/", "/other/api"] {
            let mut head = head(path, &[]);
            let mut context = Context::default();
            chain.request(&mut head, &mut context);
            chain.response(&context, 200, &mut http::HeaderMap::new());
        }
        assert_eq!(
            *log.lock().unwrap(),
            ["in api", "out api 200", "in api", "out api 200"]
        );
    }

    #[test]
    fn a_chain_refuses_more_layers_than_a_context_can_track() {
        let (mut chain, log) = chain(&[]);
        for _ in 0..MAX_LAYERS {
            let probe = Probe {
                tag: "p",
                answers: false,
                log: log.clone(),
            };
            chain.push("", Box::new(probe)).unwrap();
        }
        let probe = Probe {
            tag: "p",
            answers: false,
            log,
        };
        assert!(chain.push("", Box::new(probe)).is_err());
    }

    #[test]
    fn context_values_are_replaced_not_repeated() {
        let mut context = Context::default();
        context.insert("k", "1".into());
        context.insert("k", "2".into());
        assert_eq!(context.get("k"), Some("2"));
        assert_eq!(context.values().len(), 1);
    }
}
