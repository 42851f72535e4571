//! Middleware: layers that see every request before routing and every
//! response on its way out, whichever door the request came through.
//!
//! A layer's hooks are plain synchronous functions over the request head and
//! the outgoing response: they run on the I/O thread, without the GIL, and
//! cost nothing when no layer is installed (the doors skip the chain
//! entirely). Requests pass the layers in the order of their [`Stage`] (and,
//! within a stage, the order they were added) and responses pass them in
//! reverse, like the layers of an onion. A layer that answers a request
//! itself (a CORS preflight, a static file) sends that answer back out
//! through the layers it has passed, so every response, the framework's own
//! 404, 405 and 413 included, is seen by the same layers.
//!
//! On the way out a layer may change the status and headers, replace a body
//! held in memory, or add an [`Encoder`] that every chunk of a streamed body
//! passes through (compression).

pub mod auth;
pub mod cache;
mod circuit_breaker;
pub mod compression;
mod cors;
mod etag;
mod logging;
pub mod metrics;
pub mod rate_limit;
mod request_id;
mod security_headers;
pub mod static_files;

pub use crate::http::request::ContextValue;
pub use cache::{Cache, CacheOptions, TagGenerations};
pub use circuit_breaker::{
    CircuitBreaker, CircuitBreakerOptions, CircuitState, InvalidCircuitBreaker,
    DEFAULT_FAILURE_CODES as DEFAULT_CIRCUIT_FAILURE_CODES,
};
pub use compression::Compression;
pub use cors::{Cors, CorsError, CorsOptions, DEFAULT_METHODS};
pub use etag::ETag;
pub use logging::{Logging, DEFAULT_SKIP as DEFAULT_LOG_SKIP};
pub use metrics::{Metrics, MetricsOptions};
pub use rate_limit::RateLimit;
pub use request_id::RequestId;
pub use security_headers::{InvalidSecurityHeader, SecurityHeaders};
pub use static_files::{StaticFiles, StaticFilesOptions};

use std::any::Any;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use crate::http::file::FileSlice;
use crate::http::problem::{Problem, CONTENT_TYPE};
use crate::http::request::RequestHead;

/// Where a layer sits in the chain, outermost first. The built-in layers
/// take a fixed place, so the order an app enables them in changes nothing:
/// a request ID is on every response, the access log sees the status the
/// client got, CORS and security headers reach static files and refusals,
/// and validators are computed over the bytes the client receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Request metrics: outermost, so they time everything and count the
    /// status the client got, the other layers' answers included.
    Metrics,
    RequestId,
    Logging,
    Cors,
    SecurityHeaders,
    /// Rate limits: before authentication, so guessing credentials is
    /// limited too, and outside everything that costs work.
    RateLimit,
    /// JWT and API-key authentication: inside CORS, so preflights need no
    /// credentials.
    Authentication,
    /// The circuit breaker: it sees the statuses the endpoint gives
    /// authenticated requests.
    CircuitBreaker,
    /// Conditional requests (`ETag`, `If-None-Match`): outside compression,
    /// so each encoding of a body has its own validator.
    ConditionalRequests,
    Compression,
    /// The response cache: inside authentication (a hit is served only to
    /// a request that got this far) and inside compression and ETags, so it
    /// stores the handler's own bytes and each client gets them encoded and
    /// tagged as it asks.
    Cache,
    /// Layers that answer requests themselves (static files).
    Endpoint,
}

/// Values layers attach to one request: public ones that handlers read as
/// `request.context`, and each layer's private notes for the way out.
#[derive(Default)]
pub struct Context {
    values: Vec<(&'static str, ContextValue)>,
    notes: Vec<Box<dyn Any + Send>>,
    /// Bit `i` is set when the request passed layer `i` on its way in.
    passed: u64,
    /// The matched route's template number (`routing::template_id`), 0
    /// until routing found one.
    route: u32,
    /// The metrics layer's note, kept here rather than among the boxed
    /// notes so that counting a request allocates nothing.
    metrics: Option<metrics::Pending>,
}

impl Context {
    /// Records the route the request was routed to, by its template's
    /// number (doors call it once routing found a handler or a mount).
    pub fn set_route(&mut self, template: u32) {
        self.route = template;
    }

