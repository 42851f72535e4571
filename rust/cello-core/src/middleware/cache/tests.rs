use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::*;
use crate::middleware::tests::head;
use crate::middleware::{Chain, Context, ETag, Outgoing};

/// A clock the test moves by hand.
struct ManualClock {
    start: Instant,
    millis: AtomicU64,
}

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(ManualClock {
            start: Instant::now(),
            millis: AtomicU64::new(0),
        })
    }

    fn advance(&self, by: Duration) {
        self.millis
            .fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    fn now(&self) -> Instant {
        self.start + Duration::from_millis(self.millis.load(Ordering::SeqCst))
    }
}

struct Fixture {
    cache: Arc<Cache>,
    clock: Arc<ManualClock>,
    tags: Arc<TagGenerations>,
}

fn fixture(options: CacheOptions) -> Fixture {
    let clock = ManualClock::new();
    let tags = Arc::new(TagGenerations::new().unwrap());
    let ticking = clock.clone();
    let cache = Cache::with_parts(options, tags.clone(), Arc::new(move || ticking.now()));
    Fixture {
        cache: Arc::new(cache),
        clock,
        tags,
    }
}

fn map(headers: &[(&str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    map
}

/// What one request got: its status, headers, body, and whether the
/// handler ran for it.
struct Got {
    status: u16,
    headers: HeaderMap,
    body: Option<Bytes>,
    handler_ran: bool,
}

impl Got {
    fn x_cache(&self) -> &str {
        self.headers
            .get(X_CACHE)
            .map(|v| v.to_str().unwrap())
            .unwrap_or("")
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }
}

/// Sends one request through `chain`; the handler answers `status` with
/// `response` headers and `body` unless a layer answers first.
fn send_through(
    chain: &Chain,
    method: http::Method,
    path: &str,
    request: &[(&str, &str)],
    status: u16,
    response: &[(&str, &str)],
    body: &str,
) -> Got {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let mut head = head(path, request);
    head.query = query.to_owned();
    head.method = method.clone();
    let head_only = method == http::Method::HEAD;
    let mut context = Context::default();
    let (mut out, handler_ran) = match chain.request(&mut head, &mut context) {
        Some(answer) => {
            let body = match answer.body {
                Content::Bytes(bytes) => bytes,
                Content::File(_) => panic!("the cache never answers with a file"),
            };
            (
                Outgoing::new(answer.status, answer.headers, Some(body), head_only),
                false,
            )
        }
        None => (
            Outgoing::new(
                status,
                map(response),
                Some(Bytes::copy_from_slice(body.as_bytes())),
                head_only,
            ),
            true,
        ),
    };
    chain.response(&mut context, &mut out);
    Got {
        status: out.status,
        headers: out.headers,
        body: match out.body {
            OutBody::Full(bytes) => Some(bytes),
            _ => None,
        },
        handler_ran,
    }
}

fn chain_of(cache: &Arc<Cache>) -> Chain {
    let mut chain = Chain::default();
    chain.push("", Box::new(Shared(cache.clone()))).unwrap();
    chain
}

/// Lets a test keep a handle on the layer a chain owns.
struct Shared(Arc<Cache>);

impl Layer for Shared {
    fn name(&self) -> &'static str {
        "Cache"
    }
    fn stage(&self) -> Stage {
        Stage::Cache
    }
    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        self.0.request(head, context)
    }
    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        self.0.response(context, response)
    }
}

fn get(chain: &Chain, path: &str, request: &[(&str, &str)], response: &[(&str, &str)]) -> Got {
    send_through(
        chain,
        http::Method::GET,
        path,
        request,
        200,
        response,
        "hello",
    )
}

#[test]
fn a_miss_is_stored_and_the_next_request_is_a_hit() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let first = get(&chain, "/a", &[], &[("content-type", "text/plain")]);
    assert!(first.handler_ran);
    assert_eq!(first.x_cache(), "MISS");
    assert_eq!(first.header("cache-control"), Some("max-age=300"));
    let tag = ETag::new(false).tag_for(b"hello");
    assert_eq!(first.header("etag"), Some(tag.as_str()));

    f.clock.advance(Duration::from_secs(10));
    let second = get(&chain, "/a", &[], &[]);
    assert!(!second.handler_ran);
    assert_eq!(second.status, 200);
    assert_eq!(second.x_cache(), "HIT");
    assert_eq!(second.body.as_deref(), Some(&b"hello"[..]));
    assert_eq!(second.header("content-type"), Some("text/plain"));
    assert_eq!(second.header("cache-control"), Some("max-age=290"));
    assert_eq!(second.header("age"), Some("10"));
    assert_eq!(second.header("etag"), Some(tag.as_str()));
}

