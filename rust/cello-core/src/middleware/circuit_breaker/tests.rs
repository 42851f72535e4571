//! The breaker's states driven through the layer hooks, with a hand-moved clock.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::middleware::tests::head;
use crate::middleware::{Chain, OutBody};

/// A clock tests move by hand, in milliseconds.
#[derive(Default)]
struct Hands(AtomicU64);

impl Hands {
    fn advance(&self, millis: u64) {
        self.0.fetch_add(millis, Ordering::SeqCst);
    }
}

fn breaker(options: CircuitBreakerOptions) -> (Arc<CircuitBreaker>, Arc<Hands>) {
    let hands = Arc::new(Hands::default());
    let read = hands.clone();
    let clock: Clock = Arc::new(move || Duration::from_millis(read.0.load(Ordering::SeqCst)));
    (
        Arc::new(CircuitBreaker::with_clock(options, clock).unwrap()),
        hands,
    )
}

fn options(threshold: u32, reset_secs: u64, target: u32) -> CircuitBreakerOptions {
    CircuitBreakerOptions {
        failure_threshold: threshold,
        reset_timeout: Duration::from_secs(reset_secs),
        half_open_target: target,
        ..CircuitBreakerOptions::default()
    }
}

/// Sends one request through `layer`; the endpoint answers `status` if the
/// breaker lets the request reach it. Returns the status the client got.
fn exchange(layer: &CircuitBreaker, status: u16) -> (u16, Option<Answer>) {
    let mut context = Context::default();
    let mut request = head("/x", &[]);
    let answer = layer.request(&mut request, &mut context);
    let given = answer.as_ref().map_or(status, |a| a.status);
    let mut out = Outgoing::new(given, http::HeaderMap::new(), None, false);
    layer.response(&mut context, &mut out);
    (given, answer)
}

fn status(layer: &CircuitBreaker, status: u16) -> u16 {
    exchange(layer, status).0
}

#[test]
fn consecutive_failures_open_the_circuit_and_it_answers_503_itself() {
    let (layer, _) = breaker(options(3, 30, 1));
    assert_eq!(status(&layer, 500), 500);
    assert_eq!(status(&layer, 502), 502);
    assert_eq!(layer.state(), CircuitState::Closed { failures: 2 });
    assert_eq!(status(&layer, 503), 503);
    assert!(matches!(layer.state(), CircuitState::Open { .. }));

    let (given, answer) = exchange(&layer, 200);
    assert_eq!(given, 503);
    let answer = answer.unwrap();
    assert_eq!(answer.headers[RETRY_AFTER], "30");
    assert_eq!(
        answer.headers[http::header::CONTENT_TYPE],
        "application/problem+json"
    );
    match answer.body {
        super::super::Content::Bytes(body) => assert_eq!(
            std::str::from_utf8(&body).unwrap(),
            r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"Service temporarily unavailable","retry_after":30}"#
        ),
        other => panic!("expected bytes, got {other:?}"),
    }
}

#[test]
fn a_success_resets_the_run_of_failures() {
    let (layer, _) = breaker(options(2, 30, 1));
    for code in [500, 200, 500, 301, 502, 204] {
        status(&layer, code);
    }
    assert_eq!(layer.state(), CircuitState::Closed { failures: 0 });
}

#[test]
fn client_errors_neither_count_nor_break_a_run_nor_close_the_circuit() {
    let (layer, hands) = breaker(options(3, 1, 1));
    for code in [500, 404, 401, 500, 429, 400] {
        status(&layer, code);
    }
    assert_eq!(layer.state(), CircuitState::Closed { failures: 2 });
    status(&layer, 503);
    assert!(matches!(layer.state(), CircuitState::Open { .. }));
    hands.advance(1_000);
    assert_eq!(status(&layer, 404), 404);
    assert_eq!(layer.state(), CircuitState::HalfOpen { successes: 0 });
    status(&layer, 200);
    assert_eq!(layer.state(), CircuitState::Closed { failures: 0 });
}

