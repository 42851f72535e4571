//! permessage-deflate (RFC 7692): the negotiation in the 101 handshake, and
//! the compressor and decompressor a connection uses once it is agreed.
//!
//! The server owns the extension: it reads the client's offers, answers
//! with the first one it can honour, and compresses and decompresses
//! below the app, which only ever sees whole, plain messages.
//!
//! What the server agrees to, and why:
//! - `server_no_context_takeover` and `client_no_context_takeover`: always,
//!   echoed back (the compressor, or the decompressor, is reset after each
//!   message).
//! - `server_max_window_bits=N`: echoed back, and the server compresses
//!   with that window. zlib cannot produce a raw deflate stream with a
//!   256-byte window (N = 8), so then the server sends its messages
//!   uncompressed, which the extension always allows.
//! - `client_max_window_bits` (with or without a value) is a hint: the
//!   server never answers it, so the client keeps its full 32 KiB window,
//!   which the decompressor (always 15 bits) reads whatever the client uses.
//!
//! An offer with an unknown or repeated parameter, or a value out of range,
//! is declined by skipping it; no acceptable offer means no extension.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The trailer a sync flush ends with, left off the wire (RFC 7692 §7.2.1).
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Messages shorter than this go out uncompressed: deflate would save a
/// few bytes at most and cost a compressor call each.
pub(crate) const COMPRESS_MIN: usize = 64;
/// zlib level 1: most of the size saving on repetitive text for a fraction
/// of the CPU of the default level 6.
const LEVEL: u32 = 1;
/// How much output space the decompressor grows by, at least.
const INFLATE_CHUNK: usize = 16 * 1024;

/// The parameters agreed for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Deflate {
    pub(crate) server_no_context_takeover: bool,
    pub(crate) client_no_context_takeover: bool,
    /// The window the server's messages may use; None: 15 bits.
    pub(crate) server_max_window_bits: Option<u8>,
}

impl Deflate {
    /// The `Sec-WebSocket-Extensions` value of the 101.
    pub(crate) fn response_header(&self) -> String {
        let mut value = String::from("permessage-deflate");
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if let Some(bits) = self.server_max_window_bits {
            value.push_str(&format!("; server_max_window_bits={bits}"));
        }
        value
    }
}

/// The first acceptable permessage-deflate offer among the request's
/// `Sec-WebSocket-Extensions` headers, as the parameters the server agrees
/// to; None when the client offers none the server can accept.
pub(crate) fn negotiate(headers: &http::HeaderMap) -> Option<Deflate> {
    headers
        .get_all(http::header::SEC_WEBSOCKET_EXTENSIONS)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(accept_offer)
}

/// One offer (`name; param; param=value`), accepted or declined (None).
fn accept_offer(offer: &str) -> Option<Deflate> {
    let mut parts = offer.split(';');
    let name = parts.next()?.trim_matches([' ', '\t']);
    if !name.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut agreed = Deflate::default();
    let mut seen = [false; 4];
    for param in parts {
        let (key, value) = match param.split_once('=') {
            Some((k, v)) => (k.trim_matches([' ', '\t']), Some(unquote(v)?)),
            None => (param.trim_matches([' ', '\t']), None),
        };
        let index = match key.to_ascii_lowercase().as_str() {
            "server_no_context_takeover" if value.is_none() => {
                agreed.server_no_context_takeover = true;
                0
            }
            "client_no_context_takeover" if value.is_none() => {
                agreed.client_no_context_takeover = true;
                1
            }
            "server_max_window_bits" => {
                agreed.server_max_window_bits = Some(window_bits(value?)?);
                2
            }
            "client_max_window_bits" => {
                if let Some(v) = value {
                    window_bits(v)?;
                }
                3
            }
            _ => return None,
        };
        if std::mem::replace(&mut seen[index], true) {
            return None; // a parameter given twice
        }
    }
    Some(agreed)
}

/// A parameter value, bare or quoted (RFC 7692 §5.1 allows both).
fn unquote(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"'),
        None => Some(value),
    }
}

/// A window size: 8 to 15, in decimal without a leading zero.
fn window_bits(value: &str) -> Option<u8> {
    if value.len() != 1 && value.len() != 2 || value.starts_with('0') {
        return None;
    }
    let bits: u8 = value.parse().ok()?;
    (8..=15).contains(&bits).then_some(bits)
}

