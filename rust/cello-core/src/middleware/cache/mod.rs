//! The response cache: whole 200, 203 and 204 responses to GET, kept in
//! this process's memory for a time-to-live and served again without
//! running the handler.
//!
//! It sits just outside the endpoint, inside compression and ETags, so it
//! stores the handler's own bytes and every client gets them encoded and
//! tagged as it asks. A response says how it may be cached: a handler's
//! `Cache-Control` bounds the time-to-live (or forbids storing), `Vary`
//! adds request headers to the key, `X-Cache-TTL` and `X-Cache-Tags` (set
//! by `@cache`) choose the route's time-to-live and tags. Invalidating a tag
//! bumps a counter in memory every forked worker shares, so it reaches
//! every worker's cache at once.

mod store;
#[cfg(test)]
mod tests;

pub use store::{base_key, full_key, Entry, Limits, Store, TagGenerations, TAG_SLOTS};

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::etag::{matches_if_none_match, strip_representation_metadata};
use super::{Answer, Content, Context, ContextValue, ETag, Layer, OutBody, Outgoing, Stage};
use crate::http::request::RequestHead;

/// The header that says what the cache did: `HIT`, `MISS` or `BYPASS`.
pub const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
/// A route's own time-to-live, in seconds (set by `@cache(ttl=...)`).
pub const X_CACHE_TTL: HeaderName = HeaderName::from_static("x-cache-ttl");
/// A route's tags, comma-separated (set by `@cache(tags=[...])`).
pub const X_CACHE_TAGS: HeaderName = HeaderName::from_static("x-cache-tags");

/// Paths no cache covers unless told otherwise: probes must see live state.
pub const DEFAULT_EXCLUDED: &[&str] = &["/health", "/metrics"];

/// Where the time comes from: the system's monotonic clock, or a test's.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

pub struct CacheOptions {
    /// How long a response is kept when neither the route nor its
    /// `Cache-Control` says otherwise.
    pub ttl: Duration,
    /// The methods whose requests are served from the cache (HEAD is served
    /// from GET's entries; only GET's responses are stored).
    pub methods: Vec<http::Method>,
    /// Paths never cached: each matches itself and the paths below it.
    pub exclude_paths: Vec<String>,
    pub limits: Limits,
    /// Key entries by the authenticated user (`request.context["user"]`),
    /// so requests with credentials may be cached, each user apart.
    pub key_by_user: bool,
    /// Cache only responses that carry `X-Cache-TTL` (routes decorated with
    /// `@cache` in an app that did not enable caching for every route).
    pub marked_only: bool,
}

impl Default for CacheOptions {
    fn default() -> Self {
        CacheOptions {
            ttl: Duration::from_secs(300),
            methods: vec![http::Method::GET, http::Method::HEAD],
            exclude_paths: DEFAULT_EXCLUDED.iter().map(|p| p.to_string()).collect(),
            limits: Limits {
                max_bytes: 64 * 1024 * 1024,
                max_entries: 10_000,
                max_entry_bytes: 1024 * 1024,
            },
            key_by_user: false,
            marked_only: false,
        }
    }
}

pub struct Cache {
    options: CacheOptions,
    store: Store,
    tags: Arc<TagGenerations>,
    clock: Clock,
}

/// What the request hook decided, for the response hook.
enum Plan {
    /// The cache answered: nothing more to do on the way out.
    Answered,
    /// Neither served from nor stored in the cache.
    Bypass,
    /// Not in the cache (or the client asked for a fresh copy): the
    /// response may be stored under `base` with the request's headers.
    Miss {
        base: Vec<u8>,
        request: Box<HeaderMap>,
        head: bool,
    },
}

impl Cache {
    pub fn new(options: CacheOptions) -> std::io::Result<Self> {
        Ok(Self::with_parts(
            options,
            TagGenerations::shared()?,
            Arc::new(Instant::now),
        ))
    }

