//! What the layer allows, refuses and adds, preflights and simple requests.

use super::*;
use crate::middleware::tests::head;
use crate::middleware::{Chain, Content};

fn cors(configure: impl FnOnce(&mut CorsOptions)) -> Cors {
    let mut options = CorsOptions::default();
    configure(&mut options);
    Cors::new(options).unwrap()
}

fn listed(origins: &[&str]) -> Cors {
    cors(|o| o.origins = Some(origins.iter().map(|s| (*s).to_owned()).collect()))
}

fn preflight(layer: &Cors, headers: &[(&str, &str)]) -> Option<Answer> {
    let mut head = head("/api", headers);
    head.method = Method::OPTIONS;
    layer.request(&mut head, &mut Context::default())
}

/// A non-preflight request through the layer; the response headers it leaves.
fn simple(layer: &Cors, headers: &[(&str, &str)], start: HeaderMap) -> HeaderMap {
    let mut head = head("/api", headers);
    let mut context = Context::default();
    assert!(layer.request(&mut head, &mut context).is_none());
    let mut out = Outgoing::new(200, start, None, false);
    layer.response(&mut context, &mut out);
    out.headers
}

fn detail(answer: &Answer) -> String {
    let Content::Bytes(body) = &answer.body else {
        panic!("a problem has a body in memory")
    };
    let json: serde_json::Value = serde_json::from_slice(body).unwrap();
    json["detail"].as_str().unwrap().to_owned()
}

#[test]
fn a_preflight_is_answered_with_204_and_the_policy() {
    let layer = listed(&["https://app.example"]);
    let answer = preflight(
        &layer,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "x-token, content-type"),
        ],
    )
    .expect("answered");
    assert_eq!(answer.status, 204);
    let h = &answer.headers;
    assert_eq!(h["access-control-allow-origin"], "https://app.example");
    assert_eq!(
        h["access-control-allow-methods"],
        "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS"
    );
    assert_eq!(h["access-control-allow-headers"], "x-token, content-type");
    assert_eq!(h["access-control-max-age"], "86400");
    assert_eq!(h["vary"], PREFLIGHT_VARY);
    assert!(!h.contains_key("access-control-allow-credentials"));
}

#[test]
fn a_refused_preflight_is_a_403_problem_without_allow_origin() {
    let layer = cors(|o| {
        o.origins = Some(vec!["https://app.example".into()]);
        o.methods = Some(vec!["GET".into()]);
        o.allow_headers = Some(vec!["x-token".into()]);
    });
    let cases: [(&[(&str, &str)], &str); 4] = [
        (
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "GET"),
            ],
            "CORS origin not allowed",
        ),
        (
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "DELETE"),
            ],
            "CORS method not allowed: DELETE",
        ),
        (
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "get"),
            ],
            "CORS method not allowed: get",
        ),
        (
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET"),
                ("access-control-request-headers", "X-Token, x-secret"),
            ],
            "CORS header not allowed: x-secret",
        ),
    ];
    for (headers, expected) in cases {
        let answer = preflight(&layer, headers).expect("answered");
        assert_eq!(answer.status, 403, "{headers:?}");
        assert_eq!(detail(&answer), expected);
        assert_eq!(answer.headers["content-type"], "application/problem+json");
        assert!(!answer.headers.contains_key("access-control-allow-origin"));
    }
}

#[test]
fn listed_headers_allow_the_safelisted_ones_and_are_told_when_none_are_asked() {
    let layer = cors(|o| o.allow_headers = Some(vec!["X-Token".into()]));
    let asked = preflight(
        &layer,
        &[
            ("origin", "https://a.example"),
            ("access-control-request-method", "POST"),
            ("access-control-request-headers", "content-type,x-token"),
        ],
    )
    .unwrap();
    assert_eq!(asked.status, 204);
    let unasked = preflight(
        &layer,
        &[
            ("origin", "https://a.example"),
            ("access-control-request-method", "POST"),
        ],
    )
    .unwrap();
    assert_eq!(unasked.headers["access-control-allow-headers"], "x-token");
}

#[test]
fn any_method_and_header_are_told_back_what_was_asked() {
    let layer = cors(|o| {
        o.methods = Some(vec!["*".into()]);
        o.credentials = true;
    });
    let answer = preflight(
        &layer,
        &[
            ("origin", "https://a.example"),
            ("access-control-request-method", "PROPFIND"),
            ("access-control-request-headers", "x-one"),
            ("access-control-request-headers", "x-two"),
        ],
    )
    .unwrap();
    assert_eq!(answer.status, 204);
    assert_eq!(answer.headers["access-control-allow-methods"], "PROPFIND");
    assert_eq!(
        answer.headers["access-control-allow-headers"],
        "x-one, x-two"
    );
    assert_eq!(
        answer.headers["access-control-allow-origin"],
        "https://a.example"
    );
    assert_eq!(answer.headers["access-control-allow-credentials"], "true");
}

#[test]
fn options_without_a_requested_method_or_origin_is_not_a_preflight() {
    let layer = cors(|_| {});
    assert!(preflight(&layer, &[("origin", "https://a.example")]).is_none());
    assert!(preflight(&layer, &[("access-control-request-method", "GET")]).is_none());
}

