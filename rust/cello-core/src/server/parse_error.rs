//! Problem bodies for the requests hyper refuses before any service sees
//! them (a malformed request line or header, a head over the limits).
//!
//! hyper answers those itself, with a bare status line and no hook to shape
//! the answer: `connection: close`, `content-length: 0`, `date`, nothing else.
//! The connection's socket wrapper holds back a write that is exactly such an
//! answer; once the connection has ended, the server knows whether hyper
//! failed to parse a request (then the held bytes were its answer, and a
//! problem response goes out instead) or not (then they were a handler's
//! response of that same shape, and go out unchanged).

use crate::http::problem::{self, Problem};

/// The limits a refused head may have broken, for the 431 detail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeadLimits {
    pub(crate) max_headers: usize,
    pub(crate) max_header_size: usize,
}

/// Longer than any answer of hyper's own (about 110 bytes).
const MAX_AUTOMATIC_LEN: usize = 192;

/// True when `data` is, byte for byte, the shape of hyper's own answer to
/// an unparsable request: a 4xx status line and exactly the headers
/// `connection: close`, `content-length: 0` and `date`.
pub(crate) fn is_automatic_answer(data: &[u8]) -> bool {
    // The first tests reject every ordinary response in a few byte compares.
    if data.len() > MAX_AUTOMATIC_LEN
        || !data.starts_with(b"HTTP/1.1 4")
        || !data.ends_with(b"\r\n\r\n")
    {
        return false;
    }
    let Ok(text) = std::str::from_utf8(&data[..data.len() - 4]) else {
        return false;
    };
    let mut lines = text.split("\r\n");
    if status_of(lines.next().unwrap_or("")).is_none() {
        return false;
    }
    let (mut close, mut empty, mut date) = (false, false, false);
    for line in lines {
        match line {
            "connection: close" => close = true,
            "content-length: 0" => empty = true,
            _ if line.starts_with("date: ") => date = true,
            _ => return false,
        }
    }
    close && empty && date
}

fn status_of(status_line: &str) -> Option<u16> {
    status_line.get(9..12)?.parse().ok()
}

/// The problem response that replaces hyper's answer `held` to a request it
/// could not parse (`error`), keeping its status and `date`.
pub(crate) fn problem_answer(held: &[u8], error: &hyper::Error, limits: HeadLimits) -> Vec<u8> {
    let text = String::from_utf8_lossy(held);
    let status = status_of(&text).unwrap_or(400);
    let detail = match status {
        431 => format!(
            "the request head is over the server's limits of {} header fields and {} bytes",
            limits.max_headers, limits.max_header_size
        ),
        414 => "the request target is too long".to_owned(),
        _ => format!("the request could not be parsed: {error}"),
    };
    let body = Problem::new(status).with_detail(detail).to_json();
    let reason = http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Error");
    let date = text
        .split("\r\n")
        .find(|line| line.starts_with("date: "))
        .map(|line| format!("{line}\r\n"))
        .unwrap_or_default();
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n{date}\r\n",
        problem::CONTENT_TYPE,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYPER_400: &[u8] = b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: Fri, 04 Dec 2026 16:14:11 GMT\r\n\r\n";

    #[test]
    fn recognises_exactly_the_shape_of_hypers_answer() {
        assert!(is_automatic_answer(HYPER_400));
        assert!(is_automatic_answer(
            b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n"
        ));
        for other in [
            &b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n"[..],
            b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 2\r\ndate: x\r\n\r\n{}",
            b"HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n",
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n",
        ] {
            assert!(
                !is_automatic_answer(other),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
    }
}