#[test]
fn retry_after_counts_down_in_whole_seconds_rounded_up() {
    let (layer, hands) = breaker(options(1, 10, 1));
    status(&layer, 500);
    hands.advance(2_500);
    let (_, answer) = exchange(&layer, 200);
    assert_eq!(answer.unwrap().headers[RETRY_AFTER], "8");
    hands.advance(7_499);
    let (_, answer) = exchange(&layer, 200);
    assert_eq!(answer.unwrap().headers[RETRY_AFTER], "1");
}

#[test]
fn after_the_timeout_it_half_opens_and_enough_successes_close_it() {
    let (layer, hands) = breaker(options(1, 5, 2));
    status(&layer, 500);
    hands.advance(5_000);
    assert_eq!(status(&layer, 200), 200);
    assert_eq!(layer.state(), CircuitState::HalfOpen { successes: 1 });
    assert_eq!(status(&layer, 200), 200);
    assert_eq!(layer.state(), CircuitState::Closed { failures: 0 });
}

#[test]
fn a_failure_while_half_open_opens_it_again_for_a_full_timeout() {
    let (layer, hands) = breaker(options(3, 5, 3));
    for _ in 0..3 {
        status(&layer, 504);
    }
    hands.advance(6_000);
    assert_eq!(status(&layer, 200), 200);
    assert_eq!(status(&layer, 500), 500);
    assert_eq!(
        layer.state(),
        CircuitState::Open {
            until: Duration::from_secs(11)
        }
    );
    hands.advance(4_000);
    assert_eq!(status(&layer, 200), 503);
    hands.advance(1_000);
    assert_eq!(status(&layer, 200), 200);
}

#[test]
fn only_the_configured_codes_count() {
    let (layer, _) = breaker(CircuitBreakerOptions {
        failure_threshold: 1,
        failure_codes: vec![503],
        ..CircuitBreakerOptions::default()
    });
    status(&layer, 500);
    assert_eq!(layer.state(), CircuitState::Closed { failures: 0 });
    status(&layer, 503);
    assert!(matches!(layer.state(), CircuitState::Open { .. }));
}

#[test]
fn responses_of_requests_let_through_before_it_opened_change_nothing() {
    let (layer, _) = breaker(options(1, 30, 1));
    let mut early = Context::default();
    assert!(layer.request(&mut head("/x", &[]), &mut early).is_none());
    status(&layer, 500);
    let open = layer.state();
    let mut out = Outgoing::new(200, http::HeaderMap::new(), None, false);
    layer.response(&mut early, &mut out);
    assert_eq!(layer.state(), open);
}

#[test]
fn an_inner_breaker_s_refusal_is_not_an_outer_breaker_s_failure() {
    let hands = Arc::new(Hands::default());
    let read = hands.clone();
    let clock: Clock = Arc::new(move || Duration::from_millis(read.0.load(Ordering::SeqCst)));
    let outer = Arc::new(CircuitBreaker::with_clock(options(2, 30, 1), clock.clone()).unwrap());
    let inner = Arc::new(CircuitBreaker::with_clock(options(1, 30, 1), clock).unwrap());

    /// Lends a shared breaker to a chain (the test keeps a handle to read its state).
    struct Shared(Arc<CircuitBreaker>);
    impl Layer for Shared {
        fn name(&self) -> &'static str {
            "CircuitBreaker"
        }
        fn stage(&self) -> Stage {
            Stage::CircuitBreaker
        }
        fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
            self.0.request(head, context)
        }
        fn response(&self, context: &mut Context, response: &mut Outgoing) {
            self.0.response(context, response)
        }
    }
    let mut chain = Chain::default();
    chain.push("", Box::new(Shared(outer.clone()))).unwrap();
    chain.push("/api", Box::new(Shared(inner.clone()))).unwrap();

    let send = |path: &str, endpoint_status: u16| {
        let mut context = Context::default();
        let answer = chain.request(&mut head(path, &[]), &mut context);
        let given = answer.as_ref().map_or(endpoint_status, |a| a.status);
        let mut out = Outgoing::new(given, http::HeaderMap::new(), None, false);
        chain.response(&mut context, &mut out);
        given
    };
    assert_eq!(send("/api/x", 500), 500);
    assert!(matches!(inner.state(), CircuitState::Open { .. }));
    assert_eq!(outer.state(), CircuitState::Closed { failures: 1 });
    for _ in 0..3 {
        assert_eq!(send("/api/x", 200), 503);
    }
    assert_eq!(outer.state(), CircuitState::Closed { failures: 1 });
    assert_eq!(send("/other", 200), 200);
    assert_eq!(outer.state(), CircuitState::Closed { failures: 0 });
}