    /// The matched route's template number; 0 when none matched (yet).
    pub fn route(&self) -> u32 {
        self.route
    }

    /// The value under `key`: a string's text, or a JSON document's source.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }

    /// A string handlers read as a Python `str`.
    pub fn insert(&mut self, key: &'static str, value: String) {
        self.set(key, ContextValue::Text(value));
    }

    /// A JSON document (JWT claims...) handlers read as the Python value it
    /// encodes, decoded only if they look at it.
    pub fn insert_json(&mut self, key: &'static str, json: String) {
        self.set(key, ContextValue::Json(json));
    }

    fn set(&mut self, key: &'static str, value: ContextValue) {
        match self.values.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.values.push((key, value)),
        }
    }

    pub fn values(&self) -> &[(&'static str, ContextValue)] {
        &self.values
    }

    /// Hands the public values over (to the request handlers see), once
    /// the request hooks have all run.
    pub fn take_values(&mut self) -> Vec<(&'static str, ContextValue)> {
        std::mem::take(&mut self.values)
    }

    /// Keeps a value for the way out, one per type: a layer's own type
    /// makes its notes private to it.
    pub fn note<T: Any + Send>(&mut self, value: T) {
        match self.notes.iter_mut().find(|n| n.is::<T>()) {
            Some(slot) => *slot = Box::new(value),
            None => self.notes.push(Box::new(value)),
        }
    }

    pub fn noted<T: Any + Send>(&self) -> Option<&T> {
        self.notes.iter().find_map(|n| n.downcast_ref::<T>())
    }

    pub fn take_note<T: Any + Send>(&mut self) -> Option<T> {
        let at = self.notes.iter().position(|n| n.is::<T>())?;
        self.notes.swap_remove(at).downcast::<T>().ok().map(|b| *b)
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("values", &self.values)
            .field("notes", &self.notes.len())
            .finish()
    }
}

/// The body of a layer's own answer.
#[derive(Debug, Clone)]
pub enum Content {
    Bytes(Bytes),
    /// Part or all of a file, read as it is sent.
    File(FileSlice),
}

/// A response a layer gives instead of routing the request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Content,
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
            body: Content::Bytes(problem.to_json().into()),
        }
    }

    /// An answer with no body (a preflight's 204, a 304).
    pub fn empty(status: u16, headers: http::HeaderMap) -> Self {
        Answer {
            status,
            headers,
            body: Content::Bytes(Bytes::new()),
        }
    }
}

/// A response's body as layers see it on the way out.
#[derive(Debug)]
pub enum OutBody {
    /// The whole body, in memory: a layer may replace it.
    Full(Bytes),
    /// A body that arrives in chunks (a stream, a file, a mounted app's
    /// body): a layer may add an encoder its chunks pass through.
    Streamed,
    /// No body goes out: a HEAD request, or a 1xx, 204 or 304 status. The
    /// headers still describe the body a GET would get.
    Withheld,
}

/// The response on its way out through the layers.
pub struct Outgoing {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: OutBody,
    encoders: Vec<Box<dyn Encoder>>,
    /// The length of the whole body the door handed over, to tell whether
    /// a layer replaced it.
    handed_over: Option<usize>,
}

impl Outgoing {
    /// A response as a door hands it to the layers. `head_only` is true for
    /// a HEAD request, whose body is not sent.
    pub fn new(
        status: u16,
        headers: http::HeaderMap,
        body: Option<Bytes>,
        head_only: bool,
    ) -> Self {
        let handed_over = body.as_ref().map(Bytes::len);
        let body = match body {
            _ if head_only || bodyless(status) => OutBody::Withheld,
            Some(bytes) => OutBody::Full(bytes),
            None => OutBody::Streamed,
        };
        Outgoing {
            status,
            headers,
            body,
            encoders: Vec::new(),
            handed_over,
        }
    }

    /// Passes every chunk of a streamed body through `encoder`, after the
    /// encoders of the layers inside this one.
    pub fn encode_with(&mut self, encoder: Box<dyn Encoder>) {
        self.encoders.push(encoder);
    }

