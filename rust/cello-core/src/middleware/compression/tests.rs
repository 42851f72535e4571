//! The layer's decisions: what is compressed, what is left alone, and the
//! headers either way.

use bytes::Bytes;

use super::encoders::tests::{decode, ALL};
use super::*;
use crate::middleware::tests::head;

fn json(len: usize) -> Bytes {
    let mut body = String::from("[");
    while body.len() < len - 1 {
        body.push_str("1,");
    }
    body.truncate(len - 1);
    body.push(']');
    Bytes::from(body)
}

struct Run {
    layer: Compression,
    accept: Option<&'static str>,
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<Bytes>,
    head_only: bool,
}

impl Run {
    fn new(accept: &'static str, body: Option<Bytes>) -> Self {
        Run {
            layer: Compression::default(),
            accept: Some(accept),
            status: 200,
            headers: vec![("content-type", "application/json")],
            body,
            head_only: false,
        }
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.retain(|(n, _)| *n != name);
        self.headers.push((name, value));
        self
    }

    fn go(self) -> Outgoing {
        let accept: Vec<_> = self
            .accept
            .iter()
            .map(|a| ("accept-encoding", *a))
            .collect();
        let mut head = head("/", &accept);
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            headers.append(*name, HeaderValue::from_static(value));
        }
        let mut chain = crate::middleware::Chain::default();
        chain.push("", Box::new(self.layer)).unwrap();
        // Through a chain, so `settle` runs as in the doors.
        let mut context = Context::default();
        assert!(chain.request(&mut head, &mut context).is_none());
        let mut out = Outgoing::new(self.status, headers, self.body, self.head_only);
        chain.response(&mut context, &mut out);
        out
    }
}

fn full(out: &Outgoing) -> &Bytes {
    match &out.body {
        OutBody::Full(bytes) => bytes,
        other => panic!("expected a whole body, got {other:?}"),
    }
}

fn encoding(out: &Outgoing) -> Option<&str> {
    out.headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap())
}

fn vary(out: &Outgoing) -> Vec<&str> {
    out.headers
        .get_all(VARY)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect()
}

#[test]
fn a_whole_body_is_compressed_with_the_negotiated_coding() {
    let body = json(5000);
    for (accept, coding) in [
        ("gzip", Coding::Gzip),
        ("br", Coding::Brotli),
        ("zstd", Coding::Zstd),
        ("gzip, br, zstd", Coding::Zstd),
    ] {
        let out = Run::new(accept, Some(body.clone()))
            .header("content-length", "5000")
            .go();
        assert_eq!(encoding(&out), Some(coding.token()));
        assert_eq!(vary(&out), ["Accept-Encoding"]);
        let packed = full(&out);
        assert_eq!(
            out.headers[CONTENT_LENGTH],
            packed.len().to_string().as_str()
        );
        assert_eq!(decode(coding, packed).unwrap(), body);
    }
}

#[test]
fn identity_still_varies_on_accept_encoding() {
    for accept in ["identity", "gzip;q=0", "deflate"] {
        let out = Run::new(accept, Some(json(2000))).go();
        assert_eq!(encoding(&out), None, "{accept}");
        assert_eq!(vary(&out), ["Accept-Encoding"], "{accept}");
        assert_eq!(full(&out), &json(2000));
    }
    let mut run = Run::new("", Some(json(2000)));
    run.accept = None;
    let out = run.go();
    assert_eq!(encoding(&out), None);
    assert_eq!(vary(&out), ["Accept-Encoding"]);
}

#[test]
fn min_size_is_inclusive() {
    let below = Run::new("gzip", Some(json(1023))).go();
    assert_eq!(encoding(&below), None);
    assert!(vary(&below).is_empty(), "too small for anyone: no Vary");
    let at = Run::new("gzip", Some(json(1024))).go();
    assert_eq!(encoding(&at), Some("gzip"));

    let mut run = Run::new("gzip", Some(json(100)));
    run.layer = Compression::new(10, Levels::default(), vec![Coding::Gzip]);
    assert_eq!(encoding(&run.go()), Some("gzip"));
}

