//! Security headers: a fixed set of response headers (`X-Frame-Options`,
//! `Content-Security-Policy`, HSTS...) added to every response that does
//! not already carry them, so a handler can still set its own.
//!
//! The names and values are parsed once, when the layer is built; a
//! response costs one map lookup per header.

use http::header::{self, Entry, HeaderName, HeaderValue};

use super::{Context, Layer, Outgoing, Stage};

/// A header the layer cannot send, naming it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidSecurityHeader {
    pub name: String,
    pub reason: &'static str,
}

impl std::fmt::Display for InvalidSecurityHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "security header {:?}: {}", self.name, self.reason)
    }
}

impl std::error::Error for InvalidSecurityHeader {}

/// Values most apps send. A static value is copied onto each response
/// without touching a shared reference count, which a value built at run
/// time needs (an atomic operation per header per response).
const COMMON_VALUES: [&str; 9] = [
    "DENY",
    "SAMEORIGIN",
    "nosniff",
    "1; mode=block",
    "0",
    "strict-origin-when-cross-origin",
    "no-referrer",
    "max-age=31536000",
    "max-age=31536000; includeSubDomains",
];

pub struct SecurityHeaders {
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl SecurityHeaders {
    /// The headers to add, in the order given; a name given twice keeps
    /// its last value.
    pub fn new<N, V>(
        headers: impl IntoIterator<Item = (N, V)>,
    ) -> Result<Self, InvalidSecurityHeader>
    where
        N: AsRef<str>,
        V: AsRef<str>,
    {
        let mut parsed: Vec<(HeaderName, HeaderValue)> = Vec::new();
        for (name, value) in headers {
            let (name, value) = (name.as_ref(), value.as_ref());
            let invalid = |reason| InvalidSecurityHeader {
                name: name.to_owned(),
                reason,
            };
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| invalid("not a header name"))?;
            // Values are visible text: no line breaks a response could be
            // split with, no control characters.
            if value.is_empty() || value.bytes().any(|b| b.is_ascii_control()) {
                return Err(invalid(
                    "its value must be non-empty text without control characters",
                ));
            }
            let header_value = match COMMON_VALUES.iter().find(|common| **common == value) {
                Some(common) => HeaderValue::from_static(common),
                None => HeaderValue::from_str(value).map_err(|_| invalid("not a header value"))?,
            };
            parsed.retain(|(n, _)| *n != header_name);
            parsed.push((header_name, header_value));
        }
        Ok(SecurityHeaders { headers: parsed })
    }

    /// The headers a default configuration sends.
    pub fn defaults() -> Self {
        let pair = |name: HeaderName, value| (name, HeaderValue::from_static(value));
        SecurityHeaders {
            headers: vec![
                pair(header::X_FRAME_OPTIONS, "DENY"),
                pair(header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
                pair(header::X_XSS_PROTECTION, "1; mode=block"),
                pair(header::REFERRER_POLICY, "strict-origin-when-cross-origin"),
            ],
        }
    }
}

impl Layer for SecurityHeaders {
    fn name(&self) -> &'static str {
        "SecurityHeaders"
    }

    fn stage(&self) -> Stage {
        Stage::SecurityHeaders
    }

    fn headers_added(&self) -> usize {
        self.headers.len()
    }

    fn response(&self, _context: &mut Context, response: &mut Outgoing) {
        for (name, value) in &self.headers {
            if let Entry::Vacant(slot) = response.headers.entry(name) {
                slot.insert(value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::tests::head;
    use crate::middleware::Chain;

    fn through(layer: SecurityHeaders, start: http::HeaderMap) -> http::HeaderMap {
        let mut context = Context::default();
        let mut out = Outgoing::new(404, start, None, false);
        layer.response(&mut context, &mut out);
        out.headers
    }

    #[test]
    fn the_defaults_are_the_four_classic_headers() {
        let headers = through(SecurityHeaders::defaults(), http::HeaderMap::new());
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert_eq!(headers["x-xss-protection"], "1; mode=block");
        assert_eq!(
            headers["referrer-policy"],
            "strict-origin-when-cross-origin"
        );
        assert_eq!(headers.len(), 4);
        assert!(!headers.contains_key("strict-transport-security"));
    }

    #[test]
    fn a_header_the_response_already_has_is_kept() {
        let mut start = http::HeaderMap::new();
        start.insert("x-frame-options", HeaderValue::from_static("SAMEORIGIN"));
        let headers = through(SecurityHeaders::defaults(), start);
        let values: Vec<_> = headers.get_all("x-frame-options").iter().collect();
        assert_eq!(values, ["SAMEORIGIN"]);
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }

    #[test]
    fn configured_headers_are_sent_and_a_repeated_name_keeps_its_last_value() {
        let layer = SecurityHeaders::new([
            (
                "Strict-Transport-Security",
                "max-age=31536000; includeSubDomains",
            ),
            ("Content-Security-Policy", "default-src 'self'"),
            ("Permissions-Policy", "camera=()"),
            ("content-security-policy", "default-src 'none'"),
        ])
        .unwrap();
        let headers = through(layer, http::HeaderMap::new());
        assert_eq!(
            headers["strict-transport-security"],
            "max-age=31536000; includeSubDomains"
        );
        assert_eq!(headers["content-security-policy"], "default-src 'none'");
        assert_eq!(headers["permissions-policy"], "camera=()");
        assert_eq!(headers.len(), 3);
    }

    #[test]
    fn names_and_values_that_cannot_be_sent_are_refused_by_name() {
        for (name, value) in [
            ("Bad Name", "x"),
            ("X-Ok", ""),
            ("X-Ok", "a\r\nSet-Cookie: x=1"),
            ("X-Ok", "tab\there"),
        ] {
            let error = SecurityHeaders::new([(name, value)]).err().expect(value);
            assert_eq!(error.name, name);
        }
    }

    #[test]
    fn every_response_of_a_covered_path_gets_them_through_a_chain() {
        let mut chain = Chain::default();
        chain
            .push("/app", Box::new(SecurityHeaders::defaults()))
            .unwrap();
        for (path, expected) in [("/app/missing", true), ("/other", false)] {
            let mut head = head(path, &[]);
            let mut context = Context::default();
            assert!(chain.request(&mut head, &mut context).is_none());
            let mut out = Outgoing::new(404, http::HeaderMap::new(), None, false);
            chain.response(&mut context, &mut out);
            assert_eq!(
                out.headers.contains_key("x-frame-options"),
                expected,
                "{path}"
            );
        }
    }
}
