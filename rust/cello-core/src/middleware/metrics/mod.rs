//! Prometheus metrics: every request counted by route template, method and
//! status, timed, and sized, and `GET /metrics` answering with the whole
//! server's counts in the text format.
//!
//! The layer is outermost, so it times everything the server does for a
//! request and counts the status the client got. The route is the
//! template the doors record in the context once routing found one
//! ([`Context::set_route`]); a request no route matched counts under one
//! `path` value, so a scan of random paths cannot grow the series.
//!
//! Counting allocates nothing, formats nothing and takes no lock: the
//! series' slot is found by its packed key, and the counters are atomics in
//! memory shared by every worker process (see [`table`]). A scrape reads
//! them and renders them through the `prometheus` crate (see [`render`]).

pub mod render;
pub mod table;

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::{bodyless, Answer, Content, Context, Encoder, Layer, OutBody, Outgoing, Stage};
use crate::http::request::RequestHead;
use table::{InFlight, Table};

/// Paths not measured besides the metrics endpoint: health probes (the
/// prefix covers `/health/live` and the rest) and their aliases.
pub const DEFAULT_SKIP: [&str; 3] = ["/health", "/liveness", "/readiness"];

/// How many series the table holds by default.
pub const DEFAULT_CAPACITY: usize = 4096;

#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// The path scrapes are answered on.
    pub endpoint: String,
    /// The first parts of every metric name; empty ones are left out.
    pub namespace: String,
    pub subsystem: String,
    /// Paths not measured (each covers the paths below it).
    pub skip: Vec<String>,
    /// Series the shared table holds before new ones overflow.
    pub capacity: usize,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            endpoint: "/metrics".to_owned(),
            namespace: "cello".to_owned(),
            subsystem: "http".to_owned(),
            skip: DEFAULT_SKIP.iter().map(|p| p.to_string()).collect(),
            capacity: DEFAULT_CAPACITY,
        }
    }
}

/// Whether `part` may be part of a metric name (`[a-zA-Z_][a-zA-Z0-9_]*`);
/// empty is allowed, and leaves the part out.
pub fn valid_name_part(part: &str) -> bool {
    let mut bytes = part.bytes();
    match bytes.next() {
        None => true,
        Some(first) => {
            (first.is_ascii_alphabetic() || first == b'_')
                && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        }
    }
}

pub struct Metrics {
    endpoint: String,
    prefix: String,
    skip: Vec<String>,
    table: Arc<Table>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("endpoint", &self.endpoint)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// What the layer notes about a request on its way in.
pub(crate) struct Pending {
    started: Instant,
    method: u8,
    request_bytes: u64,
    /// Holds the request on the in-flight gauge until it is dropped.
    _in_flight: InFlight,
}

impl Metrics {
    /// Maps the shared table: call it before `run()` forks the workers.
    pub fn new(options: MetricsOptions) -> Result<Self, String> {
        if !options.endpoint.starts_with('/') {
            return Err(format!(
                "the metrics endpoint must start with '/', not {:?}",
                options.endpoint
            ));
        }
        for (what, part) in [
            ("namespace", &options.namespace),
            ("subsystem", &options.subsystem),
        ] {
            if !valid_name_part(part) {
                return Err(format!(
                    "the metrics {what} must be letters, digits and underscores, \
                     not starting with a digit, not {part:?}"
                ));
            }
        }
        let mut prefix = String::new();
        for part in [&options.namespace, &options.subsystem] {
            if !part.is_empty() {
                prefix.push_str(part);
                prefix.push('_');
            }
        }
        let table = Table::new(options.capacity.max(16))
            .map_err(|e| format!("cannot map the metrics table: {e}"))?;
        Ok(Metrics {
            endpoint: options.endpoint,
            prefix,
            skip: options
                .skip
                .into_iter()
                .map(|p| p.trim_end_matches('/').to_owned())
                .collect(),
            table: Arc::new(table),
        })
    }

    fn skips(&self, path: &str) -> bool {
        path == self.endpoint
            || self.skip.iter().any(|prefix| {
                path.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            })
    }

    /// The exposition, as a scrape of any worker gives it.
    pub fn exposition(&self) -> String {
        render::exposition(&self.prefix, &self.table)
    }

    fn scrape(&self) -> Answer {
        let mut headers = http::HeaderMap::with_capacity(2);
        headers.insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(render::CONTENT_TYPE),
        );
        headers.insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        Answer {
            status: 200,
            headers,
            body: Content::Bytes(Bytes::from(self.exposition())),
        }
    }
}

/// The request's declared body size; 0 without a (valid) `Content-Length`.
fn declared_length(head: &RequestHead) -> u64 {
    head.headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

impl Layer for Metrics {
    fn name(&self) -> &'static str {
        "Metrics"
    }

    fn stage(&self) -> Stage {
        Stage::Metrics
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if self.skips(&head.path) {
            let scrape = head.path == self.endpoint
                && (head.method == http::Method::GET || head.method == http::Method::HEAD);
            return scrape.then(|| self.scrape());
        }
        context.metrics = Some(Pending {
            started: Instant::now(),
            method: table::method_index(&head.method),
            request_bytes: declared_length(head),
            _in_flight: self.table.enter(),
        });
        None
    }

    fn response(&self, context: &mut Context, response: &mut Outgoing) {
        let Some(pending) = context.metrics.take() else {
            return;
        };
        let key = table::key(context.route(), pending.method, response.status);
        let slot = self.table.slot(key);
        let sent = match &response.body {
            _ if bodyless(response.status) => Some(0),
            OutBody::Withheld => Some(0),
            OutBody::Full(bytes) => Some(bytes.len() as u64),
            OutBody::Streamed => None,
        };
        match sent {
            Some(size) => record(&self.table, slot, pending, size),
            None => response.encode_with(Box::new(Tally {
                table: self.table.clone(),
                slot,
                pending: Some(pending),
                sent: 0,
            })),
        }
    }
}

fn record(table: &Table, slot: usize, pending: Pending, sent: u64) {
    let nanos = pending
        .started
        .elapsed()
        .as_nanos()
        .min(u128::from(u64::MAX)) as u64;
    table.record(slot, nanos, pending.request_bytes, sent);
}

/// Counts a request once its body is sent (or abandoned): a streamed body
/// is timed to its end and sized as it goes.
struct Tally {
    table: Arc<Table>,
    slot: usize,
    /// Taken once the request is counted.
    pending: Option<Pending>,
    sent: u64,
}

impl Tally {
    fn record(&mut self) {
        if let Some(pending) = self.pending.take() {
            record(&self.table, self.slot, pending, self.sent);
        }
    }
}

impl Encoder for Tally {
    fn chunk(&mut self, data: Bytes) -> Bytes {
        self.sent += data.len() as u64;
        data
    }

    fn finish(&mut self) -> Bytes {
        self.record();
        Bytes::new()
    }

    fn keeps_length(&self) -> bool {
        true
    }
}

impl Drop for Tally {
    fn drop(&mut self) {
        self.record();
    }
}

#[cfg(test)]
mod tests;