#[test]
fn the_host_is_part_of_the_key() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    assert_eq!(
        get(&chain, "/a", &[("host", "a.example")], &[]).x_cache(),
        "MISS"
    );
    let other = get(&chain, "/a", &[("host", "evil.example")], &[]);
    assert!(
        other.handler_ran,
        "a page built for one host is not served to another"
    );
    assert_eq!(
        get(&chain, "/a", &[("host", "a.example")], &[]).x_cache(),
        "HIT"
    );
}

#[test]
fn the_query_is_part_of_the_key() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    assert_eq!(get(&chain, "/a?x=1", &[], &[]).x_cache(), "MISS");
    assert_eq!(get(&chain, "/a?x=2", &[], &[]).x_cache(), "MISS");
    assert_eq!(get(&chain, "/a?x=1", &[], &[]).x_cache(), "HIT");
    assert_eq!(get(&chain, "/a", &[], &[]).x_cache(), "MISS");
}

#[test]
fn entries_expire_after_their_ttl() {
    let f = fixture(CacheOptions {
        ttl: Duration::from_secs(5),
        ..CacheOptions::default()
    });
    let chain = chain_of(&f.cache);
    get(&chain, "/a", &[], &[]);
    f.clock.advance(Duration::from_millis(4_999));
    assert_eq!(get(&chain, "/a", &[], &[]).x_cache(), "HIT");
    f.clock.advance(Duration::from_millis(1));
    let expired = get(&chain, "/a", &[], &[]);
    assert!(expired.handler_ran);
    assert_eq!(expired.x_cache(), "MISS");
}

#[test]
fn a_route_ttl_and_the_handler_s_cache_control_bound_the_lifetime() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let own = get(&chain, "/own", &[], &[("x-cache-ttl", "2")]);
    assert_eq!(own.header("cache-control"), Some("max-age=2"));
    assert_eq!(own.header("x-cache-ttl"), Some("2"), "kept for the client");
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(get(&chain, "/own", &[], &[]).x_cache(), "MISS");

    let bounded = get(
        &chain,
        "/cc",
        &[],
        &[("cache-control", "public, max-age=3")],
    );
    assert_eq!(bounded.x_cache(), "MISS");
    assert_eq!(bounded.header("cache-control"), Some("public, max-age=3"));
    f.clock.advance(Duration::from_secs(1));
    let hit = get(&chain, "/cc", &[], &[]);
    assert_eq!(hit.x_cache(), "HIT");
    assert_eq!(
        hit.header("cache-control"),
        Some("public, max-age=3"),
        "the handler's wins"
    );
    assert_eq!(hit.header("age"), Some("1"));
    f.clock.advance(Duration::from_secs(2));
    assert_eq!(get(&chain, "/cc", &[], &[]).x_cache(), "MISS");

    let shared = get(
        &chain,
        "/s",
        &[],
        &[("cache-control", "max-age=1000, s-maxage=1")],
    );
    assert_eq!(shared.x_cache(), "MISS");
    f.clock.advance(Duration::from_secs(1));
    assert_eq!(get(&chain, "/s", &[], &[]).x_cache(), "MISS");

    for zero in ["max-age=0", "max-age=soon", "s-maxage=0"] {
        let got = get(&chain, "/zero", &[], &[("cache-control", zero)]);
        assert_eq!(got.x_cache(), "BYPASS", "{zero}");
    }
    let bad_ttl = get(&chain, "/bad-ttl", &[], &[("x-cache-ttl", "-1")]);
    assert_eq!(bad_ttl.header("cache-control"), Some("max-age=300"));
}