    /// A cache with its own tag generations and clock (tests).
    pub fn with_parts(options: CacheOptions, tags: Arc<TagGenerations>, clock: Clock) -> Self {
        Cache {
            store: Store::new(options.limits),
            options,
            tags,
            clock,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn excluded(&self, path: &str) -> bool {
        self.options.exclude_paths.iter().any(|prefix| {
            let prefix = prefix.trim_end_matches('/');
            prefix.is_empty()
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }

    /// Who the request is for: Ok(None) for anyone, Err(()) when it must
    /// not be cached at all (credentials the cache cannot tell apart).
    fn user(&self, head: &RequestHead, context: &Context) -> Result<Option<String>, ()> {
        let credentials = head.headers.contains_key(header::AUTHORIZATION)
            || head.headers.contains_key(header::COOKIE);
        if !self.options.key_by_user {
            return if credentials { Err(()) } else { Ok(None) };
        }
        let value = context
            .values()
            .iter()
            .find(|(key, _)| *key == "user")
            .map(|(_, value)| value);
        match value {
            Some(ContextValue::Text(text)) if !text.is_empty() => Ok(Some(format!("t:{text}"))),
            Some(ContextValue::Json(json)) => user_from_claims(json).map(Some).ok_or(()),
            _ if credentials => Err(()),
            _ => Ok(None),
        }
    }

    /// The answer for a fresh entry: its status, headers and body, with how
    /// old it is, or a 304 when the client's copy is current.
    fn hit(&self, entry: &Entry, head: &RequestHead, now: Instant) -> Answer {
        let mut headers = entry.headers.clone();
        headers.insert(X_CACHE, HeaderValue::from_static("HIT"));
        // Whole seconds, as the headers state them: Age + max-age is the
        // time-to-live the miss announced.
        let age = now.saturating_duration_since(entry.stored_at).as_secs();
        headers.insert(header::AGE, age.into());
        if !entry.own_cache_control {
            let remaining = entry.ttl.as_secs().saturating_sub(age).max(1);
            headers.insert(header::CACHE_CONTROL, max_age(remaining));
        }
        if entry.status == 200 && client_is_current(&head.headers, &headers) {
            strip_representation_metadata(&mut headers);
            return Answer::empty(304, headers);
        }
        Answer {
            status: entry.status,
            headers,
            body: Content::Bytes(entry.body.clone()),
        }
    }

    /// Stores the response if it may be, and says so in its headers.
    fn store_response(&self, base: Vec<u8>, request: &HeaderMap, response: &mut Outgoing) {
        let Some((ttl, body)) = self.storable(response) else {
            response
                .headers
                .insert(X_CACHE, HeaderValue::from_static("BYPASS"));
            return;
        };
        let own_cache_control = response.headers.contains_key(header::CACHE_CONTROL);
        let mut stored_headers = response.headers.clone();
        stored_headers.remove(header::CONTENT_LENGTH);
        // A validator of its own, so clients can revalidate a cached page
        // whether or not the app enabled ETags.
        let computed_tag = (response.status == 200 && !response.headers.contains_key(header::ETAG))
            .then(|| HeaderValue::from_str(&ETag::new(false).tag_for(&body)).ok())
            .flatten();
        if let Some(tag) = &computed_tag {
            stored_headers.insert(header::ETAG, tag.clone());
        }
        let now = (self.clock)();
        let entry = Entry {
            status: response.status,
            headers: stored_headers,
            body,
            stored_at: now,
            ttl,
            own_cache_control,
            tags: self.tags.stamp(&tags_of(&response.headers)),
        };
        let vary = vary_names(&response.headers).unwrap_or_default();
        if !self
            .store
            .insert(base, vary, request, entry, now, &self.tags)
        {
            response
                .headers
                .insert(X_CACHE, HeaderValue::from_static("BYPASS"));
            return;
        }
        response
            .headers
            .insert(X_CACHE, HeaderValue::from_static("MISS"));
        if let Some(tag) = computed_tag {
            response.headers.insert(header::ETAG, tag);
        }
        if !own_cache_control {
            response
                .headers
                .insert(header::CACHE_CONTROL, max_age(ttl.as_secs()));
        }
        if response.status == 200 && client_is_current(request, &response.headers) {
            response.status = 304;
            strip_representation_metadata(&mut response.headers);
        }
    }

    /// How long the response may be kept, and the body to keep; None when
    /// it may not be stored.
    fn storable(&self, response: &Outgoing) -> Option<(Duration, bytes::Bytes)> {
        let body = match &response.body {
            OutBody::Full(body) if matches!(response.status, 200 | 203) => body.clone(),
            OutBody::Withheld if response.status == 204 => bytes::Bytes::new(),
            _ => return None,
        };
        if response.headers.contains_key(header::SET_COOKIE) {
            return None;
        }
        // `Vary: *` varies on things no key can hold.
        vary_names(&response.headers)?;
        let directives = CacheDirectives::of(&response.headers);
        if directives.no_store || directives.no_cache || directives.private {
            return None;
        }
        let mut ttl = route_ttl(&response.headers).unwrap_or(self.options.ttl);
        if let Some(bound) = directives.s_maxage.or(directives.max_age) {
            ttl = ttl.min(Duration::from_secs(bound));
        }
        (!ttl.is_zero()).then_some((ttl, body))
    }
}

impl Layer for Cache {
    fn name(&self) -> &'static str {
        "Cache"
    }

    fn stage(&self) -> Stage {
        Stage::Cache
    }

    fn headers_added(&self) -> usize {
        4
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if !self.options.methods.contains(&head.method) || self.excluded(&head.path) {
            return None;
        }
        let is_head = head.method == http::Method::HEAD;
        if head.method != http::Method::GET && !is_head {
            // Only GET's responses are stored (and HEAD reads them).
            context.note(Plan::Bypass);
            return None;
        }
        let directives = CacheDirectives::of(&head.headers);
        let user = match self.user(head, context) {
            Ok(user) if !directives.no_store => user,
            _ => {
                context.note(Plan::Bypass);
                return None;
            }
        };
        let mut origin = head.scheme.as_bytes().to_vec();
        origin.extend_from_slice(b"://");
        if let Some(host) = head.headers.get(header::HOST) {
            origin.extend_from_slice(host.as_bytes());
        }
        let base = base_key("GET", &origin, &head.path, &head.query, user.as_deref());
        let refresh = directives.no_cache
            || directives.max_age == Some(0)
            || (!head.headers.contains_key(header::CACHE_CONTROL)
                && head
                    .headers
                    .get(header::PRAGMA)
                    .is_some_and(|p| p.as_bytes().eq_ignore_ascii_case(b"no-cache")));
        if !refresh {
            let now = (self.clock)();
            if let Some(entry) = self.store.get(&base, &head.headers, now, &self.tags) {
                context.note(Plan::Answered);
                return Some(self.hit(&entry, head, now));
            }
        }
        context.note(Plan::Miss {
            base,
            request: Box::new(head.headers.clone()),
            head: is_head,
        });
        None
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let Some(plan) = context.take_note::<Plan>() else {
            return;
        };
        if self.options.marked_only && !response.headers.contains_key(X_CACHE_TTL) {
            return;
        }
        match plan {
            Plan::Answered => {}
            // A HEAD response has no body to keep: the next GET stores one.
            Plan::Bypass | Plan::Miss { head: true, .. } => {
                response
                    .headers
                    .insert(X_CACHE, HeaderValue::from_static("BYPASS"));
            }
            Plan::Miss { base, request, .. } => self.store_response(base, &request, response),
        }
    }
}

/// `max-age=<seconds>`.
fn max_age(seconds: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("max-age={seconds}")).expect("digits are a valid header value")
}

/// Whether the request's `If-None-Match` matches the response's `ETag`.
fn client_is_current(request: &HeaderMap, response: &HeaderMap) -> bool {
    request.contains_key(header::IF_NONE_MATCH) && matches_if_none_match(request, response)
}

/// A user's identity in the key: the `sub` (or `id`) of JWT claims, or the
/// text of a plain value. None when the claims name nobody.
fn user_from_claims(json: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(json).ok()?;
    let id = match &value {
        serde_json::Value::Object(claims) => claims.get("sub").or_else(|| claims.get("id"))?,
        other => other,
    };
    match id {
        serde_json::Value::String(text) if !text.is_empty() => Some(format!("s:{text}")),
        serde_json::Value::Number(number) => Some(format!("n:{number}")),
        _ => None,
    }
}

/// The request headers a response varies on, lower-cased in the order
/// given; None for `Vary: *` (it varies on things no key can hold).
fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for line in headers.get_all(header::VARY) {
        let Ok(line) = line.to_str() else {
            return None;
        };
        for name in line.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if name == "*" {
                return None;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).ok()?;
            if !names.contains(&name) {
                names.push(name);
            }
        }
    }
    Some(names)
}

