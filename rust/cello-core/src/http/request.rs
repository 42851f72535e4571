//! The transport-neutral head of a request, as every door hands it to the
//! pipeline, and the checks every door applies to it before routing.

use std::net::SocketAddr;

use crate::http::problem::Problem;

/// What the pipeline knows about a request before its body: built by the
/// native server from hyper's parts and by the ASGI door from a scope.
pub struct RequestHead {
    pub method: http::Method,
    pub version: http::Version,
    /// Percent-decoded path, without the query.
    pub path: String,
    /// The path as received, still percent-encoded; `None` when it is
    /// `path` (nothing in it was escaped). Read it with `raw_path()`.
    pub raw_path: Option<String>,
    /// The query string as received, without `?`.
    pub query: String,
    pub headers: http::HeaderMap,
    /// Path parameters, filled in by routing.
    pub params: Vec<(String, String)>,
    /// What middleware attached for the handler (`request.context`).
    pub context: Vec<(&'static str, ContextValue)>,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub scheme: &'static str,
    /// The TLS session of a request that came in over TLS (door 1).
    pub tls: Option<std::sync::Arc<crate::server::tls::PeerTls>>,
}

/// A value a layer attaches to `request.context`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContextValue {
    Text(String),
    /// The source of a JSON document.
    Json(String),
}

impl ContextValue {
    pub fn as_str(&self) -> &str {
        match self {
            ContextValue::Text(text) | ContextValue::Json(text) => text,
        }
    }
}

impl RequestHead {
    /// The path as received, still percent-encoded.
    pub fn raw_path(&self) -> &str {
        self.raw_path.as_deref().unwrap_or(&self.path)
    }
}

/// Refuses a request head that no door may hand to a handler, the same way
/// through every door: the `Host` rules of RFC 9112 §3.2 and the transfer
/// codings Cello can decode (RFC 9112 §6.1). The problem has no `instance`;
/// the caller adds the path.
///
/// hyper already refuses, with its own 400, a `Transfer-Encoding` whose last
/// coding is not `chunked` and any `Transfer-Encoding` on an HTTP/1.0
/// request; it accepts `gzip, chunked`, removes only the chunked framing and
/// would hand the still-compressed bytes on, which is what this stops.
pub fn check_head(version: http::Version, headers: &http::HeaderMap) -> Result<(), Problem> {
    // One pass over the few headers a request carries costs less than the
    // two hashed lookups `get_all` would make, on every request.
    let (mut host, mut hosts, mut transfer_coded) = (None, 0, false);
    for (name, value) in headers {
        if name == http::header::HOST {
            host = Some(value);
            hosts += 1;
        } else if name == http::header::TRANSFER_ENCODING {
            transfer_coded = true;
        }
    }
    match (host, hosts) {
        // HTTP/2 and HTTP/3 carry the authority in a pseudo-header; HTTP/1.0 may omit it.
        (None, _) if version == http::Version::HTTP_11 => {
            return Err(bad_request(
                "an HTTP/1.1 request must have a Host header".into(),
            ))
        }
        (Some(_), 2..) => {
            return Err(bad_request(
                "the request has more than one Host header".into(),
            ))
        }
        (Some(host), _) if !is_valid_host(host.as_bytes()) => {
            return Err(bad_request(format!(
                "the Host header {:?} is not a valid host[:port]",
                String::from_utf8_lossy(host.as_bytes())
            )))
        }
        _ => {}
    }
    if transfer_coded {
        check_transfer_codings(headers)?;
    }
    Ok(())
}

/// Every coding must be `chunked`, applied once: anything else (`gzip`,
/// `deflate`...) would reach the handler still encoded. 501, as RFC 9112
/// §6.1 asks for a coding the server does not understand.
fn check_transfer_codings(headers: &http::HeaderMap) -> Result<(), Problem> {
    let mut chunked = 0;
    for value in headers.get_all(http::header::TRANSFER_ENCODING) {
        for coding in value.as_bytes().split(|&b| b == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() {
                continue;
            }
            if !coding.eq_ignore_ascii_case(b"chunked") {
                let detail = format!(
                    "transfer coding {:?} is not supported; only chunked is",
                    String::from_utf8_lossy(coding)
                );
                return Err(Problem::new(501).with_detail(detail));
            }
            chunked += 1;
        }
    }
    if chunked > 1 {
        return Err(bad_request(
            "the chunked transfer coding is applied more than once".into(),
        ));
    }
    Ok(())
}

fn bad_request(detail: String) -> Problem {
    Problem::new(400).with_detail(detail)
}

/// `Host = uri-host [ ":" port ]` (RFC 9112 §3.2, RFC 3986 §3.2.2). An empty
/// value is valid: it is what a client sends for a target without authority.
fn is_valid_host(host: &[u8]) -> bool {
    if host.first() == Some(&b'[') {
        let (name, port) = split_port(host);
        return port.iter().all(u8::is_ascii_digit)
            && name
                .strip_prefix(b"[")
                .and_then(|n| n.strip_suffix(b"]"))
                .is_some_and(is_ip_literal);
    }
    // A reg-name (or IPv4 address) cannot hold a ':', so the first one
    // starts the port: one pass over the value, on every request.
    let mut i = 0;
    while i < host.len() {
        match host[i] {
            b':' => return host[i + 1..].iter().all(u8::is_ascii_digit),
            b'%' => {
                let escaped = host.get(i + 1..i + 3);
                if !escaped.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                    return false;
                }
                i += 3;
            }
            b if is_unreserved_or_sub_delim(b) => i += 1,
            _ => return false,
        }
    }
    true
}