    /// The encoders a streamed body's chunks must pass, if any.
    pub fn take_encoders(&mut self) -> Option<Encoders> {
        (!self.encoders.is_empty()).then(|| Encoders(std::mem::take(&mut self.encoders)))
    }

    /// Keeps the framing headers true to what the layers left: no body for
    /// a bodyless status, the length of a replaced body, and no length for a
    /// body whose encoding changes it as it streams.
    fn settle(&mut self) {
        if bodyless(self.status) {
            if !matches!(self.body, OutBody::Withheld) {
                self.body = OutBody::Withheld;
            }
            self.headers.remove(http::header::CONTENT_LENGTH);
            self.encoders.clear();
            return;
        }
        match &self.body {
            // A body of the length handed over needs no header lookup: the
            // door's own Content-Length (if any) is already right.
            OutBody::Full(bytes)
                if Some(bytes.len()) != self.handed_over
                    && self.headers.contains_key(http::header::CONTENT_LENGTH) =>
            {
                self.headers
                    .insert(http::header::CONTENT_LENGTH, bytes.len().into());
            }
            OutBody::Streamed if self.encoders.iter().any(|e| !e.keeps_length()) => {
                self.headers.remove(http::header::CONTENT_LENGTH);
            }
            _ => {}
        }
    }
}

/// A status whose response has no body.
pub fn bodyless(status: u16) -> bool {
    status < 200 || status == 204 || status == 304
}

/// Transforms a streamed body chunk by chunk. Each call returns what is
/// ready to send now, which may be nothing; an encoder that buffers must
/// not hold back data a client is waiting for (a compressor flushes every
/// chunk, so server-sent events arrive as they are sent).
pub trait Encoder: Send {
    fn chunk(&mut self, data: Bytes) -> Bytes;

    /// The end of the body: the last bytes to send.
    fn finish(&mut self) -> Bytes;

    /// Whether the encoder passes every byte through unchanged (one that
    /// only observes, as the access log's byte counter does), so a body's
    /// known length still holds and its `Content-Length` can stay.
    fn keeps_length(&self) -> bool {
        false
    }
}

/// The encoders layers added to one response, innermost first.
pub struct Encoders(Vec<Box<dyn Encoder>>);

impl Encoders {
    /// Whether the body's length survives every encoder.
    pub fn keep_length(&self) -> bool {
        self.0.iter().all(|encoder| encoder.keeps_length())
    }

    pub fn chunk(&mut self, data: Bytes) -> Bytes {
        self.0.iter_mut().fold(data, |data, encoder| {
            if data.is_empty() {
                data
            } else {
                encoder.chunk(data)
            }
        })
    }

    /// Ends the body: each encoder's last bytes pass the encoders outside it.
    pub fn finish(&mut self) -> Bytes {
        let mut carry = Bytes::new();
        for encoder in &mut self.0 {
            let mut out = BytesMut::new();
            if !carry.is_empty() {
                out.extend_from_slice(&encoder.chunk(carry));
            }
            out.extend_from_slice(&encoder.finish());
            carry = out.freeze();
        }
        carry
    }
}

impl std::fmt::Debug for Encoders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encoders({})", self.0.len())
    }
}

/// One middleware. Both hooks default to doing nothing.
pub trait Layer: Send + Sync + 'static {
    /// The name `repr()` and error messages use.
    fn name(&self) -> &'static str;

    /// Where the layer sits in the chain.
    fn stage(&self) -> Stage;

    /// How many response headers the layer may add: the chain makes room
    /// for all of them at once instead of growing the map once per layer.
    fn headers_added(&self) -> usize {
        0
    }

    /// Before routing. Returning an answer skips routing and the endpoint.
    fn request(&self, _head: &mut RequestHead, _context: &mut Context) -> Option<Answer> {
        None
    }

    /// On every response the request gets, after the endpoint (or a layer)
    /// produced it and before the door sends it.
    fn response(&self, _context: &mut Context, _response: &mut Outgoing) {}
}

/// A path matches an exemption exactly, or lies below it (`/health`
/// exempts `/health/live`; `/static/` everything under it).
pub fn exempt(exemptions: &[String], path: &str) -> bool {
    exemptions.iter().any(|exempt| {
        let base = exempt.trim_end_matches('/');
        path == exempt
            || path == base
            || path
                .strip_prefix(base)
                .is_some_and(|rest| rest.starts_with('/'))
    })
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
    /// The most response headers the layers add together.
    headers_added: usize,
}

