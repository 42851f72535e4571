//! Conditional requests (RFC 9110 §13): an `ETag` on every whole 200 body
//! to GET and HEAD, and `304 Not Modified` when the client's `If-None-Match`
//! (or, without one, `If-Modified-Since`) says its copy is current.
//!
//! The tag is the xxh3-128 hash of the body, in hex. A validator only has
//! to change when the bytes change; nothing is signed or secret, so a
//! cryptographic hash would buy nothing but cost: xxh3 runs at memory
//! speed, and 128 bits make an accidental collision between two versions
//! of one resource practically impossible.

use std::time::SystemTime;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use xxhash_rust::xxh3::xxh3_128;

use super::{Answer, Context, Layer, OutBody, Outgoing, Stage};
use crate::http::request::RequestHead;

pub struct ETag {
    /// Generate weak tags (`W/"…"`): for apps whose bodies may differ in
    /// bytes that do not matter (a timestamp in a comment).
    weak: bool,
}

impl ETag {
    pub fn new(weak: bool) -> Self {
        ETag { weak }
    }

    /// The tag for `body`: its hash, quoted, weak when configured.
    pub fn tag_for(&self, body: &[u8]) -> String {
        let hash = xxh3_128(body);
        if self.weak {
            format!("W/\"{hash:032x}\"")
        } else {
            format!("\"{hash:032x}\"")
        }
    }
}

/// The validators a GET or HEAD request sent.
struct Validators {
    /// Every `If-None-Match` field line, in order; None when there is none.
    if_none_match: Option<Vec<HeaderValue>>,
    /// `If-Modified-Since`, when it is a valid HTTP date.
    if_modified_since: Option<SystemTime>,
}

impl Layer for ETag {
    fn name(&self) -> &'static str {
        "ETag"
    }

    fn stage(&self) -> Stage {
        Stage::ConditionalRequests
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if head.method != http::Method::GET && head.method != http::Method::HEAD {
            return None;
        }
        let lines: Vec<HeaderValue> = head
            .headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .cloned()
            .collect();
        context.note(Validators {
            if_none_match: (!lines.is_empty()).then_some(lines),
            if_modified_since: single(&head.headers, header::IF_MODIFIED_SINCE).and_then(http_date),
        });
        None
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let Some(validators) = context.take_note::<Validators>() else {
            return; // not a GET or HEAD
        };
        // Only a 200 has a representation a validator describes (RFC 9110
        // §13.2.1: conditions are not evaluated for errors or redirects).
        if response.status != 200 {
            return;
        }
        if !response.headers.contains_key(header::ETAG) {
            if let OutBody::Full(body) = &response.body {
                if let Ok(tag) = HeaderValue::from_str(&self.tag_for(body)) {
                    response.headers.insert(header::ETAG, tag);
                }
            }
        }
        if not_modified(&validators, &response.headers) {
            response.status = 304;
            strip_representation_metadata(&mut response.headers);
        }
    }
}

/// Whether the request's `If-None-Match` matches the `ETag` in `response`
/// (weak comparison; `*` matches any), as the response cache asks when it
/// answers from memory.
pub(super) fn matches_if_none_match(request: &HeaderMap, response: &HeaderMap) -> bool {
    let current = single(response, header::ETAG).and_then(|v| parse_tag(v.trim()));
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .any(|line| list_matches(line.as_bytes(), current))
}

/// A header sent exactly once, as text.
fn single(headers: &HeaderMap, name: HeaderName) -> Option<&str> {
    let mut all = headers.get_all(name).iter();
    match (all.next(), all.next()) {
        (Some(only), None) => only.to_str().ok(),
        _ => None,
    }
}

/// An HTTP date in any of the three forms RFC 9110 §5.6.7 has recipients
/// accept (IMF-fixdate, RFC 850, asctime); anything else is ignored.
fn http_date(value: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(value.trim()).ok()
}

/// RFC 9110 §13.2.2 steps 3 and 4: `If-None-Match` decides when present,
/// else `If-Modified-Since` against the response's `Last-Modified`.
fn not_modified(validators: &Validators, response: &HeaderMap) -> bool {
    if let Some(lines) = &validators.if_none_match {
        let current = single(response, header::ETAG).and_then(|v| parse_tag(v.trim()));
        return lines
            .iter()
            .any(|line| list_matches(line.as_bytes(), current));
    }
    let (Some(since), Some(modified)) = (
        validators.if_modified_since,
        single(response, header::LAST_MODIFIED).and_then(http_date),
    ) else {
        return false;
    };
    modified <= since
}