#[test]
fn uncacheable_responses_bypass_and_are_not_stored() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let cases: &[&[(&str, &str)]] = &[
        &[("set-cookie", "a=1")],
        &[("cache-control", "no-store")],
        &[("cache-control", "no-cache")],
        &[("cache-control", "private, max-age=60")],
        &[("cache-control", "Private")],
        &[("vary", "accept, *")],
    ];
    for (i, headers) in cases.iter().enumerate() {
        let path = format!("/u{i}");
        assert_eq!(
            get(&chain, &path, &[], headers).x_cache(),
            "BYPASS",
            "{headers:?}"
        );
        let again = get(&chain, &path, &[], headers);
        assert!(again.handler_ran, "{headers:?} was not stored");
    }
    for status in [201, 206, 301, 304, 404, 500] {
        let path = format!("/s{status}");
        let got = send_through(&chain, http::Method::GET, &path, &[], status, &[], "x");
        assert_eq!(got.x_cache(), "BYPASS", "{status}");
        let again = send_through(&chain, http::Method::GET, &path, &[], status, &[], "x");
        assert!(again.handler_ran, "{status} was not stored");
    }
}

#[test]
fn a_streamed_body_is_not_stored() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let mut head = head("/stream", &[]);
    let mut context = Context::default();
    assert!(chain.request(&mut head, &mut context).is_none());
    let mut out = Outgoing::new(200, HeaderMap::new(), None, false);
    chain.response(&mut context, &mut out);
    assert_eq!(out.headers[X_CACHE], "BYPASS");
    assert_eq!(f.cache.store().usage().0, 0);
}

#[test]
fn a_204_is_stored_with_no_body() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let first = send_through(&chain, http::Method::GET, "/e", &[], 204, &[], "");
    assert_eq!(first.x_cache(), "MISS");
    assert!(first.header("etag").is_none());
    let second = send_through(&chain, http::Method::GET, "/e", &[], 204, &[], "");
    assert!(!second.handler_ran);
    assert_eq!(second.status, 204);
}

#[test]
fn credentials_bypass_unless_the_cache_is_keyed_by_user() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    get(&chain, "/p", &[], &[]);
    for credentials in [("authorization", "Bearer x"), ("cookie", "session=1")] {
        let got = get(&chain, "/p", &[credentials], &[]);
        assert!(
            got.handler_ran,
            "{credentials:?} is never served a shared copy"
        );
        assert_eq!(got.x_cache(), "BYPASS");
    }
}

/// Sets `request.context["user"]` as an authentication layer would.
struct Authenticate;

impl Layer for Authenticate {
    fn name(&self) -> &'static str {
        "Auth"
    }
    fn stage(&self) -> Stage {
        Stage::Authentication
    }
    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if let Some(user) = head.headers.get("x-test-user") {
            let user = user.to_str().unwrap().to_owned();
            if user.starts_with('{') {
                context.insert_json("user", user);
            } else {
                context.insert("user", user);
            }
        }
        None
    }
}