impl Chain {
    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// Adds `layer` for every path (`prefix` empty) or for `prefix` and the
    /// paths below it, after the layers of its stage already there.
    pub fn push(&mut self, prefix: &str, layer: Box<dyn Layer>) -> Result<(), TooManyLayers> {
        if self.layers.len() >= MAX_LAYERS {
            return Err(TooManyLayers);
        }
        let stage = layer.stage();
        self.headers_added += layer.headers_added();
        let at = self
            .layers
            .iter()
            .position(|s| s.layer.stage() > stage)
            .unwrap_or(self.layers.len());
        self.layers.insert(
            at,
            Scoped {
                prefix: prefix.trim_end_matches('/').to_owned(),
                layer: Arc::from(layer),
            },
        );
        Ok(())
    }

    /// The most response headers the layers add together.
    pub fn headers_added(&self) -> usize {
        self.headers_added
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

    /// Runs the response hooks of the layers the request passed, innermost
    /// first, then makes the framing headers match the body they left.
    pub fn response(&self, context: &mut Context, response: &mut Outgoing) {
        response.headers.reserve(self.headers_added);
        for (index, scoped) in self.layers.iter().enumerate().rev() {
            if context.passed & (1 << index) != 0 {
                scoped.layer.response(context, response);
            }
        }
        response.settle();
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
            tls: None,
        }
    }