/// One entity tag: whether it is weak, and its opaque part (the quotes
/// included, so `"a"` and `W/"a"` compare equal weakly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tag<'a> {
    weak: bool,
    opaque: &'a [u8],
}

/// `value` when it is exactly one well-formed entity tag.
fn parse_tag(value: &str) -> Option<Tag<'_>> {
    match next_tag(value.as_bytes()) {
        Some((tag, [])) => Some(tag),
        _ => None,
    }
}

/// The entity tag at the start of `input` and what follows it.
fn next_tag(input: &[u8]) -> Option<(Tag<'_>, &[u8])> {
    let (weak, rest) = match input.strip_prefix(b"W/") {
        Some(rest) => (true, rest),
        None => (false, input),
    };
    let inner = rest.strip_prefix(b"\"")?;
    // etagc is %x21 / %x23-7E / obs-text: no quote, space or control.
    let end = inner.iter().position(|&b| b == b'"')?;
    if !inner[..end]
        .iter()
        .all(|&b| b == 0x21 || (b >= 0x23 && b != 0x7f))
    {
        return None;
    }
    let opaque = &rest[..end + 2];
    Some((Tag { weak, opaque }, &inner[end + 1..]))
}

/// Whether an `If-None-Match` field line matches the current tag, by weak
/// comparison (RFC 9110 §8.8.3.2). `*` matches any current representation.
/// An element that is not a well-formed tag matches nothing; the elements
/// after it are still read, from the next comma.
fn list_matches(line: &[u8], current: Option<Tag<'_>>) -> bool {
    let trimmed = line.trim_ascii();
    if trimmed == b"*" {
        return true;
    }
    let Some(current) = current else {
        return false;
    };
    let mut rest = trimmed;
    loop {
        rest = rest.trim_ascii_start();
        if let Some(after) = rest.strip_prefix(b",") {
            rest = after;
            continue;
        }
        if rest.is_empty() {
            return false;
        }
        match next_tag(rest) {
            Some((tag, after)) => {
                let after = after.trim_ascii_start();
                if after.is_empty() || after.starts_with(b",") {
                    if tag.opaque == current.opaque {
                        return true;
                    }
                    rest = after;
                } else {
                    // Junk glued to a tag: the element is malformed.
                    rest = skip_element(after);
                }
            }
            None => rest = skip_element(rest),
        }
    }
}

/// What follows the next comma (nothing when there is none).
fn skip_element(input: &[u8]) -> &[u8] {
    match input.iter().position(|&b| b == b',') {
        Some(at) => &input[at + 1..],
        None => &[],
    }
}