#[test]
fn keyed_by_user_each_user_has_their_own_entries() {
    let f = fixture(CacheOptions {
        key_by_user: true,
        ..CacheOptions::default()
    });
    let mut chain = chain_of(&f.cache);
    chain.push("", Box::new(Authenticate)).unwrap();
    let alice = [
        ("authorization", "Bearer a"),
        ("x-test-user", r#"{"sub":"alice","exp":1}"#),
    ];
    let alice_again = [
        ("authorization", "Bearer a2"),
        ("x-test-user", r#"{"sub":"alice","exp":2}"#),
    ];
    let bob = [
        ("authorization", "Bearer b"),
        ("x-test-user", r#"{"id":7}"#),
    ];
    assert_eq!(get(&chain, "/me", &alice, &[]).x_cache(), "MISS");
    assert_eq!(get(&chain, "/me", &alice_again, &[]).x_cache(), "HIT");
    assert_eq!(get(&chain, "/me", &bob, &[]).x_cache(), "MISS");
    assert_eq!(
        get(&chain, "/me", &[], &[]).x_cache(),
        "MISS",
        "anonymous apart"
    );
    let text_user = [("cookie", "s=1"), ("x-test-user", "carol")];
    assert_eq!(get(&chain, "/me", &text_user, &[]).x_cache(), "MISS");
    assert_eq!(get(&chain, "/me", &text_user, &[]).x_cache(), "HIT");
    // Credentials nobody vouched for, or claims that name nobody.
    assert_eq!(
        get(&chain, "/me", &[("cookie", "s=2")], &[]).x_cache(),
        "BYPASS"
    );
    let nameless = [
        ("authorization", "Bearer n"),
        ("x-test-user", r#"{"role":"x"}"#),
    ];
    assert_eq!(get(&chain, "/me", &nameless, &[]).x_cache(), "BYPASS");
}

#[test]
fn vary_headers_join_the_key() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let vary = [("vary", "Accept-Language")];
    let en = [("accept-language", "en")];
    let fr = [("accept-language", "fr")];
    assert_eq!(get(&chain, "/v", &en, &vary).x_cache(), "MISS");
    assert_eq!(get(&chain, "/v", &fr, &vary).x_cache(), "MISS");
    assert_eq!(get(&chain, "/v", &en, &vary).x_cache(), "HIT");
    assert_eq!(get(&chain, "/v", &fr, &vary).x_cache(), "HIT");
    assert_eq!(
        get(&chain, "/v", &[], &vary).x_cache(),
        "MISS",
        "absent differs"
    );
    assert_eq!(
        get(&chain, "/v", &[("accept-language", "")], &vary).x_cache(),
        "MISS"
    );
    assert_eq!(get(&chain, "/v", &[], &vary).x_cache(), "HIT");
    assert_eq!(f.cache.store().usage().0, 4);
    // A new Vary list for the resource drops the entries of the old one.
    let refresh = [("cache-control", "no-cache"), ("accept", "text/html")];
    let by_accept = [("vary", "accept")];
    assert_eq!(get(&chain, "/v", &refresh, &by_accept).x_cache(), "MISS");
    assert_eq!(f.cache.store().usage().0, 1);
    assert_eq!(
        get(&chain, "/v", &[("accept", "text/html")], &[]).x_cache(),
        "HIT"
    );
    assert_eq!(get(&chain, "/v", &en, &[]).x_cache(), "MISS");
}

#[test]
fn head_is_served_from_the_get_entry_and_never_stores() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let head_first = send_through(&chain, http::Method::HEAD, "/h", &[], 200, &[], "hello");
    assert!(head_first.handler_ran);
    assert_eq!(head_first.x_cache(), "BYPASS");
    assert_eq!(f.cache.store().usage().0, 0);
    get(&chain, "/h", &[], &[]);
    let head_hit = send_through(&chain, http::Method::HEAD, "/h", &[], 200, &[], "hello");
    assert!(!head_hit.handler_ran);
    assert_eq!(head_hit.x_cache(), "HIT");
    assert!(head_hit.body.is_none(), "no body for HEAD");
}

#[test]
fn other_methods_excluded_paths_and_unlisted_methods_are_left_alone() {
    let f = fixture(CacheOptions {
        methods: vec![http::Method::GET],
        ..CacheOptions::default()
    });
    let chain = chain_of(&f.cache);
    for method in [http::Method::POST, http::Method::HEAD, http::Method::DELETE] {
        let got = send_through(&chain, method.clone(), "/a", &[], 200, &[], "x");
        assert!(got.headers.get(X_CACHE).is_none(), "{method}");
    }
    for path in ["/health", "/health/live", "/metrics"] {
        let got = get(&chain, path, &[], &[]);
        assert!(got.headers.get(X_CACHE).is_none(), "{path}");
        assert!(get(&chain, path, &[], &[]).handler_ran);
    }
    assert_eq!(get(&chain, "/healthy", &[], &[]).x_cache(), "MISS");
}

#[test]
fn request_no_cache_fetches_a_fresh_copy_and_no_store_bypasses() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    get(&chain, "/r", &[], &[]);
    for fresh in [
        [("cache-control", "no-cache")],
        [("cache-control", "max-age=0")],
        [("pragma", "no-cache")],
    ] {
        let got = get(&chain, "/r", &fresh, &[]);
        assert!(got.handler_ran, "{fresh:?}");
        assert_eq!(got.x_cache(), "MISS");
    }
    let got = get(&chain, "/r", &[("cache-control", "no-store")], &[]);
    assert!(got.handler_ran);
    assert_eq!(got.x_cache(), "BYPASS");
    assert_eq!(get(&chain, "/r", &[], &[]).x_cache(), "HIT");
}

#[test]
fn if_none_match_gets_a_304_from_a_hit_and_from_a_stored_miss() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    let tag = ETag::new(false).tag_for(b"hello");
    let inm = [("if-none-match", tag.as_str())];
    let miss = get(&chain, "/c", &inm, &[("content-type", "text/plain")]);
    assert_eq!(miss.status, 304);
    assert_eq!(miss.x_cache(), "MISS");
    assert!(miss.header("content-type").is_none());
    assert_eq!(miss.header("etag"), Some(tag.as_str()));
    let hit = get(&chain, "/c", &inm, &[]);
    assert!(!hit.handler_ran);
    assert_eq!(hit.status, 304);
    assert_eq!(hit.x_cache(), "HIT");
    assert!(hit.body.is_none());
    assert_eq!(hit.header("cache-control"), Some("max-age=300"));
    assert!(hit.header("content-type").is_none());
    let other = get(&chain, "/c", &[("if-none-match", "\"other\"")], &[]);
    assert_eq!(other.status, 200);
    assert_eq!(
        get(&chain, "/c", &[("if-none-match", "*")], &[]).status,
        304
    );
    let own = get(
        &chain,
        "/own",
        &[("if-none-match", "W/\"v1\"")],
        &[("etag", "\"v1\"")],
    );
    assert_eq!(own.status, 304, "a handler's own tag, weakly compared");
}

