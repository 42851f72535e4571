//! Request IDs: every request gets an `X-Request-ID`, kept from the client
//! when it sent a usable one, else a new UUID v4; handlers read it as
//! `request.context["request_id"]` and the response carries it back.

use bytes::Bytes;

use super::{Answer, Context, Layer, Outgoing, Stage};
use crate::http::request::RequestHead;

/// The context key handlers read the ID under.
pub const CONTEXT_KEY: &str = "request_id";

/// An incoming ID longer than this is replaced: it ends up in logs and
/// response headers, where a client should not be able to put a novel.
const MAX_INCOMING: usize = 128;

/// The ID as the header value the response carries.
struct IdHeader(http::HeaderValue);

pub struct RequestId {
    header: http::HeaderName,
}

impl RequestId {
    /// `header` is the request and response header that carries the ID.
    pub fn new(header: &str) -> Result<Self, http::header::InvalidHeaderName> {
        Ok(RequestId {
            header: http::HeaderName::from_bytes(header.as_bytes())?,
        })
    }

    /// An incoming value worth keeping: short, and visible ASCII only, so it
    /// cannot smuggle anything into a log line or a header.
    fn usable(value: &http::HeaderValue) -> Option<&str> {
        let bytes = value.as_bytes();
        let fits = !bytes.is_empty()
            && bytes.len() <= MAX_INCOMING
            && bytes.iter().all(|b| b.is_ascii_graphic());
        fits.then(|| value.to_str().ok()).flatten()
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId {
            header: http::HeaderName::from_static("x-request-id"),
        }
    }
}

impl Layer for RequestId {
    fn name(&self) -> &'static str {
        "RequestId"
    }

    fn stage(&self) -> Stage {
        Stage::RequestId
    }

    fn headers_added(&self) -> usize {
        1
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        let mut incoming = head.headers.get_all(&self.header).iter();
        let kept = match (incoming.next(), incoming.next()) {
            (Some(only), None) => Self::usable(only).map(|id| (id.to_owned(), only.clone())),
            _ => None,
        };
        let (id, value) = match kept {
            Some(kept) => kept,
            None => {
                let mut buffer = uuid::Uuid::encode_buffer();
                let id: &str = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
                // A UUID is visible ASCII: the check cannot fail.
                let value =
                    http::HeaderValue::from_maybe_shared(Bytes::copy_from_slice(id.as_bytes()))
                        .expect("a UUID is a valid header value");
                // Apps behind this one (a mounted ASGI app) read it from the
                // request's headers, as they would behind a proxy that sets it.
                head.headers.insert(self.header.clone(), value.clone());
                (id.to_owned(), value)
            }
        };
        context.insert(CONTEXT_KEY, id);
        // The response's header shares the request's bytes.
        context.note(IdHeader(value));
        None
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        if let Some(IdHeader(value)) = context.take_note::<IdHeader>() {
            response.headers.insert(self.header.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::tests::head;

    fn id_for(headers: &[(&str, &str)]) -> (String, http::HeaderMap) {
        let layer = RequestId::default();
        let mut head = head("/", headers);
        let mut context = Context::default();
        assert!(layer.request(&mut head, &mut context).is_none());
        let mut out = Outgoing::new(200, http::HeaderMap::new(), None, false);
        layer.response(&mut context, &mut out);
        (context.get(CONTEXT_KEY).unwrap().to_owned(), out.headers)
    }

    #[test]
    fn a_new_id_is_a_uuid_v4_and_goes_back_in_the_response() {
        let (id, headers) = id_for(&[]);
        let parsed = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(parsed.get_version_num(), 4);
        assert_eq!(headers["x-request-id"], id.as_str());
        assert_ne!(id_for(&[]).0, id, "each request gets its own");
    }

    #[test]
    fn a_usable_incoming_id_is_kept() {
        let (id, headers) = id_for(&[("x-request-id", "trace-42")]);
        assert_eq!(id, "trace-42");
        assert_eq!(headers["x-request-id"], "trace-42");
    }

    #[test]
    fn an_unusable_or_repeated_incoming_id_is_replaced() {
        let long = "a".repeat(MAX_INCOMING + 1);
        let cases: [&[(&str, &str)]; 4] = [
            &[("x-request-id", "")],
            &[("x-request-id", "has space")],
            &[("x-request-id", &long)],
            &[("x-request-id", "one"), ("x-request-id", "two")],
        ];
        for headers in cases {
            let (id, _) = id_for(headers);
            assert!(uuid::Uuid::parse_str(&id).is_ok(), "{headers:?} gave {id}");
        }
    }
}
