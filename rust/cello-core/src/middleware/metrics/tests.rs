use super::*;
use crate::middleware::tests::head;
use crate::middleware::Chain;

fn chain() -> (Chain, Arc<Table>) {
    let metrics = Metrics::new(MetricsOptions::default()).unwrap();
    let table = metrics.table.clone();
    let mut chain = Chain::default();
    chain.push("", Box::new(metrics)).unwrap();
    (chain, table)
}

/// Sends one request through `chain`, routed to `route`, answered with
/// `status` and `body` (None: streamed, with `streamed` as its chunks).
fn serve(chain: &Chain, path: &str, route: u32, status: u16, body: Option<&'static str>) {
    let mut head = head(path, &[("content-length", "5")]);
    let mut context = Context::default();
    assert!(chain.request(&mut head, &mut context).is_none());
    context.set_route(route);
    let mut out = Outgoing::new(status, http::HeaderMap::new(), body.map(Bytes::from), false);
    chain.response(&mut context, &mut out);
    if let Some(mut encoders) = out.take_encoders() {
        encoders.chunk(Bytes::from_static(b"abc"));
        encoders.chunk(Bytes::from_static(b"defg"));
        encoders.finish();
    }
}

fn scrape(chain: &Chain) -> String {
    let mut head = head("/metrics", &[]);
    let mut context = Context::default();
    let answer = chain
        .request(&mut head, &mut context)
        .expect("the endpoint answers");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], render::CONTENT_TYPE);
    match answer.body {
        Content::Bytes(bytes) => String::from_utf8(bytes.to_vec()).unwrap(),
        Content::File(_) => panic!("a scrape is bytes"),
    }
}

#[test]
fn requests_are_counted_by_template_method_and_status() {
    let (chain, _) = chain();
    let users = crate::routing::template_id("/test-metrics/users/{id}");
    serve(&chain, "/test-metrics/users/1", users, 200, Some("hello"));
    serve(&chain, "/test-metrics/users/2", users, 200, Some("hi"));
    serve(&chain, "/nowhere", 0, 404, Some("{}"));
    let text = scrape(&chain);
    assert!(
        text.contains(
            "cello_http_requests_total{method=\"GET\",path=\"/test-metrics/users/{id}\",status=\"200\"} 2"
        ),
        "{text}"
    );
    assert!(text.contains(
        "cello_http_requests_total{method=\"GET\",path=\"<unmatched>\",status=\"404\"} 1"
    ));
    assert!(text.contains(
        "cello_http_response_size_bytes_sum{method=\"GET\",path=\"/test-metrics/users/{id}\",status=\"200\"} 7"
    ));
    assert!(text.contains(
        "cello_http_request_size_bytes_sum{method=\"GET\",path=\"/test-metrics/users/{id}\",status=\"200\"} 10"
    ));
    assert!(text.contains("# TYPE cello_http_request_duration_seconds histogram"));
    assert!(text.contains("le=\"0.005\""));
    assert!(text.contains("cello_http_requests_in_flight 0"));
    assert!(text.contains("cello_http_requests_in_progress 0"));
}

#[test]
fn the_endpoint_and_health_probes_are_not_measured() {
    let (chain, table) = chain();
    for path in ["/health", "/health/live", "/liveness", "/readiness"] {
        serve(&chain, path, 0, 200, Some("ok"));
    }
    scrape(&chain);
    scrape(&chain);
    assert!(table.snapshot().is_empty());
    // Near misses are measured.
    serve(&chain, "/healthz", 0, 404, Some(""));
    assert_eq!(table.snapshot().len(), 1);
}

#[test]
fn a_streamed_body_is_counted_when_it_ends_with_its_size() {
    let (chain, table) = chain();
    serve(&chain, "/stream", 0, 200, None);
    let (_, counters) = table.snapshot()[0];
    assert_eq!(counters[table::RESPONSE_SIZE_SUM], 7);
}

#[test]
fn a_request_in_flight_shows_on_the_gauge_until_it_is_answered_or_dropped() {
    let (chain, table) = chain();
    let mut head = head("/slow", &[]);
    let mut context = Context::default();
    chain.request(&mut head, &mut context);
    assert_eq!(table.in_flight(), 1);
    assert!(scrape(&chain).contains("cello_http_requests_in_flight 1"));
    drop(context); // the client left before any response
    assert_eq!(table.in_flight(), 0);
    assert!(table.snapshot().is_empty());
}

#[test]
fn other_methods_share_one_label_and_post_to_the_endpoint_is_not_a_scrape() {
    let (chain, _) = chain();
    let mut request = head("/x", &[]);
    request.method = http::Method::from_bytes(b"BREW").unwrap();
    let mut context = Context::default();
    chain.request(&mut request, &mut context);
    chain.response(
        &mut context,
        &mut Outgoing::new(405, http::HeaderMap::new(), None, true),
    );
    assert!(scrape(&chain).contains("method=\"other\",path=\"<unmatched>\",status=\"405\"} 1"));

    let mut post = head("/metrics", &[]);
    post.method = http::Method::POST;
    assert!(chain.request(&mut post, &mut Context::default()).is_none());
}

#[test]
fn names_take_the_namespace_and_subsystem_given_and_bad_ones_are_refused() {
    let options = MetricsOptions {
        namespace: "shop".into(),
        subsystem: String::new(),
        ..MetricsOptions::default()
    };
    let metrics = Metrics::new(options).unwrap();
    assert!(metrics.exposition().contains("shop_requests_in_flight 0"));
    for (namespace, subsystem, endpoint) in [
        ("9x", "http", "/metrics"),
        ("cello", "a-b", "/metrics"),
        ("cello", "http", "metrics"),
    ] {
        let options = MetricsOptions {
            namespace: namespace.into(),
            subsystem: subsystem.into(),
            endpoint: endpoint.into(),
            ..MetricsOptions::default()
        };
        assert!(Metrics::new(options).is_err());
    }
}