    #[test]
    fn context_keeps_one_value_per_key_text_or_json() {
        let mut context = Context::default();
        context.insert("user", "alice".into());
        context.insert_json("user", r#"{"sub":"alice"}"#.into());
        context.insert("request_id", "abc".into());
        assert_eq!(context.get("user"), Some(r#"{"sub":"alice"}"#));
        assert_eq!(
            context.take_values(),
            vec![
                ("user", ContextValue::Json(r#"{"sub":"alice"}"#.into())),
                ("request_id", ContextValue::Text("abc".into())),
            ]
        );
        assert!(context.values().is_empty());
    }

    /// Records its hooks into a shared log and answers when told to.
    struct Probe {
        tag: &'static str,
        stage: Stage,
        answers: bool,
        log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    }

    impl Layer for Probe {
        fn name(&self) -> &'static str {
            self.tag
        }

        fn stage(&self) -> Stage {
            self.stage
        }

        fn request(&self, _head: &mut RequestHead, _context: &mut Context) -> Option<Answer> {
            self.log.lock().unwrap().push(format!("in {}", self.tag));
            self.answers
                .then(|| Answer::problem(&Problem::new(418).with_detail(self.tag)))
        }

        fn response(&self, _context: &mut Context, response: &mut Outgoing) {
            self.log
                .lock()
                .unwrap()
                .push(format!("out {} {}", self.tag, response.status));
            response
                .headers
                .append("x-seen", http::HeaderValue::from_static(self.tag));
        }
    }

    fn outgoing(status: u16, body: Option<&'static str>) -> Outgoing {
        Outgoing::new(status, http::HeaderMap::new(), body.map(Bytes::from), false)
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
                        stage: Stage::Cors,
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
        let mut out = outgoing(200, Some("x"));
        chain.response(&mut context, &mut out);
        assert_eq!(
            *log.lock().unwrap(),
            ["in a", "in b", "out b 200", "out a 200"]
        );
        let seen: Vec<_> = out.headers.get_all("x-seen").iter().collect();
        assert_eq!(seen, ["b", "a"]);
    }

    #[test]
    fn an_answer_goes_back_out_through_the_layers_it_passed_only() {
        let (chain, log) = chain(&[("a", "", false), ("b", "", true), ("c", "", false)]);
        let mut head = head("/x", &[]);
        let mut context = Context::default();
        let answer = chain.request(&mut head, &mut context).expect("b answers");
        assert_eq!(answer.status, 418);
        let mut out = Outgoing::new(answer.status, answer.headers, None, false);
        chain.response(&mut context, &mut out);
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
            chain.response(&mut context, &mut outgoing(200, None));
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
                stage: Stage::Cors,
                answers: false,
                log: log.clone(),
            };
            chain.push("", Box::new(probe)).unwrap();
        }
        let probe = Probe {
            tag: "p",
            stage: Stage::Cors,
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

    #[test]
    fn layers_take_their_stage_s_place_whatever_the_order_they_come_in() {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut chain = Chain::default();
        for (tag, stage) in [
            ("files", Stage::Endpoint),
            ("cors-1", Stage::Cors),
            ("id", Stage::RequestId),
            ("cors-2", Stage::Cors),
        ] {
            let probe = Probe {
                tag,
                stage,
                answers: false,
                log: log.clone(),
            };
            chain.push("", Box::new(probe)).unwrap();
        }
        let names: Vec<_> = chain.names().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["id", "cors-1", "cors-2", "files"]);
    }

    #[test]
    fn notes_are_kept_one_per_type() {
        #[derive(Debug, PartialEq)]
        struct Origin(&'static str);
        let mut context = Context::default();
        assert!(context.noted::<Origin>().is_none());
        context.note(Origin("a"));
        context.note(Origin("b"));
        context.note(7_u32);
        assert_eq!(context.noted::<Origin>(), Some(&Origin("b")));
        assert_eq!(context.take_note::<u32>(), Some(7));
        assert_eq!(context.take_note::<u32>(), None);
    }

    /// Upper-cases its chunks and ends the body with its name.
    struct Shout(&'static str);

    impl Encoder for Shout {
        fn chunk(&mut self, data: Bytes) -> Bytes {
            data.to_ascii_uppercase().into()
        }

        fn finish(&mut self) -> Bytes {
            Bytes::from(self.0)
        }
    }

    /// Passes chunks through untouched.
    struct Watch;

    impl Encoder for Watch {
        fn chunk(&mut self, data: Bytes) -> Bytes {
            data
        }

        fn finish(&mut self) -> Bytes {
            Bytes::new()
        }

        fn keeps_length(&self) -> bool {
            true
        }
    }

    #[test]
    fn encoders_apply_innermost_first_and_each_one_s_tail_passes_the_outer_ones() {
        let mut out = outgoing(200, None);
        out.encode_with(Box::new(Shout("inner")));
        out.encode_with(Box::new(Shout("-outer")));
        let mut encoders = out.take_encoders().unwrap();
        assert_eq!(encoders.chunk(Bytes::from("ab")), "AB");
        assert!(encoders.chunk(Bytes::new()).is_empty());
        assert_eq!(encoders.finish(), "INNER-outer");
    }

    #[test]
    fn settling_keeps_framing_headers_true_to_the_body() {
        let length = |n: usize| {
            let mut headers = http::HeaderMap::new();
            headers.insert(http::header::CONTENT_LENGTH, n.into());
            headers
        };
        let mut replaced = Outgoing::new(200, length(3), Some(Bytes::from("abc")), false);
        replaced.body = OutBody::Full(Bytes::from("a"));
        replaced.settle();
        assert_eq!(replaced.headers[http::header::CONTENT_LENGTH], "1");

        let mut encoded = Outgoing::new(200, length(3), None, false);
        encoded.encode_with(Box::new(Shout("")));
        encoded.settle();
        assert!(!encoded.headers.contains_key(http::header::CONTENT_LENGTH));

        let mut observed = Outgoing::new(200, length(3), None, false);
        observed.encode_with(Box::new(Watch));
        observed.settle();
        assert_eq!(observed.headers[http::header::CONTENT_LENGTH], "3");
        observed.encode_with(Box::new(Shout("")));
        observed.settle();
        assert!(!observed.headers.contains_key(http::header::CONTENT_LENGTH));

        let mut not_modified = Outgoing::new(200, length(3), Some(Bytes::from("abc")), false);
        not_modified.status = 304;
        not_modified.settle();
        assert!(matches!(not_modified.body, OutBody::Withheld));
        assert!(!not_modified
            .headers
            .contains_key(http::header::CONTENT_LENGTH));

        let head = Outgoing::new(200, length(3), Some(Bytes::new()), true);
        assert!(matches!(head.body, OutBody::Withheld));
    }
}