#[test]
fn with_the_etag_layer_a_hit_is_validated_once_and_the_same_way() {
    let f = fixture(CacheOptions::default());
    let mut chain = chain_of(&f.cache);
    chain.push("", Box::new(ETag::new(false))).unwrap();
    let tag = ETag::new(false).tag_for(b"hello");
    let first = get(&chain, "/e", &[], &[]);
    assert_eq!(first.header("etag"), Some(tag.as_str()));
    assert_eq!(first.headers.get_all("etag").iter().count(), 1);
    let inm = [("if-none-match", tag.as_str())];
    let hit = get(&chain, "/e", &inm, &[]);
    assert_eq!((hit.status, hit.x_cache()), (304, "HIT"));
    assert_eq!(hit.headers.get_all("etag").iter().count(), 1);
    let since = [("if-modified-since", "Tue, 01 Jul 2025 12:00:00 GMT")];
    let modified = [("last-modified", "Tue, 01 Jul 2025 12:00:00 GMT")];
    get(&chain, "/m", &[], &modified);
    let hit = get(&chain, "/m", &since, &[]);
    assert_eq!(
        (hit.status, hit.x_cache()),
        (304, "HIT"),
        "the ETag layer's If-Modified-Since"
    );
}

#[test]
fn tag_invalidation_makes_tagged_entries_stale() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    get(&chain, "/users", &[], &[("x-cache-tags", "users, lists")]);
    get(&chain, "/posts", &[], &[("x-cache-tags", "posts")]);
    get(&chain, "/plain", &[], &[]);
    f.tags.invalidate("users");
    let users = get(&chain, "/users", &[], &[("x-cache-tags", "users")]);
    assert!(users.handler_ran);
    assert_eq!(users.x_cache(), "MISS");
    assert_eq!(
        get(&chain, "/users", &[], &[]).x_cache(),
        "HIT",
        "stored again"
    );
    assert_eq!(get(&chain, "/posts", &[], &[]).x_cache(), "HIT");
    assert_eq!(get(&chain, "/plain", &[], &[]).x_cache(), "HIT");
    f.tags.invalidate("lists");
    f.tags.invalidate("posts");
    assert_eq!(get(&chain, "/posts", &[], &[]).x_cache(), "MISS");
    assert_eq!(
        get(&chain, "/users", &[], &[]).x_cache(),
        "HIT",
        "re-stored untagged"
    );
}

