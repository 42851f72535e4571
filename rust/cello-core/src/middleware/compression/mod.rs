//! Response compression: gzip, brotli or zstd, as the request's
//! `Accept-Encoding` allows, for bodies whose type compresses well.
//!
//! The coding is chosen on the way in ([`negotiation`]) and applied on the
//! way out: a body held in memory is compressed whole and replaced (and kept
//! as it was when compressing does not make it smaller); a streamed one gets
//! an encoder that compresses and flushes each chunk as it passes, so
//! server-sent events are never held back.

mod encoders;
mod media;
mod negotiation;

pub use encoders::{Compressor, Levels, StreamEncoder};
pub use negotiation::{negotiate, Coding, SERVER_ORDER};

use http::header::{
    ACCEPT_ENCODING, ACCEPT_RANGES, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE,
    CONTENT_TYPE, ETAG, VARY,
};
use http::{HeaderMap, HeaderValue};

use super::{Answer, Context, Layer, OutBody, Outgoing, Stage};
use crate::http::request::RequestHead;

/// Bodies smaller than this are sent as they are by default: below about a
/// kilobyte the coding's framing and the CPU cost outweigh the bytes saved.
pub const DEFAULT_MIN_SIZE: usize = 1024;

/// The compression layer.
#[derive(Debug, Clone)]
pub struct Compression {
    min_size: usize,
    levels: Levels,
    /// The codings offered, in the order preferred on ties.
    offers: Vec<Coding>,
}

impl Default for Compression {
    fn default() -> Self {
        Compression {
            min_size: DEFAULT_MIN_SIZE,
            levels: Levels::default(),
            offers: SERVER_ORDER.to_vec(),
        }
    }
}

/// The coding negotiated for one request (None: send the body as it is).
struct Negotiated(Option<Coding>);

impl Compression {
    /// A layer with these settings; `offers` must not be empty.
    pub fn new(min_size: usize, levels: Levels, offers: Vec<Coding>) -> Self {
        debug_assert!(!offers.is_empty());
        Compression {
            min_size,
            levels,
            offers,
        }
    }

    /// Whether the response may be compressed at all, whoever asks: when it
    /// may, the choice depends on `Accept-Encoding`, and caches must be told.
    fn eligible(&self, response: &Outgoing) -> bool {
        let headers = &response.headers;
        let size_ok = match &response.body {
            OutBody::Withheld => return false,
            OutBody::Full(bytes) => bytes.len() >= self.min_size,
            // A stream's declared length, else its type decides alone.
            OutBody::Streamed => declared_length(headers).is_none_or(|n| n >= self.min_size),
        };
        size_ok
            && response.status != 206
            && !headers.contains_key(CONTENT_RANGE)
            && !headers.contains_key(CONTENT_ENCODING)
            && !has_token(headers, &CACHE_CONTROL, "no-transform")
            && headers
                .get(CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .is_some_and(media::compressible)
    }
}

impl Layer for Compression {
    fn name(&self) -> &'static str {
        "Compression"
    }

    fn stage(&self) -> Stage {
        Stage::Compression
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        let chosen = negotiate(head.headers.get_all(ACCEPT_ENCODING), &self.offers);
        context.note(Negotiated(chosen));
        None
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let Some(Negotiated(chosen)) = context.take_note::<Negotiated>() else {
            return;
        };
        if !self.eligible(response) {
            return;
        }
        add_vary(&mut response.headers);
        let Some(coding) = chosen else {
            return;
        };
        match &response.body {
            OutBody::Full(bytes) => match Compressor::whole(coding, self.levels, bytes) {
                // Not smaller (already dense data mislabelled as text): the
                // original costs the client nothing to decode.
                Ok(packed) if packed.len() < bytes.len() => response.body = OutBody::Full(packed),
                _ => return,
            },
            OutBody::Streamed => {
                response.encode_with(Box::new(StreamEncoder::new(coding, self.levels)));
            }
            OutBody::Withheld => return,
        }
        let headers = &mut response.headers;
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(coding.token()));
        // Byte ranges would count the compressed bytes, which no request for
        // a range ever gets (ranged responses are not compressed).
        headers.remove(ACCEPT_RANGES);
        weaken_etag(headers);
    }
}

/// A body's `Content-Length`, when it declares a valid one.
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    headers
        .get(CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether a comma-separated header lists `token` (case-insensitively)
/// in any of its lines, ignoring any `=value` it carries.
fn has_token(headers: &HeaderMap, name: &http::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let name = item.split('=').next().unwrap_or_default();
            name.trim().eq_ignore_ascii_case(token)
        })
}

/// Adds `Accept-Encoding` to `Vary`, keeping what is there: a `Vary: *`
/// already covers it, and a listed one is not repeated.
fn add_vary(headers: &mut HeaderMap) {
    if has_token(headers, &VARY, "accept-encoding") || has_token(headers, &VARY, "*") {
        return;
    }
    headers.append(VARY, HeaderValue::from_static("Accept-Encoding"));
}

/// A strong validator promises identical bytes, which the compressed body
/// no longer is: it becomes weak (`W/"..."`), still naming the same content.
fn weaken_etag(headers: &mut HeaderMap) {
    let Some(etag) = headers.get(ETAG) else {
        return;
    };
    if etag.as_bytes().starts_with(b"\"") {
        let mut weak = Vec::with_capacity(etag.len() + 2);
        weak.extend_from_slice(b"W/");
        weak.extend_from_slice(etag.as_bytes());
        if let Ok(value) = HeaderValue::from_bytes(&weak) {
            headers.insert(ETAG, value);
        }
    }
}

#[cfg(test)]
mod tests;
