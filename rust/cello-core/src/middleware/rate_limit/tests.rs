use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::*;
use crate::middleware::tests::head;
use crate::middleware::{Chain, Content, OutBody};

/// A clock tests move by hand; it starts at an arbitrary Unix time.
struct ManualClock(AtomicU64);

const START: u64 = 1_700_000_000 * MICROS;

impl ManualClock {
    fn new() -> Arc<Self> {
        Arc::new(ManualClock(AtomicU64::new(START)))
    }

    fn advance_ms(&self, ms: u64) {
        self.0.fetch_add(ms * 1000, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

fn limiter(algorithm: Algorithm, clock: &Arc<ManualClock>) -> Limiter {
    Limiter::new(algorithm, None, 1024, clock.clone()).unwrap()
}

fn allowed(limiter: &Limiter, key: &str, times: usize) -> usize {
    (0..times)
        .filter(|_| limiter.acquire(key.as_bytes()).allowed)
        .count()
}

#[test]
fn a_token_bucket_allows_its_capacity_then_refills_at_its_rate() {
    let clock = ManualClock::new();
    let limiter = limiter(Algorithm::token_bucket(3, 1.0), &clock);
    let first = limiter.acquire(b"a");
    assert!(first.allowed);
    assert_eq!((first.limit, first.remaining), (3, 2));
    assert_eq!(first.reset, START / MICROS + 1);
    assert_eq!(allowed(&limiter, "a", 2), 2);
    let refused = limiter.acquire(b"a");
    assert!(!refused.allowed);
    assert_eq!((refused.remaining, refused.retry_after), (0, 1));
    assert_eq!(refused.reset, START / MICROS + 3);

    clock.advance_ms(999);
    assert!(!limiter.acquire(b"a").allowed);
    clock.advance_ms(1);
    assert_eq!(allowed(&limiter, "a", 5), 1);
    // Idle long enough, the bucket is full again, and no fuller.
    clock.advance_ms(60_000);
    assert_eq!(allowed(&limiter, "a", 5), 3);
}

#[test]
fn keys_have_budgets_of_their_own() {
    let clock = ManualClock::new();
    let limiter = limiter(Algorithm::token_bucket(2, 0.1), &clock);
    assert_eq!(allowed(&limiter, "a", 5), 2);
    assert_eq!(allowed(&limiter, "b", 5), 2);
}

#[test]
fn a_slow_refill_says_how_long_to_wait_in_whole_seconds() {
    let clock = ManualClock::new();
    // One request a minute.
    let limiter = limiter(Algorithm::token_bucket(1, 1.0 / 60.0), &clock);
    assert!(limiter.acquire(b"a").allowed);
    clock.advance_ms(500);
    let refused = limiter.acquire(b"a");
    assert_eq!(refused.retry_after, 60);
}

#[test]
fn a_sliding_window_weighs_the_previous_window_by_its_overlap() {
    let clock = ManualClock::new();
    // Align to a window boundary so the weights are round numbers.
    clock
        .0
        .store(START - START % (10 * MICROS), Ordering::SeqCst);
    let limiter = limiter(Algorithm::sliding_window(4, 10.0), &clock);
    let decision = limiter.acquire(b"k");
    assert_eq!((decision.allowed, decision.remaining), (true, 3));
    assert_eq!(allowed(&limiter, "k", 10), 3);
    let refused = limiter.acquire(b"k");
    assert!(!refused.allowed);
    // All four fell at the window's start: the next window starts with
    // them weighing 4, and the first one fits when a quarter has passed.
    assert_eq!(refused.retry_after, 13);

    clock.advance_ms(10_000);
    assert!(!limiter.acquire(b"k").allowed);
    clock.advance_ms(2_500);
    assert_eq!(allowed(&limiter, "k", 10), 1);
    clock.advance_ms(2_500);
    // 4 * 0.5 + 1 = 3 used: one more fits.
    assert_eq!(allowed(&limiter, "k", 10), 1);
    // Two windows later nothing of the past counts.
    clock.advance_ms(20_000);
    assert_eq!(allowed(&limiter, "k", 10), 4);
}

#[test]
fn a_sliding_window_refusal_in_mid_window_waits_for_the_overlap_to_fade() {
    let clock = ManualClock::new();
    clock
        .0
        .store(START - START % (10 * MICROS), Ordering::SeqCst);
    let limiter = limiter(Algorithm::sliding_window(10, 10.0), &clock);
    assert_eq!(allowed(&limiter, "k", 10), 10);
    // Two seconds into the next window the old ten weigh eight.
    clock.advance_ms(12_000);
    assert_eq!(allowed(&limiter, "k", 5), 2);
    // 10 * (1 - e/10) + 2 + 1 <= 10 once e >= 3 s: a second from now.
    let refused = limiter.acquire(b"k");
    assert!(!refused.allowed);
    assert_eq!(refused.retry_after, 1);
    clock.advance_ms(1_000);
    assert!(limiter.acquire(b"k").allowed);
}

/// CPU and memory readings a test sets.
struct FixedLoad(Option<f64>, Option<f64>);

impl SystemLoad for FixedLoad {
    fn cpu(&self) -> Option<f64> {
        self.0
    }

    fn memory(&self) -> Option<f64> {
        self.1
    }
}

fn adaptive(clock: &Arc<ManualClock>, thresholds: Thresholds, load: FixedLoad) -> Limiter {
    let adaptive = Adaptive {
        min_capacity: 10,
        pressure: Pressure::new(thresholds, Box::new(load)),
    };
    Limiter::new(
        Algorithm::token_bucket(100, 10.0),
        Some(adaptive),
        1024,
        clock.clone(),
    )
    .unwrap()
}

const ERRORS_ONLY: Thresholds = Thresholds {
    error_rate: Some(0.1),
    latency_ms: None,
    cpu: None,
    memory: None,
};

#[test]
fn an_adaptive_limit_shrinks_toward_its_floor_as_errors_rise() {
    let clock = ManualClock::new();
    let limiter = adaptive(&clock, ERRORS_ONLY, FixedLoad(None, None));
    assert_eq!(limiter.capacity(), 100);
    // A few errors among few responses say nothing yet.
    for _ in 0..5 {
        limiter.observe(500, 1000);
    }
    assert_eq!(limiter.capacity(), 100);
    // 10 of 20 responses failed: (0.5 - 0.1) / 0.9 of the slack is gone.
    for status in [200; 10].into_iter().chain([500; 5]) {
        limiter.observe(status, 1000);
    }
    assert_eq!(limiter.capacity(), 100 - 40);
    assert_eq!(limiter.acquire(b"k").limit, 60);
    // Twenty seconds later those have aged out; then everything fails.
    clock.advance_ms(20_000);
    assert_eq!(limiter.capacity(), 100);
    for _ in 0..20 {
        limiter.observe(503, 1000);
    }
    assert_eq!(limiter.capacity(), 10);
    clock.advance_ms(20_000);
    assert_eq!(limiter.capacity(), 100);
}

#[test]
fn an_adaptive_limit_reads_latency_cpu_and_memory_against_their_thresholds() {
    let clock = ManualClock::new();
    let latency = Thresholds {
        latency_ms: Some(100.0),
        ..ERRORS_ONLY
    };
    let slow = adaptive(&clock, latency, FixedLoad(None, None));
    for _ in 0..10 {
        slow.observe(200, 150_000);
    }
    // A mean of 150 ms is half over 100 ms: half the slack goes.
    assert_eq!(slow.capacity(), 55);

    let system = Thresholds {
        cpu: Some(0.8),
        memory: Some(0.9),
        ..ERRORS_ONLY
    };
    assert_eq!(
        adaptive(&clock, system, FixedLoad(Some(0.5), Some(0.5))).capacity(),
        100
    );
    assert_eq!(
        adaptive(&clock, system, FixedLoad(Some(0.9), Some(0.5))).capacity(),
        55
    );
    assert_eq!(
        adaptive(&clock, system, FixedLoad(Some(0.1), Some(1.0))).capacity(),
        10
    );
}

#[test]
fn threads_share_one_budget_exactly() {
    let clock = ManualClock::new();
    let limiter = Arc::new(limiter(Algorithm::token_bucket(500, 0.001), &clock));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let limiter = limiter.clone();
            std::thread::spawn(move || allowed(&limiter, "shared", 200))
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(total, 500);
}

#[test]
fn forked_processes_share_one_budget() {
    let clock = ManualClock::new();
    let limiter = limiter(Algorithm::token_bucket(10, 0.001), &clock);
    // SAFETY: the child only uses the shared atomics and leaves with
    // _exit, running no destructors and taking no locks.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        let spent = allowed(&limiter, "client", 6);
        unsafe { libc::_exit(spent as i32) };
    }
    let mut status = 0;
    // SAFETY: waits for the child forked above.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(libc::WEXITSTATUS(status), 6);
    assert_eq!(allowed(&limiter, "client", 10), 4);
}

#[test]
fn a_full_table_shares_buckets_and_so_never_hands_out_a_fresh_budget() {
    let clock = ManualClock::new();
    let algorithm = Algorithm::token_bucket(2, 0.001);
    // The smallest table: eight entries, all within every key's reach.
    let limiter = Limiter::new(algorithm, None, 1, clock.clone()).unwrap();
    assert_eq!(limiter.table.entries(), PROBES);
    for key in 0..PROBES {
        assert_eq!(allowed(&limiter, &format!("k{key}"), 5), 2);
    }
    assert_eq!(limiter.table.busy_entries(&algorithm, clock.now()), PROBES);
    // New keys find no entry of their own: they spend an exhausted key's
    // bucket, and the old keys are still refused.
    for key in 0..100 {
        assert_eq!(allowed(&limiter, &format!("new{key}"), 5), 0);
    }
    for key in 0..PROBES {
        assert_eq!(allowed(&limiter, &format!("k{key}"), 5), 0);
    }
}

#[test]
fn an_idle_entry_goes_to_a_new_key_and_its_old_key_starts_afresh() {
    let clock = ManualClock::new();
    let algorithm = Algorithm::token_bucket(2, 1.0);
    let limiter = Limiter::new(algorithm, None, 1, clock.clone()).unwrap();
    for key in 0..PROBES {
        assert_eq!(allowed(&limiter, &format!("k{key}"), 5), 2);
    }
    clock.advance_ms(2_000);
    assert_eq!(limiter.table.busy_entries(&algorithm, clock.now()), 0);
    assert_eq!(allowed(&limiter, "newcomer", 5), 2);
    assert_eq!(allowed(&limiter, "k0", 5), 2);
}

fn with_peer(mut head: RequestHead, peer: &str) -> RequestHead {
    head.client = Some(SocketAddr::new(peer.parse().unwrap(), 5000));
    head
}

fn client_of(proxies: &[&str], peer: &str, headers: &[(&str, &str)]) -> String {
    let proxies = TrustedProxies::parse(proxies).unwrap();
    let head = with_peer(head("/", headers), peer);
    String::from_utf8(KeyBy::Ip.key(&head, &proxies)).unwrap()
}

#[test]
fn forwarding_headers_count_only_from_trusted_proxies() {
    let spoof = [("x-forwarded-for", "1.1.1.1"), ("x-real-ip", "2.2.2.2")];
    assert_eq!(client_of(&[], "9.9.9.9", &spoof), "ip:9.9.9.9");
    assert_eq!(client_of(&["10.0.0.0/8"], "9.9.9.9", &spoof), "ip:9.9.9.9");
    assert_eq!(client_of(&["10.0.0.0/8"], "10.1.2.3", &spoof), "ip:1.1.1.1");
    assert_eq!(
        client_of(&["10.0.0.1"], "10.0.0.1", &[("x-real-ip", "2.2.2.2")]),
        "ip:2.2.2.2"
    );
    // The client wrote the left part; the trusted proxies appended the rest.
    let chain = [("x-forwarded-for", "6.6.6.6, 5.5.5.5, 10.0.0.2")];
    assert_eq!(client_of(&["10.0.0.0/8"], "10.0.0.1", &chain), "ip:5.5.5.5");
    let split = [
        ("x-forwarded-for", "6.6.6.6"),
        ("x-forwarded-for", "5.5.5.5:443"),
    ];
    assert_eq!(client_of(&["10.0.0.1"], "10.0.0.1", &split), "ip:5.5.5.5");
    // Garbage stops trust where it starts.
    let garbage = [("x-forwarded-for", "1.1.1.1, nonsense")];
    assert_eq!(
        client_of(&["10.0.0.1"], "10.0.0.1", &garbage),
        "ip:10.0.0.1"
    );
    // A trusted proxy that forwards nothing is the client.
    assert_eq!(client_of(&["10.0.0.1"], "10.0.0.1", &[]), "ip:10.0.0.1");
}

#[test]
fn ipv6_clients_are_limited_by_their_64_and_mapped_ipv4_as_ipv4() {
    assert_eq!(
        client_of(&[], "2001:db8:1:2:aaaa::1", &[]),
        "ip:2001:db8:1:2::/64"
    );
    assert_eq!(
        client_of(&[], "2001:db8:1:2:bbbb::9", &[]),
        "ip:2001:db8:1:2::/64"
    );
    assert_eq!(
        client_of(
            &["10.0.0.1"],
            "::ffff:10.0.0.1",
            &[("x-real-ip", "3.3.3.3")]
        ),
        "ip:3.3.3.3"
    );
    let proxies = TrustedProxies::default();
    assert_eq!(address_key(proxies.client(&head("/", &[]))), "ip:unknown");
}

#[test]
fn networks_parse_strictly() {
    assert!(Network::parse("10.0.0.0/8")
        .unwrap()
        .contains("10.200.0.1".parse().unwrap()));
    assert!(!Network::parse("10.0.0.0/8")
        .unwrap()
        .contains("11.0.0.1".parse().unwrap()));
    assert!(Network::parse("::/0")
        .unwrap()
        .contains("2001:db8::1".parse().unwrap()));
    assert!(!Network::parse("::/0")
        .unwrap()
        .contains("1.2.3.4".parse().unwrap()));
    assert!(Network::parse("0.0.0.0/0")
        .unwrap()
        .contains("1.2.3.4".parse::<IpAddr>().unwrap()));
    for bad in ["10.0.0.1/8", "10.0.0.0/33", "nonsense", "", "10.0.0.0/x"] {
        assert!(Network::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn key_by_takes_ip_path_or_a_header_that_falls_back_to_the_address() {
    let proxies = TrustedProxies::default();
    let by_header = KeyBy::parse("header:X-API-Key").unwrap();
    let keyed = with_peer(head("/a", &[("x-api-key", "k1")]), "1.2.3.4");
    assert_eq!(by_header.key(&keyed, &proxies), b"header:k1");
    let bare = with_peer(head("/a", &[]), "1.2.3.4");
    assert_eq!(by_header.key(&bare, &proxies), b"ip:1.2.3.4");
    assert_eq!(
        KeyBy::parse("path").unwrap().key(&bare, &proxies),
        b"path:/a"
    );
    for bad in ["user-agent", "header:", "header:bad name", "IP"] {
        assert!(KeyBy::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn exemptions_match_exactly_or_below() {
    let exemptions = vec!["/health".to_owned(), "/static/".to_owned()];
    for (path, expected) in [
        ("/health", true),
        ("/health/live", true),
        ("/healthz", false),
        ("/static", true),
        ("/static/app.js", true),
        ("/api", false),
    ] {
        assert_eq!(exempt(&exemptions, path), expected, "{path}");
    }
}

fn layer(clock: &Arc<ManualClock>, capacity: u64) -> RateLimit {
    RateLimit::new(
        Arc::new(limiter(Algorithm::token_bucket(capacity, 0.001), clock)),
        KeyBy::Ip,
        TrustedProxies::default(),
        vec!["/health".to_owned()],
    )
}

fn send(chain: &Chain, path: &str) -> (Outgoing, Context) {
    let mut head = with_peer(head(path, &[]), "1.2.3.4");
    let mut context = Context::default();
    let mut out = match chain.request(&mut head, &mut context) {
        Some(answer) => {
            let Content::Bytes(body) = answer.body else {
                panic!("a refusal is bytes")
            };
            Outgoing::new(answer.status, answer.headers, Some(body), false)
        }
        None => Outgoing::new(200, http::HeaderMap::new(), Some("ok".into()), false),
    };
    chain.response(&mut context, &mut out);
    (out, context)
}

#[test]
fn responses_carry_the_budget_and_a_refusal_is_a_429_problem() {
    let clock = ManualClock::new();
    let mut chain = Chain::default();
    chain.push("", Box::new(layer(&clock, 2))).unwrap();
    let (ok, context) = send(&chain, "/a");
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers["x-ratelimit-limit"], "2");
    assert_eq!(ok.headers["x-ratelimit-remaining"], "1");
    let reset = START / MICROS + 1000;
    assert_eq!(ok.headers["x-ratelimit-reset"], reset.to_string().as_str());
    assert_eq!(
        context.get("rate_limit_state"),
        Some(format!(r#"{{"limit":2,"remaining":1,"reset":{reset}}}"#).as_str())
    );
    send(&chain, "/a");
    let (refused, _) = send(&chain, "/b");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.headers["content-type"], "application/problem+json");
    assert_eq!(refused.headers["retry-after"], "1000");
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    let OutBody::Full(body) = &refused.body else {
        panic!("a whole body")
    };
    let body: serde_json::Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "type": "about:blank", "title": "Too Many Requests", "status": 429,
            "detail": DETAIL, "retry_after": 1000,
        })
    );
    let (health, _) = send(&chain, "/health/live");
    assert_eq!(health.status, 200);
    assert!(!health.headers.contains_key("x-ratelimit-limit"));
}

#[test]
fn stacked_limits_each_count_and_the_headers_describe_the_tightest() {
    let clock = ManualClock::new();
    let mut chain = Chain::default();
    chain.push("", Box::new(layer(&clock, 5))).unwrap();
    chain.push("/login", Box::new(layer(&clock, 2))).unwrap();
    let (first, context) = send(&chain, "/login");
    assert!(context
        .get("rate_limit_state")
        .unwrap()
        .contains(r#""limit":2"#));
    assert_eq!(first.headers["x-ratelimit-limit"], "2");
    assert_eq!(first.headers["x-ratelimit-remaining"], "1");
    send(&chain, "/login");
    let (refused, _) = send(&chain, "/login");
    assert_eq!(refused.status, 429);
    assert_eq!(refused.headers["x-ratelimit-limit"], "2");
    // The refusal spent the outer budget too: 5 - 3 left 2, now 1.
    let (elsewhere, _) = send(&chain, "/other");
    assert_eq!(elsewhere.status, 200);
    assert_eq!(elsewhere.headers["x-ratelimit-limit"], "5");
    assert_eq!(elsewhere.headers["x-ratelimit-remaining"], "1");
}