#[test]
fn an_invalidation_in_a_forked_worker_reaches_the_parent() {
    let f = fixture(CacheOptions::default());
    let chain = chain_of(&f.cache);
    get(&chain, "/t", &[], &[("x-cache-tags", "t")]);
    // SAFETY: the child only bumps an atomic and exits with _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        f.tags.invalidate("t");
        unsafe { libc::_exit(0) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(get(&chain, "/t", &[], &[]).x_cache(), "MISS");
}

#[test]
fn the_store_keeps_within_its_byte_and_entry_caps_dropping_the_least_recent() {
    let body = "x".repeat(1000);
    let f = fixture(CacheOptions {
        limits: Limits {
            max_bytes: 5_000,
            max_entries: 100,
            max_entry_bytes: 2_000,
        },
        ..CacheOptions::default()
    });
    let chain = chain_of(&f.cache);
    let fetch = |path: &str| send_through(&chain, http::Method::GET, path, &[], 200, &[], &body);
    for i in 0..3 {
        assert_eq!(fetch(&format!("/{i}")).x_cache(), "MISS");
    }
    assert_eq!(fetch("/0").x_cache(), "HIT", "/0 is now the most recent");
    for i in 3..8 {
        fetch(&format!("/{i}"));
        let (_, bytes) = f.cache.store().usage();
        assert!(bytes <= 5_000, "{bytes} bytes held");
    }
    let (entries, _) = f.cache.store().usage();
    assert!((2..=4).contains(&entries), "{entries} entries");
    assert_eq!(fetch("/7").x_cache(), "HIT");
    assert_eq!(fetch("/1").x_cache(), "MISS", "the least recent went first");

    let big = "y".repeat(3_000);
    let too_big = send_through(&chain, http::Method::GET, "/big", &[], 200, &[], &big);
    assert_eq!(too_big.x_cache(), "BYPASS");
    assert!(
        too_big.header("etag").is_none(),
        "a response not stored is left as it was"
    );

    let few = fixture(CacheOptions {
        limits: Limits {
            max_bytes: 1 << 20,
            max_entries: 2,
            max_entry_bytes: 1 << 20,
        },
        ..CacheOptions::default()
    });
    let chain = chain_of(&few.cache);
    for path in ["/a", "/b", "/c"] {
        get(&chain, path, &[], &[]);
    }
    assert_eq!(few.cache.store().usage().0, 2);
    assert_eq!(get(&chain, "/a", &[], &[]).x_cache(), "MISS");
    assert_eq!(get(&chain, "/c", &[], &[]).x_cache(), "HIT");
}

#[test]
fn expired_entries_are_swept_when_others_are_stored() {
    let f = fixture(CacheOptions {
        ttl: Duration::from_secs(1),
        ..CacheOptions::default()
    });
    let chain = chain_of(&f.cache);
    for i in 0..10 {
        get(&chain, &format!("/{i}"), &[], &[]);
    }
    assert_eq!(f.cache.store().usage().0, 10);
    f.clock.advance(Duration::from_secs(2));
    get(&chain, "/new", &[], &[]);
    assert_eq!(f.cache.store().usage().0, 1);
}

#[test]
fn marked_only_caches_just_the_responses_that_ask_for_it() {
    let f = fixture(CacheOptions {
        marked_only: true,
        ..CacheOptions::default()
    });
    let chain = chain_of(&f.cache);
    let plain = get(&chain, "/plain", &[], &[]);
    assert!(plain.headers.get(X_CACHE).is_none());
    assert!(plain.header("cache-control").is_none());
    assert!(get(&chain, "/plain", &[], &[]).handler_ran);
    let marked = [("x-cache-ttl", "60")];
    assert_eq!(get(&chain, "/m", &[], &marked).x_cache(), "MISS");
    assert_eq!(get(&chain, "/m", &[], &marked).x_cache(), "HIT");
    let cookie = get(&chain, "/m", &[("cookie", "a=1")], &marked);
    assert_eq!(cookie.x_cache(), "BYPASS");
}

#[test]
fn cache_control_directives_are_read_case_insensitively_and_strictly() {
    let d = CacheDirectives::of(&map(&[(
        "cache-control",
        "Public, MAX-AGE=\"60\", s-maxage=5",
    )]));
    assert_eq!((d.max_age, d.s_maxage), (Some(60), Some(5)));
    let d = CacheDirectives::of(&map(&[
        ("cache-control", "max-age=60"),
        ("cache-control", "max-age=30"),
    ]));
    assert_eq!(d.max_age, Some(30), "the stricter of two");
    let d = CacheDirectives::of(&map(&[(
        "cache-control",
        "max-age=99999999999999999999999",
    )]));
    assert_eq!(d.max_age, Some(u64::MAX));
    let d = CacheDirectives::of(&map(&[("cache-control", "no-cache=\"set-cookie\"")]));
    assert!(d.no_cache);
}

#[test]
fn keys_of_different_parts_never_collide() {
    assert_ne!(
        base_key("GET", b"", "/a", "b", None),
        base_key("GET", b"", "/ab", "", None)
    );
    assert_ne!(
        base_key("GET", b"", "/a", "", Some("")),
        base_key("GET", b"", "/a", "", None)
    );
    let vary = [HeaderName::from_static("a"), HeaderName::from_static("b")];
    let one = full_key(b"k", &vary, &map(&[("a", "1,2")]));
    let two = full_key(b"k", &vary, &map(&[("a", "1"), ("b", "2")]));
    assert_ne!(one, two);
}