/// RFC 9110 §15.4.5: a 304 carries the fields a cache needs to update what
/// it holds (Cache-Control, Content-Location, Date, ETag, Expires, Vary, and
/// any field that is not about the representation) but not representation
/// metadata, which would describe a body that is not sent. Last-Modified is
/// kept only when there is no ETag, since only then does it guide the cache.
pub(super) fn strip_representation_metadata(headers: &mut HeaderMap) {
    for name in [
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::CONTENT_ENCODING,
        header::CONTENT_LANGUAGE,
        header::CONTENT_RANGE,
        header::TRANSFER_ENCODING,
    ] {
        headers.remove(name);
    }
    if headers.contains_key(header::ETAG) {
        headers.remove(header::LAST_MODIFIED);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::tests::head;
    use bytes::Bytes;

    const BODY: &str = "hello";

    fn strong() -> String {
        ETag::new(false).tag_for(BODY.as_bytes())
    }

    /// Runs the layer over a GET with `request` headers and a 200 with
    /// `response` headers and a whole body.
    fn exchange(request: &[(&str, &str)], response: &[(&str, &str)]) -> Outgoing {
        exchange_with(&ETag::new(false), http::Method::GET, request, response, 200)
    }

    fn exchange_with(
        layer: &ETag,
        method: http::Method,
        request: &[(&str, &str)],
        response: &[(&str, &str)],
        status: u16,
    ) -> Outgoing {
        let mut head = head("/", request);
        head.method = method.clone();
        let mut context = Context::default();
        assert!(layer.request(&mut head, &mut context).is_none());
        let mut headers = HeaderMap::new();
        for (name, value) in response {
            headers.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let head_only = method == http::Method::HEAD;
        let mut out = Outgoing::new(status, headers, Some(Bytes::from(BODY)), head_only);
        layer.response(&mut context, &mut out);
        out
    }

    #[test]
    fn the_tag_is_the_quoted_hex_xxh3_128_of_the_body() {
        let tag = strong();
        assert_eq!(tag.len(), 34);
        assert!(tag.starts_with('"') && tag.ends_with('"'));
        assert!(tag[1..33].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(tag, format!("\"{:032x}\"", xxh3_128(b"hello")));
        assert_ne!(tag, ETag::new(false).tag_for(b"hellp"));
        assert_eq!(ETag::new(true).tag_for(b"hello"), format!("W/{tag}"));
    }

    #[test]
    fn a_whole_200_body_gets_a_strong_tag() {
        let out = exchange(&[], &[]);
        assert_eq!(out.status, 200);
        assert_eq!(out.headers[header::ETAG], strong().as_str());
    }

    #[test]
    fn a_tag_already_there_is_kept() {
        let out = exchange(&[], &[("etag", "\"v1\"")]);
        assert_eq!(out.headers[header::ETAG], "\"v1\"");
        let out = exchange(&[("if-none-match", "\"v1\"")], &[("etag", "\"v1\"")]);
        assert_eq!(out.status, 304);
    }

    #[test]
    fn other_methods_and_statuses_are_left_alone() {
        let layer = ETag::new(false);
        let cond = [("if-none-match", "*")];
        for method in [http::Method::POST, http::Method::PUT, http::Method::DELETE] {
            let out = exchange_with(&layer, method, &cond, &[], 200);
            assert_eq!(out.status, 200);
            assert!(!out.headers.contains_key(header::ETAG));
        }
        for status in [201, 206, 301, 404, 500] {
            let out = exchange_with(&layer, http::Method::GET, &cond, &[], status);
            assert_eq!(out.status, status);
            assert!(!out.headers.contains_key(header::ETAG));
        }
    }

    #[test]
    fn a_matching_if_none_match_gives_a_304_without_representation_metadata() {
        let tag = strong();
        let out = exchange(
            &[("if-none-match", &tag)],
            &[
                ("content-type", "text/plain"),
                ("content-length", "5"),
                ("cache-control", "max-age=60"),
                ("vary", "accept"),
                ("date", "Tue, 01 Jul 2025 00:00:00 GMT"),
                ("expires", "Tue, 01 Jul 2025 00:01:00 GMT"),
                ("content-location", "/hello"),
                ("last-modified", "Tue, 01 Jul 2025 00:00:00 GMT"),
                ("set-cookie", "a=1"),
            ],
        );
        assert_eq!(out.status, 304);
        for kept in [
            "etag",
            "cache-control",
            "vary",
            "date",
            "expires",
            "content-location",
            "set-cookie",
        ] {
            assert!(out.headers.contains_key(kept), "{kept} is kept");
        }
        for dropped in ["content-type", "content-length", "last-modified"] {
            assert!(!out.headers.contains_key(dropped), "{dropped} is dropped");
        }
    }

    #[test]
    fn if_none_match_lists_compare_weakly() {
        let tag = strong();
        let weak = format!("W/{tag}");
        let matching = [
            tag.clone(),
            weak.clone(),
            format!("\"x\", {tag}"),
            format!("\"x\",{weak} ,\"y\""),
            format!(" ,, {tag} ,"),
            "*".to_owned(),
            " * ".to_owned(),
        ];
        for value in &matching {
            assert_eq!(
                exchange(&[("if-none-match", value)], &[]).status,
                304,
                "{value}"
            );
        }
        let split = exchange(&[("if-none-match", "\"x\""), ("if-none-match", &tag)], &[]);
        assert_eq!(split.status, 304, "a tag in a second field line matches");
        let out = exchange(&[("if-none-match", "\"x\"")], &[("etag", "W/\"x\"")]);
        assert_eq!(out.status, 304, "a weak current tag matches too");
    }

    #[test]
    fn malformed_if_none_match_values_match_nothing() {
        let tag = strong();
        let bare = tag.trim_matches('"').to_owned();
        let huge = format!("\"{}\"", "a".repeat(100_000));
        let cases = [
            bare.clone(),
            format!("{bare}, \"x\""),
            format!("w/{tag}"),
            format!("{tag}junk"),
            format!("\"{bare}"),
            "\"a b\"".to_owned(),
            "W/".to_owned(),
            "\"".to_owned(),
            ",,,".to_owned(),
            "**".to_owned(),
            format!("*, {bare}"),
            huge,
            "\u{7f}".to_owned(),
        ];
        for value in &cases {
            let Ok(header) = HeaderValue::from_str(value) else {
                continue;
            };
            let parsed = list_matches(header.as_bytes(), parse_tag(&tag));
            assert!(!parsed, "{value:.40} should not match");
            assert_eq!(exchange(&[("if-none-match", value)], &[]).status, 200);
        }
        // A malformed element does not hide a good one after it.
        let mixed = format!("garbage, {tag}");
        assert_eq!(exchange(&[("if-none-match", &mixed)], &[]).status, 304);
    }

    #[test]
    fn a_malformed_current_tag_matches_only_a_star() {
        let out = exchange(&[("if-none-match", "\"v1\"")], &[("etag", "v1")]);
        assert_eq!(out.status, 200);
        let out = exchange(&[("if-none-match", "*")], &[("etag", "v1")]);
        assert_eq!(out.status, 304);
    }

    #[test]
    fn if_modified_since_is_compared_with_last_modified() {
        let modified = ("last-modified", "Tue, 01 Jul 2025 12:00:00 GMT");
        let status = |since: &str| exchange(&[("if-modified-since", since)], &[modified]).status;
        assert_eq!(status("Tue, 01 Jul 2025 12:00:00 GMT"), 304);
        assert_eq!(status("Wed, 02 Jul 2025 00:00:00 GMT"), 304);
        assert_eq!(status("Tue, 01 Jul 2025 11:59:59 GMT"), 200);
        // The two obsolete forms recipients must accept.
        assert_eq!(status("Tuesday, 01-Jul-25 12:00:00 GMT"), 304);
        assert_eq!(status("Tue Jul  1 12:00:00 2025"), 304);
        for malformed in [
            "yesterday",
            "Tue, 32 Jul 2025 12:00:00 GMT",
            "1751371200",
            "",
        ] {
            assert_eq!(status(malformed), 200, "{malformed:?} is ignored");
        }
        let no_last_modified = exchange(
            &[("if-modified-since", "Tue, 01 Jul 2099 12:00:00 GMT")],
            &[],
        );
        assert_eq!(no_last_modified.status, 200);
        let bad_last_modified = exchange(
            &[("if-modified-since", "Tue, 01 Jul 2099 12:00:00 GMT")],
            &[("last-modified", "soon")],
        );
        assert_eq!(bad_last_modified.status, 200);
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        let out = exchange(
            &[
                ("if-none-match", "\"other\""),
                ("if-modified-since", "Tue, 01 Jul 2099 12:00:00 GMT"),
            ],
            &[("last-modified", "Tue, 01 Jul 2025 12:00:00 GMT")],
        );
        assert_eq!(out.status, 200);
    }

    #[test]
    fn a_304_without_an_etag_keeps_last_modified() {
        let layer = ETag::new(false);
        let mut head = head(
            "/",
            &[("if-modified-since", "Tue, 01 Jul 2025 12:00:00 GMT")],
        );
        let mut context = Context::default();
        layer.request(&mut head, &mut context);
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LAST_MODIFIED,
            HeaderValue::from_static("Tue, 01 Jul 2025 12:00:00 GMT"),
        );
        let mut out = Outgoing::new(200, headers, None, false);
        layer.response(&mut context, &mut out);
        assert_eq!(out.status, 304);
        assert!(
            !out.headers.contains_key(header::ETAG),
            "a stream is not hashed"
        );
        assert!(out.headers.contains_key(header::LAST_MODIFIED));
    }

    #[test]
    fn head_has_no_body_to_hash_but_uses_a_tag_it_has() {
        let layer = ETag::new(false);
        let out = exchange_with(&layer, http::Method::HEAD, &[], &[], 200);
        assert!(!out.headers.contains_key(header::ETAG));
        let cond = [("if-none-match", "\"v1\"")];
        let out = exchange_with(
            &layer,
            http::Method::HEAD,
            &cond,
            &[("etag", "\"v1\"")],
            200,
        );
        assert_eq!(out.status, 304);
    }
}
