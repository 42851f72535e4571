//! Access logging: one line per request, whichever door it came through,
//! handed to the access-log writer thread so no I/O happens on the hot path.
//!
//! A response held whole is logged as it leaves the layers. A streamed one
//! is logged when its body ends, by an encoder that counts the bytes going
//! out; if the body never ends (the client left, the producer failed), the
//! encoder is dropped unfinished and logs the request as aborted then.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::request_id::CONTEXT_KEY as REQUEST_ID;
use super::{bodyless, Answer, Context, Encoder, Layer, OutBody, Outgoing, Stage};
use crate::http::request::RequestHead;
use crate::server::access_log::{AccessLog, Entry};

/// Paths skipped by default: probes and scrapes that would drown the log.
pub const DEFAULT_SKIP: [&str; 2] = ["/health", "/metrics"];

pub struct Logging {
    log: AccessLog,
    /// Prefixes whose requests are not logged (each also covers the paths
    /// below it: `/health` skips `/health/live`).
    skip: Vec<String>,
}

impl Logging {
    pub fn new(log: AccessLog, skip: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Logging {
            log,
            skip: skip
                .into_iter()
                .map(|p| p.into().trim_end_matches('/').to_owned())
                .collect(),
        }
    }

    fn skips(&self, path: &str) -> bool {
        self.skip.iter().any(|prefix| {
            path.strip_prefix(prefix.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

/// The request, as the layer saw it on its way in.
struct Request {
    started: Instant,
    client: Option<SocketAddr>,
    method: http::Method,
    version: http::Version,
    target: String,
    /// Read on the way in: the request ID layer runs first.
    request_id: Option<String>,
}

/// Everything a line needs but the size and the end.
struct Pending {
    log: AccessLog,
    request: Request,
    status: u16,
}

impl Pending {
    fn record(&self, size: u64, duration: Duration, aborted: bool) {
        self.log.record(&Entry {
            client: self.request.client,
            method: self.request.method.as_str(),
            target: &self.request.target,
            version: self.request.version,
            status: self.status,
            size: Some(size),
            duration,
            request_id: self.request.request_id.as_deref(),
            aborted,
        });
    }
}

/// The target as the client sent it: the undecoded path (an ASGI server
/// may have put the query into `raw_path`; it is taken from `query` once).
fn target(head: &RequestHead) -> String {
    let path = match &head.raw_path {
        Some(raw) => raw.split('?').next().unwrap_or(raw),
        None => head.path.as_str(),
    };
    if head.query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", head.query)
    }
}

impl Layer for Logging {
    fn name(&self) -> &'static str {
        "AccessLog"
    }

    fn stage(&self) -> Stage {
        Stage::Logging
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if !self.skips(&head.path) {
            context.note(Request {
                started: Instant::now(),
                client: head.client,
                method: head.method.clone(),
                version: head.version,
                target: target(head),
                request_id: context.get(REQUEST_ID).map(str::to_owned),
            });
        }
        None
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let Some(request) = context.take_note::<Request>() else {
            return;
        };
        let pending = Pending {
            log: self.log.clone(),
            request,
            status: response.status,
        };
        let whole = match &response.body {
            // An inner layer may have made the status bodyless (a 304): the
            // body is dropped once the layers are done.
            _ if bodyless(response.status) => Some(0),
            OutBody::Withheld => Some(0),
            OutBody::Full(bytes) => Some(bytes.len() as u64),
            OutBody::Streamed => None,
        };
        match whole {
            Some(size) => {
                let duration = pending.request.started.elapsed();
                pending.record(size, duration, false);
            }
            None => response.encode_with(Box::new(Counter {
                pending: Some(pending),
                sent: 0,
            })),
        }
    }
}

/// Counts a streamed body's bytes and logs the request when the body ends,
/// or, dropped before that, as aborted.
struct Counter {
    /// Taken once the line is written.
    pending: Option<Pending>,
    sent: u64,
}

impl Counter {
    fn record(&mut self, aborted: bool) {
        if let Some(pending) = self.pending.take() {
            let duration = pending.request.started.elapsed();
            pending.record(self.sent, duration, aborted);
        }
    }
}

impl Encoder for Counter {
    fn chunk(&mut self, data: Bytes) -> Bytes {
        self.sent += data.len() as u64;
        data
    }

    fn finish(&mut self) -> Bytes {
        self.record(false);
        Bytes::new()
    }

    fn keeps_length(&self) -> bool {
        true
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.record(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::middleware::tests::head;
    use crate::middleware::Chain;
    use crate::server::access_log::Format;
    use std::sync::mpsc;

    fn layer(skip: &[&str]) -> (Logging, mpsc::Receiver<String>) {
        let (log, lines) = AccessLog::channel(Format::Json);
        (Logging::new(log, skip.iter().copied()), lines)
    }

    fn line(lines: &mpsc::Receiver<String>) -> serde_json::Value {
        serde_json::from_str(&lines.try_recv().expect("a line was logged")).unwrap()
    }

    fn request(layer: &Logging, mut head: RequestHead) -> Context {
        head.client = Some("10.0.0.1:4000".parse().unwrap());
        let mut context = Context::default();
        context.insert(REQUEST_ID, "rid-1".into());
        assert!(layer.request(&mut head, &mut context).is_none());
        context
    }

    #[test]
    fn a_whole_body_is_logged_as_it_leaves() {
        let (layer, lines) = layer(&[]);
        let mut head = head("/a b", &[]);
        head.raw_path = Some("/a%20b".into());
        head.query = "q=1".into();
        let mut context = request(&layer, head);
        assert!(lines.try_recv().is_err(), "nothing logged on the way in");
        let mut out = Outgoing::new(201, http::HeaderMap::new(), Some("abcd".into()), false);
        layer.response(&mut context, &mut out);
        let value = line(&lines);
        assert_eq!(value["client"], "10.0.0.1:4000");
        assert_eq!(value["method"], "GET");
        assert_eq!(value["target"], "/a%20b?q=1");
        assert_eq!(value["status"], 201);
        assert_eq!(value["size"], 4);
        assert_eq!(value["request_id"], "rid-1");
        assert_eq!(value["aborted"], false);
        assert!(lines.try_recv().is_err(), "one line per request");
    }

    #[test]
    fn a_raw_path_holding_the_query_does_not_repeat_it() {
        let mut head = head("/p", &[]);
        head.raw_path = Some("/p?x=1".into());
        head.query = "x=1".into();
        assert_eq!(target(&head), "/p?x=1");
    }

    #[test]
    fn a_streamed_body_is_logged_at_its_end_with_the_bytes_sent() {
        let (layer, lines) = layer(&[]);
        let mut context = request(&layer, head("/s", &[]));
        let mut out = Outgoing::new(200, http::HeaderMap::new(), None, false);
        layer.response(&mut context, &mut out);
        assert!(lines.try_recv().is_err(), "not before the body ends");
        let mut encoders = out.take_encoders().expect("a counter");
        assert!(encoders.keep_length());
        assert_eq!(encoders.chunk(Bytes::from("hello")), "hello");
        assert_eq!(encoders.chunk(Bytes::from(" world")), " world");
        assert!(encoders.finish().is_empty());
        let value = line(&lines);
        assert_eq!(value["size"], 11);
        assert_eq!(value["aborted"], false);
        drop(encoders);
        assert!(
            lines.try_recv().is_err(),
            "dropping a finished body logs nothing more"
        );
    }

    #[test]
    fn a_stream_dropped_before_its_end_is_logged_as_aborted() {
        let (layer, lines) = layer(&[]);
        let mut context = request(&layer, head("/s", &[]));
        let mut out = Outgoing::new(200, http::HeaderMap::new(), None, false);
        layer.response(&mut context, &mut out);
        let mut encoders = out.take_encoders().unwrap();
        encoders.chunk(Bytes::from("abc"));
        drop(encoders);
        let value = line(&lines);
        assert_eq!(value["status"], 200);
        assert_eq!(value["size"], 3);
        assert_eq!(value["aborted"], true);
    }

    #[test]
    fn a_bodyless_response_is_logged_with_no_bytes() {
        let (layer, lines) = layer(&[]);
        for (status, head_only) in [(304, false), (200, true), (204, false)] {
            let mut context = request(&layer, head("/", &[]));
            let mut out = Outgoing::new(200, http::HeaderMap::new(), None, head_only);
            out.status = status;
            layer.response(&mut context, &mut out);
            assert!(out.take_encoders().is_none());
            let value = line(&lines);
            assert_eq!(value["status"], status);
            assert_eq!(value["size"], 0);
        }
    }

    #[test]
    fn skipped_prefixes_cover_the_paths_below_them_only() {
        let (layer, lines) = layer(&DEFAULT_SKIP);
        let mut chain = Chain::default();
        chain.push("", Box::new(layer)).unwrap();
        for path in [
            "/health",
            "/health/live",
            "/metrics",
            "/healthy",
            "/api/health",
            "/",
        ] {
            let mut head = head(path, &[]);
            let mut context = Context::default();
            chain.request(&mut head, &mut context);
            let mut out = Outgoing::new(200, http::HeaderMap::new(), Some("x".into()), false);
            chain.response(&mut context, &mut out);
        }
        let logged: Vec<_> = lines.try_iter().collect();
        let targets: Vec<_> = logged
            .iter()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["target"].clone())
            .collect();
        assert_eq!(targets, ["/healthy", "/api/health", "/"]);
    }

    #[test]
    fn without_a_request_id_the_line_says_so() {
        let (layer, lines) = layer(&[]);
        let mut head = head("/", &[]);
        let mut context = Context::default();
        layer.request(&mut head, &mut context);
        let mut out = Outgoing::new(200, http::HeaderMap::new(), Some("x".into()), false);
        layer.response(&mut context, &mut out);
        let value = line(&lines);
        assert!(value["request_id"].is_null());
        assert!(value["client"].is_null());
    }
}