#[test]
fn responses_that_must_not_change_are_left_alone() {
    let cases: Vec<(&str, Run)> = vec![
        (
            "already encoded",
            Run::new("gzip", Some(json(4000))).header("content-encoding", "br"),
        ),
        (
            "a range",
            Run::new("gzip", Some(json(4000))).header("content-range", "bytes 0-3999/8000"),
        ),
        ("no-transform", {
            Run::new("gzip", Some(json(4000))).header("cache-control", "public, No-Transform")
        }),
        (
            "an image",
            Run::new("gzip", Some(json(4000))).header("content-type", "image/png"),
        ),
        (
            "octet-stream",
            Run::new("gzip", Some(json(4000))).header("content-type", "application/octet-stream"),
        ),
        ("no type", {
            let mut run = Run::new("gzip", Some(json(4000)));
            run.headers.clear();
            run
        }),
        ("206", {
            let mut run = Run::new("gzip", Some(json(4000)));
            run.status = 206;
            run
        }),
    ];
    for (what, run) in cases {
        let out = run.go();
        assert_ne!(encoding(&out), Some("gzip"), "{what}");
        assert!(vary(&out).is_empty(), "{what}");
        assert_eq!(full(&out), &json(4000), "{what}");
    }
}

#[test]
fn a_head_request_or_bodyless_status_gets_no_encoding() {
    let mut head = Run::new("gzip", Some(Bytes::new())).header("content-length", "4000");
    head.head_only = true;
    let out = head.go();
    assert_eq!(encoding(&out), None);
    assert_eq!(out.headers[CONTENT_LENGTH], "4000");

    let mut not_modified = Run::new("gzip", None);
    not_modified.status = 304;
    assert_eq!(encoding(&not_modified.go()), None);
}

#[test]
fn a_body_that_does_not_shrink_is_kept() {
    // Random bytes labelled as text: compression only adds framing.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    for coding in ALL {
        let out = Run::new(coding.token(), Some(Bytes::from(noise.clone())))
            .header("content-type", "text/plain")
            .go();
        assert_eq!(encoding(&out), None, "{coding}");
        assert_eq!(full(&out).as_ref(), noise.as_slice());
        assert_eq!(vary(&out), ["Accept-Encoding"]);
    }
}

#[test]
fn a_stream_gets_an_encoder_and_loses_its_length() {
    let out = Run::new("br", None)
        .header("content-type", "text/event-stream")
        .go();
    assert_eq!(encoding(&out), Some("br"));
    let mut out = out;
    let mut encoders = out.take_encoders().expect("an encoder");
    let mut sent = encoders.chunk(Bytes::from("data: 1\n\n")).to_vec();
    sent.extend_from_slice(&encoders.finish());
    assert_eq!(decode(Coding::Brotli, &sent).unwrap(), b"data: 1\n\n");

    let declared = Run::new("gzip", None).header("content-length", "5000").go();
    assert_eq!(encoding(&declared), Some("gzip"));
    assert!(!declared.headers.contains_key(CONTENT_LENGTH));

    let small = Run::new("gzip", None).header("content-length", "10").go();
    assert_eq!(encoding(&small), None);
    assert_eq!(small.headers[CONTENT_LENGTH], "10");
}

#[test]
fn vary_is_merged_not_clobbered() {
    let out = Run::new("gzip", Some(json(2000)))
        .header("vary", "Origin")
        .go();
    assert_eq!(vary(&out), ["Origin", "Accept-Encoding"]);
    let out = Run::new("gzip", Some(json(2000)))
        .header("vary", "origin, accept-encoding")
        .go();
    assert_eq!(vary(&out), ["origin, accept-encoding"]);
    let out = Run::new("gzip", Some(json(2000))).header("vary", "*").go();
    assert_eq!(vary(&out), ["*"]);
}

#[test]
fn a_strong_etag_becomes_weak_and_ranges_are_no_longer_offered() {
    let out = Run::new("gzip", Some(json(2000)))
        .header("etag", "\"abc\"")
        .header("accept-ranges", "bytes")
        .go();
    assert_eq!(out.headers[ETAG], "W/\"abc\"");
    assert!(!out.headers.contains_key(ACCEPT_RANGES));
    let weak = Run::new("gzip", Some(json(2000)))
        .header("etag", "W/\"abc\"")
        .go();
    assert_eq!(weak.headers[ETAG], "W/\"abc\"");
    let identity = Run::new("identity", Some(json(2000)))
        .header("etag", "\"abc\"")
        .go();
    assert_eq!(identity.headers[ETAG], "\"abc\"");
}

#[test]
fn only_the_offered_codings_are_used() {
    let mut run = Run::new("zstd, br", Some(json(2000)));
    run.layer = Compression::new(1024, Levels::default(), vec![Coding::Gzip]);
    let out = run.go();
    assert_eq!(encoding(&out), None);
    assert_eq!(vary(&out), ["Accept-Encoding"]);
}