/// Why an incoming compressed message cannot be delivered.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum InflateError {
    /// The message would be larger than the limit.
    TooBig,
    /// Not a valid deflate stream.
    Corrupt,
}

/// The connection's decompressor, created with the first compressed
/// message (so that a client that never compresses costs nothing).
pub(crate) struct Inflater {
    state: Option<Decompress>,
    reset_each_message: bool,
}

impl Inflater {
    pub(crate) fn new(params: &Deflate) -> Self {
        Inflater {
            state: None,
            reset_each_message: params.client_no_context_takeover,
        }
    }

    /// Decompresses `input` (part of a message) onto `out`, which may not
    /// grow past `limit` bytes: the output is bounded whatever the input
    /// expands to.
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), InflateError> {
        let state = self
            .state
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, 15));
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() > limit {
                    return Err(InflateError::TooBig);
                }
                // Doubling, but never more than one byte past the limit.
                let room = out.len().max(INFLATE_CHUNK).min(limit + 1 - out.len());
                out.reserve_exact(room);
            }
            let (before_in, before_out) = (state.total_in(), state.total_out());
            let status = state
                .decompress_vec(&input[pos..], out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            let consumed = (state.total_in() - before_in) as usize;
            let produced = (state.total_out() - before_out) as usize;
            pos += consumed;
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            if status == Status::StreamEnd {
                // A final block (allowed, though clients rarely send one):
                // whatever follows starts a new stream.
                state.reset(false);
                if pos == input.len() {
                    return Ok(());
                }
                continue;
            }
            let room_left = out.len() < out.capacity();
            if pos == input.len() && room_left {
                return Ok(());
            }
            if consumed == 0 && produced == 0 && room_left {
                return Err(InflateError::Corrupt);
            }
        }
    }

    /// Ends a message: the tail the client left off, then the reset if
    /// the client does not keep its context.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, limit: usize) -> Result<(), InflateError> {
        let ended = self.inflate(&TAIL, out, limit);
        if self.reset_each_message {
            if let Some(state) = self.state.as_mut() {
                state.reset(false);
            }
        }
        ended
    }
}

/// The connection's compressor, created with the first message worth
/// compressing.
pub(crate) struct Deflater {
    state: Option<Compress>,
    /// None: the agreed window is one zlib cannot produce (8 bits), so
    /// nothing is compressed.
    window_bits: Option<u8>,
    reset_each_message: bool,
}

impl Deflater {
    pub(crate) fn new(params: &Deflate) -> Self {
        let bits = params.server_max_window_bits.unwrap_or(15);
        Deflater {
            state: None,
            window_bits: (bits >= 9).then_some(bits),
            reset_each_message: params.server_no_context_takeover,
        }
    }