fn split_port(host: &[u8]) -> (&[u8], &[u8]) {
    if host.ends_with(b"]") {
        return (host, &[]);
    }
    match host.iter().rposition(|&b| b == b':') {
        Some(colon) => (&host[..colon], &host[colon + 1..]),
        None => (host, &[]),
    }
}

/// An IPv6 address or an `IPvFuture` between the brackets.
fn is_ip_literal(literal: &[u8]) -> bool {
    if let [b'v' | b'V', rest @ ..] = literal {
        let Some(dot) = rest.iter().position(|&b| b == b'.') else {
            return false;
        };
        let (version, tail) = (&rest[..dot], &rest[dot + 1..]);
        return !version.is_empty()
            && version.iter().all(u8::is_ascii_hexdigit)
            && !tail.is_empty()
            && tail
                .iter()
                .all(|&b| is_unreserved_or_sub_delim(b) || b == b':');
    }
    std::str::from_utf8(literal)
        .ok()
        .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
        .is_some()
}

fn is_unreserved_or_sub_delim(b: u8) -> bool {
    UNRESERVED_OR_SUB_DELIM[b as usize]
}

/// RFC 3986's `unreserved` and `sub-delims` bytes, as a table: a Host value
/// is checked byte by byte on every request.
const UNRESERVED_OR_SUB_DELIM: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let others = b"-._~!$&'()*+,;=";
    let mut i = 0;
    while i < others.len() {
        table[others[i] as usize] = true;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> http::HeaderMap {
        let mut map = http::HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn status(version: http::Version, pairs: &[(&str, &str)]) -> Option<u16> {
        check_head(version, &head(pairs)).err().map(|p| p.status)
    }

    const V11: http::Version = http::Version::HTTP_11;

    #[test]
    fn http_1_1_needs_exactly_one_host() {
        assert_eq!(status(V11, &[]), Some(400));
        assert_eq!(status(V11, &[("host", "a"), ("host", "a")]), Some(400));
        assert_eq!(status(V11, &[("host", "example.com")]), None);
    }

    #[test]
    fn other_versions_may_omit_host_but_not_repeat_it() {
        for version in [http::Version::HTTP_10, http::Version::HTTP_2] {
            assert_eq!(status(version, &[]), None);
            assert_eq!(status(version, &[("host", "a"), ("host", "b")]), Some(400));
            assert_eq!(status(version, &[("host", "a b")]), Some(400));
        }
    }

    #[test]
    fn valid_hosts() {
        for host in [
            "",
            "example.com",
            "example.com:8080",
            "localhost:",
            "127.0.0.1:80",
            "[::1]",
            "[::1]:8000",
            "[2001:db8::7]",
            "[v1.fe80::a+en1]",
            "xn--bcher-kva.example",
            "ex%41mple.com",
            "a_b~c!$&'()*+,;=",
        ] {
            assert!(is_valid_host(host.as_bytes()), "{host:?}");
        }
    }

    #[test]
    fn invalid_hosts() {
        for host in [
            "a b",
            "user@example.com",
            "example.com/path",
            "example.com:80a",
            "example.com:-1",
            "::1",
            "[::1",
            "::1]",
            "[::1]x",
            "[::1]:x",
            "[not-ip]",
            "[v.x]",
            "[v1.]",
            "ex%4gample.com",
            "ex%",
            "a\"b",
            "a<b>",
            "a?b",
            "a#b",
        ] {
            assert!(!is_valid_host(host.as_bytes()), "{host:?}");
        }
        let problem = check_head(V11, &head(&[("host", "a b")])).unwrap_err();
        assert_eq!(
            problem.detail.as_deref(),
            Some("the Host header \"a b\" is not a valid host[:port]")
        );
    }

    #[test]
    fn only_chunked_transfer_coding_is_accepted() {
        let ok = [("host", "x"), ("transfer-encoding", "chunked")];
        assert_eq!(status(V11, &ok), None);
        assert_eq!(
            status(V11, &[("host", "x"), ("transfer-encoding", " Chunked ")]),
            None
        );
        for codings in [
            &[("transfer-encoding", "gzip, chunked")][..],
            &[
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "chunked"),
            ],
            &[("transfer-encoding", "deflate")],
            &[("transfer-encoding", "identity, chunked")],
        ] {
            let mut pairs = vec![("host", "x")];
            pairs.extend_from_slice(codings);
            assert_eq!(status(V11, &pairs), Some(501), "{codings:?}");
        }
        let problem = check_head(
            V11,
            &head(&[("host", "x"), ("transfer-encoding", "gzip, chunked")]),
        )
        .unwrap_err();
        assert_eq!(
            problem.detail.as_deref(),
            Some("transfer coding \"gzip\" is not supported; only chunked is")
        );
    }

    #[test]
    fn chunked_twice_is_malformed() {
        let pairs = [("host", "x"), ("transfer-encoding", "chunked, chunked")];
        assert_eq!(status(V11, &pairs), Some(400));
    }
}