#[test]
fn a_handled_body_stays_untouched_on_the_way_out() {
    let (layer, _) = breaker(CircuitBreakerOptions::default());
    let mut context = Context::default();
    assert!(layer.request(&mut head("/x", &[]), &mut context).is_none());
    let mut out = Outgoing::new(200, http::HeaderMap::new(), Some("ok".into()), false);
    layer.response(&mut context, &mut out);
    assert!(matches!(&out.body, OutBody::Full(b) if b == "ok"));
    assert!(out.headers.is_empty());
}

#[test]
fn options_that_would_never_open_close_or_retry_are_refused() {
    let refused =
        |options: CircuitBreakerOptions| CircuitBreaker::new(options).err().unwrap().to_string();
    assert_eq!(
        refused(options(0, 30, 1)),
        "failure_threshold must be at least 1"
    );
    assert_eq!(
        refused(options(1, 30, 0)),
        "half_open_target must be at least 1"
    );
    assert_eq!(
        refused(CircuitBreakerOptions {
            reset_timeout: Duration::ZERO,
            ..CircuitBreakerOptions::default()
        }),
        "reset_timeout must be more than 0 seconds"
    );
    for code in [99, 404, 600] {
        let message = refused(CircuitBreakerOptions {
            failure_codes: vec![500, code],
            ..CircuitBreakerOptions::default()
        });
        assert!(
            message.starts_with(&format!("failure_codes: {code} ")),
            "{message}"
        );
    }
}

#[test]
fn an_enormous_reset_timeout_saturates_instead_of_overflowing() {
    let (layer, hands) = breaker(CircuitBreakerOptions {
        failure_threshold: 1,
        reset_timeout: Duration::MAX,
        ..CircuitBreakerOptions::default()
    });
    status(&layer, 500);
    let (_, answer) = exchange(&layer, 200);
    assert_eq!(
        answer.unwrap().headers[RETRY_AFTER],
        u64::MAX.to_string().as_str()
    );
    hands.advance(1_000);
    assert_eq!(
        layer.state(),
        CircuitState::Open {
            until: Duration::MAX
        }
    );
    assert_eq!(status(&layer, 500), 503);
}

#[test]
fn exempt_paths_are_neither_counted_nor_refused() {
    let (layer, _) = breaker(CircuitBreakerOptions {
        failure_threshold: 1,
        exempt_paths: vec!["/health".into()],
        ..CircuitBreakerOptions::default()
    });
    let send = |path: &str, endpoint_status: u16| {
        let mut context = Context::default();
        let answer = layer.request(&mut head(path, &[]), &mut context);
        let given = answer.as_ref().map_or(endpoint_status, |a| a.status);
        let mut out = Outgoing::new(given, http::HeaderMap::new(), None, false);
        layer.response(&mut context, &mut out);
        given
    };
    // A failing readiness probe does not open the circuit...
    assert_eq!(send("/health/ready", 503), 503);
    assert_eq!(layer.state(), CircuitState::Closed { failures: 0 });
    // ...and once the app's failures open it, probes still reach their endpoint.
    assert_eq!(send("/orders", 500), 500);
    assert!(matches!(layer.state(), CircuitState::Open { .. }));
    assert_eq!(send("/health/live", 200), 200);
    assert_eq!(send("/health", 200), 200);
    assert_eq!(send("/healthz", 200), 503);
    assert_eq!(send("/orders", 200), 503);
}