#[test]
fn origins_match_exactly() {
    let layer = listed(&["https://example.com"]);
    for origin in ["https://example.com", "HTTPS://EXAMPLE.COM"] {
        assert!(
            layer.allows_origin(&HeaderValue::from_static(origin)),
            "{origin}"
        );
    }
    for origin in [
        "https://example.com.attacker.net",
        "https://example.com.evil",
        "https://evil.example.com",
        "http://example.com",
        "https://example.com:8443",
        "https://example.co",
        "null",
        "",
    ] {
        assert!(
            !layer.allows_origin(&HeaderValue::from_static(origin)),
            "{origin}"
        );
    }
}

#[test]
fn the_null_origin_is_allowed_only_when_listed() {
    let null = HeaderValue::from_static("null");
    assert!(!cors(|_| {}).allows_origin(&null));
    assert!(!cors(|o| o.origin_regex = Some(".*".into())).allows_origin(&null));
    assert!(listed(&["null"]).allows_origin(&null));
}

#[test]
fn an_origin_pattern_must_match_the_whole_origin() {
    let layer = cors(|o| o.origin_regex = Some(r"https://[a-z]+\.example\.com".into()));
    assert!(layer.allows_origin(&HeaderValue::from_static("https://app.example.com")));
    for origin in [
        "https://app.example.com.evil.net",
        "https://evil.net/https://app.example.com",
        "https://example.com",
    ] {
        assert!(
            !layer.allows_origin(&HeaderValue::from_static(origin)),
            "{origin}"
        );
    }
}

#[test]
fn any_origin_answers_star_unless_credentials_make_it_echo() {
    let star = simple(
        &cors(|_| {}),
        &[("origin", "https://a.example")],
        HeaderMap::new(),
    );
    assert_eq!(star["access-control-allow-origin"], "*");
    assert_eq!(star["vary"], "Origin");
    let echoed = simple(
        &cors(|o| o.credentials = true),
        &[("origin", "https://a.example")],
        HeaderMap::new(),
    );
    assert_eq!(echoed["access-control-allow-origin"], "https://a.example");
    assert_eq!(echoed["access-control-allow-credentials"], "true");
}

#[test]
fn an_allowed_origin_gets_exposed_headers_and_a_refused_one_nothing() {
    let layer = cors(|o| {
        o.origins = Some(vec!["https://app.example".into()]);
        o.expose_headers = vec!["X-Total".into(), "X-Page".into()];
    });
    let allowed = simple(
        &layer,
        &[("origin", "https://app.example")],
        HeaderMap::new(),
    );
    assert_eq!(
        allowed["access-control-allow-origin"],
        "https://app.example"
    );
    assert_eq!(allowed["access-control-expose-headers"], "x-total, x-page");
    let refused = simple(
        &layer,
        &[("origin", "https://evil.example")],
        HeaderMap::new(),
    );
    assert!(!refused.contains_key("access-control-allow-origin"));
    assert!(!refused.contains_key("access-control-expose-headers"));
    assert_eq!(refused["vary"], "Origin");
}

#[test]
fn without_an_origin_only_an_origin_dependent_policy_adds_vary() {
    assert!(simple(&cors(|_| {}), &[], HeaderMap::new()).is_empty());
    let listed = simple(&listed(&["https://a.example"]), &[], HeaderMap::new());
    assert_eq!(listed.len(), 1);
    assert_eq!(listed["vary"], "Origin");
}

#[test]
fn vary_is_extended_not_replaced() {
    let layer = listed(&["https://a.example"]);
    let origin = [("origin", "https://a.example")];
    let with = |value: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::VARY, HeaderValue::from_static(value));
        headers
    };
    let extended = simple(&layer, &origin, with("Accept-Encoding"));
    assert_eq!(extended["vary"], "Accept-Encoding, Origin");
    for kept in ["accept, origin", "*", "Origin"] {
        let headers = simple(&layer, &origin, with(kept));
        let values: Vec<_> = headers.get_all("vary").iter().collect();
        assert_eq!(values, [kept]);
    }
}

#[test]
fn the_first_policy_a_request_passes_decides() {
    let mut chain = Chain::default();
    chain
        .push("", Box::new(listed(&["https://outer.example"])))
        .unwrap();
    chain
        .push("/api", Box::new(listed(&["https://inner.example"])))
        .unwrap();
    let mut head = head("/api/x", &[("origin", "https://inner.example")]);
    let mut context = Context::default();
    assert!(chain.request(&mut head, &mut context).is_none());
    let mut out = Outgoing::new(200, HeaderMap::new(), None, false);
    chain.response(&mut context, &mut out);
    assert!(!out.headers.contains_key("access-control-allow-origin"));
    assert_eq!(out.headers["vary"], "Origin");
}

#[test]
fn bad_options_name_the_option() {
    let cases: [(&str, CorsOptions); 5] = [
        (
            "origins",
            CorsOptions {
                origins: Some(vec!["a\nb".into()]),
                ..Default::default()
            },
        ),
        (
            "origin_regex",
            CorsOptions {
                origin_regex: Some("(".into()),
                ..Default::default()
            },
        ),
        (
            "methods",
            CorsOptions {
                methods: Some(vec!["GE T".into()]),
                ..Default::default()
            },
        ),
        (
            "allow_headers",
            CorsOptions {
                allow_headers: Some(vec!["x y".into()]),
                ..Default::default()
            },
        ),
        (
            "expose_headers",
            CorsOptions {
                expose_headers: vec!["a:b".into()],
                ..Default::default()
            },
        ),
    ];
    for (option, options) in cases {
        let error = Cors::new(options).err().expect(option);
        assert_eq!(error.option, option);
        assert!(error
            .to_string()
            .starts_with(&format!("invalid CORS option '{option}'")));
    }
}