/// A route's own time-to-live: `X-Cache-TTL`, a positive whole number of seconds.
fn route_ttl(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(X_CACHE_TTL)?.to_str().ok()?.trim();
    let seconds: u64 = value.parse().ok()?;
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

/// A route's tags: `X-Cache-Tags`, comma-separated.
fn tags_of(headers: &HeaderMap) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for line in headers.get_all(X_CACHE_TAGS) {
        let Ok(line) = line.to_str() else { continue };
        for tag in line.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
    }
    tags
}

/// The `Cache-Control` directives the cache obeys (RFC 9111 §5.2).
#[derive(Debug, Default, PartialEq, Eq)]
struct CacheDirectives {
    no_store: bool,
    no_cache: bool,
    private: bool,
    max_age: Option<u64>,
    s_maxage: Option<u64>,
}

impl CacheDirectives {
    fn of(headers: &HeaderMap) -> Self {
        let mut found = CacheDirectives::default();
        for line in headers.get_all(header::CACHE_CONTROL) {
            // A line that is not text cannot be understood: treat it as the
            // strictest directive rather than ignore it.
            let Ok(line) = line.to_str() else {
                found.no_store = true;
                continue;
            };
            for directive in line.split(',') {
                let (name, argument) = match directive.split_once('=') {
                    Some((name, argument)) => {
                        (name.trim(), Some(argument.trim().trim_matches('"')))
                    }
                    None => (directive.trim(), None),
                };
                let seconds = || argument.map(delta_seconds);
                if name.eq_ignore_ascii_case("no-store") {
                    found.no_store = true;
                } else if name.eq_ignore_ascii_case("no-cache") {
                    found.no_cache = true;
                } else if name.eq_ignore_ascii_case("private") {
                    found.private = true;
                } else if name.eq_ignore_ascii_case("max-age") {
                    found.max_age = Some(
                        seconds()
                            .unwrap_or(0)
                            .min(found.max_age.unwrap_or(u64::MAX)),
                    );
                } else if name.eq_ignore_ascii_case("s-maxage") {
                    found.s_maxage = Some(
                        seconds()
                            .unwrap_or(0)
                            .min(found.s_maxage.unwrap_or(u64::MAX)),
                    );
                }
            }
        }
        found
    }
}

/// A delta-seconds value; one that is not a number counts as 0 (RFC 9111
/// §1.2.2: an invalid value must not make a response fresher), one too
/// large to hold as the largest.
fn delta_seconds(text: &str) -> u64 {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return 0;
    }
    text.parse().unwrap_or(u64::MAX)
}