    /// Appends `payload` compressed (without the sync-flush tail) to
    /// `out` and says true; or appends nothing and says false when the
    /// message is better sent as it is (too short, or it does not shrink).
    pub(crate) fn deflate(&mut self, payload: &[u8], out: &mut Vec<u8>) -> bool {
        let Some(bits) = self.window_bits else {
            return false;
        };
        if payload.len() < COMPRESS_MIN {
            return false;
        }
        let state = self.state.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(LEVEL), false, bits)
        });
        let start = out.len();
        out.reserve(payload.len() + payload.len() / 64 + 16);
        let mut pos = 0;
        let ok = loop {
            let before = state.total_in();
            let flush = state.compress_vec(&payload[pos..], out, FlushCompress::Sync);
            if flush.is_err() {
                break false;
            }
            pos += (state.total_in() - before) as usize;
            if pos == payload.len() && out.len() < out.capacity() {
                break out[start..].ends_with(&TAIL);
            }
            // Compressing past the budget: the message does not shrink.
            if out.len() - start > payload.len() {
                break false;
            }
            out.reserve(1024);
        };
        if ok && out.len() - start - TAIL.len() < payload.len() {
            out.truncate(out.len() - TAIL.len());
            if self.reset_each_message {
                state.reset();
            }
            return true;
        }
        // Sent plain: the client's decompressor never sees this message,
        // so the compressor may not refer back to it.
        out.truncate(start);
        state.reset();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offer(values: &[&str]) -> Option<Deflate> {
        let mut headers = http::HeaderMap::new();
        for v in values {
            headers.append(
                http::header::SEC_WEBSOCKET_EXTENSIONS,
                http::HeaderValue::from_str(v).unwrap(),
            );
        }
        negotiate(&headers)
    }

    #[test]
    fn a_plain_offer_is_accepted_as_is() {
        let agreed = offer(&["permessage-deflate"]).unwrap();
        assert_eq!(agreed, Deflate::default());
        assert_eq!(agreed.response_header(), "permessage-deflate");
    }

    #[test]
    fn no_offer_or_another_extension_gives_none() {
        assert_eq!(offer(&[]), None);
        assert_eq!(offer(&["x-webkit-deflate-frame"]), None);
    }

    #[test]
    fn context_takeover_and_window_parameters_are_echoed() {
        let agreed = offer(&[
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10; client_max_window_bits",
        ])
        .unwrap();
        assert_eq!(
            agreed.response_header(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=10"
        );
        let quoted = offer(&["permessage-deflate; server_max_window_bits=\"12\""]).unwrap();
        assert_eq!(quoted.server_max_window_bits, Some(12));
        let hint = offer(&["permessage-deflate; client_max_window_bits=9"]).unwrap();
        assert_eq!(hint.response_header(), "permessage-deflate");
    }

    #[test]
    fn invalid_offers_are_skipped_for_the_next() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; mystery",
        ] {
            assert_eq!(offer(&[bad]), None, "{bad}");
            let then = format!("{bad}, permessage-deflate; client_no_context_takeover");
            let agreed = offer(&[&then]).unwrap();
            assert!(agreed.client_no_context_takeover, "{bad}");
        }
        let two_lines = offer(&["permessage-deflate; bogus", "permessage-deflate"]);
        assert_eq!(two_lines, Some(Deflate::default()));
    }

    fn round_trip(params: Deflate, messages: &[Vec<u8>]) -> Vec<bool> {
        let mut deflater = Deflater::new(&params);
        let mut inflater = Inflater::new(&params);
        let mut compressed_flags = Vec::new();
        for message in messages {
            let mut wire = Vec::new();
            let compressed = deflater.deflate(message, &mut wire);
            compressed_flags.push(compressed);
            if !compressed {
                continue;
            }
            assert!(wire.len() < message.len());
            let mut out = Vec::new();
            inflater.inflate(&wire, &mut out, 1 << 20).unwrap();
            inflater.finish(&mut out, 1 << 20).unwrap();
            assert_eq!(&out, message);
        }
        compressed_flags
    }

    #[test]
    fn messages_round_trip_with_and_without_context_takeover() {
        let text = b"hello hello hello hello hello hello hello hello hello!".repeat(20);
        let messages = vec![text.clone(), text.clone(), b"short".to_vec(), text];
        for params in [
            Deflate::default(),
            Deflate {
                server_no_context_takeover: true,
                client_no_context_takeover: true,
                server_max_window_bits: Some(9),
            },
        ] {
            assert_eq!(round_trip(params, &messages), [true, true, false, true]);
        }
    }

    #[test]
    fn an_eight_bit_window_sends_plain_messages() {
        let params = Deflate {
            server_max_window_bits: Some(8),
            ..Deflate::default()
        };
        assert_eq!(round_trip(params, &[vec![b'a'; 1000]]), [false]);
    }

    #[test]
    fn incompressible_data_goes_out_plain_and_the_next_message_still_decodes() {
        // A xorshift stream: no repetition for deflate to use.
        let mut x: u32 = 2463534242;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let text = b"abcabcabc".repeat(100);
        let flags = round_trip(Deflate::default(), &[text.clone(), noise, text]);
        assert_eq!(flags, [true, false, true]);
    }

    #[test]
    fn a_deflate_bomb_stops_at_the_limit() {
        let mut deflater = Deflater::new(&Deflate::default());
        let mut wire = Vec::new();
        assert!(deflater.deflate(&vec![0u8; 10 << 20], &mut wire));
        assert!(wire.len() < (10 << 20) / 100);
        let mut inflater = Inflater::new(&Deflate::default());
        let mut out = Vec::new();
        let result = inflater.inflate(&wire, &mut out, 1 << 20);
        assert_eq!(result, Err(InflateError::TooBig));
        assert!(out.capacity() <= (1 << 20) + 1);
    }

    #[test]
    fn garbage_is_corrupt() {
        let mut inflater = Inflater::new(&Deflate::default());
        let mut out = Vec::new();
        let result = inflater
            .inflate(&[0xff; 64], &mut out, 1 << 20)
            .and_then(|_| inflater.finish(&mut out, 1 << 20));
        assert_eq!(result, Err(InflateError::Corrupt));
    }
}
