//! Access log: one line per request, written by a background thread so the
//! I/O threads never block on the terminal or a pipe.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::json::write_str;

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `127.0.0.1:5123 - "GET /path HTTP/1.1" 200 27 0.412ms`
    Text,
    /// One JSON object per line.
    Json,
}

/// What is known about a finished request.
pub struct Entry<'a> {
    pub client: Option<SocketAddr>,
    pub method: &'a str,
    /// Path and query as received.
    pub target: &'a str,
    pub version: http::Version,
    pub status: u16,
    /// Body size, when known before streaming.
    pub size: Option<u64>,
    pub duration: Duration,
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    format: Format,
    lines: mpsc::Sender<String>,
}

impl AccessLog {
    /// Starts the writer thread, writing to standard output.
    pub fn stdout(format: Format) -> Self {
        let (lines, rx) = mpsc::channel::<String>();
        std::thread::Builder::new()
            .name("cello-access-log".into())
            .spawn(move || {
                let stdout = std::io::stdout();
                while let Ok(line) = rx.recv() {
                    let mut out = stdout.lock();
                    let _ = out.write_all(line.as_bytes());
                    // Batch whatever else is already queued into one flush.
                    while let Ok(more) = rx.try_recv() {
                        let _ = out.write_all(more.as_bytes());
                    }
                    let _ = out.flush();
                }
            })
            .expect("spawning the access-log thread");
        AccessLog { format, lines }
    }

    pub fn record(&self, entry: &Entry<'_>) {
        let _ = self
            .lines
            .send(format_entry(self.format, entry, SystemTime::now()));
    }
}

fn version_str(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "HTTP/0.9",
        http::Version::HTTP_10 => "HTTP/1.0",
        http::Version::HTTP_2 => "HTTP/2",
        http::Version::HTTP_3 => "HTTP/3",
        _ => "HTTP/1.1",
    }
}

/// Renders one line (newline included).
pub fn format_entry(format: Format, e: &Entry<'_>, now: SystemTime) -> String {
    let client = e
        .client
        .map(|c| c.to_string())
        .unwrap_or_else(|| "-".into());
    let millis = e.duration.as_secs_f64() * 1000.0;
    match format {
        Format::Text => {
            let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let target: String = e
                .target
                .chars()
                .map(|c| if c.is_control() || c == '"' { '?' } else { c })
                .collect();
            format!(
                "{client} - \"{} {target} {}\" {} {size} {millis:.3}ms\n",
                e.method,
                version_str(e.version),
                e.status
            )
        }
        Format::Json => {
            let mut out = Vec::with_capacity(160);
            out.extend_from_slice(b"{\"time\":");
            write_str(&mut out, &rfc3339(now));
            out.extend_from_slice(b",\"client\":");
            write_str(&mut out, &client);
            out.extend_from_slice(b",\"method\":");
            write_str(&mut out, e.method);
            out.extend_from_slice(b",\"target\":");
            write_str(&mut out, e.target);
            out.extend_from_slice(b",\"http_version\":");
            write_str(&mut out, version_str(e.version));
            let mut rest = format!(",\"status\":{}", e.status);
            match e.size {
                Some(size) => {
                    let _ = write!(rest, ",\"size\":{size}");
                }
                None => rest.push_str(",\"size\":null"),
            }
            let _ = writeln!(rest, ",\"duration_ms\":{millis:.3}}}");
            out.extend_from_slice(rest.as_bytes());
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

/// UTC time as `2026-11-22T01:02:03.456Z`.
fn rfc3339(t: SystemTime) -> String {
    let since = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            client: Some("127.0.0.1:5000".parse().unwrap()),
            method: "GET",
            target: "/a?b=\"c\"",
            version: http::Version::HTTP_11,
            status: 200,
            size: Some(27),
            duration: Duration::from_micros(412),
        }
    }

    #[test]
    fn text_lines_escape_the_target() {
        let line = format_entry(Format::Text, &entry(), UNIX_EPOCH);
        assert_eq!(
            line,
            "127.0.0.1:5000 - \"GET /a?b=?c? HTTP/1.1\" 200 27 0.412ms\n"
        );
    }

    #[test]
    fn json_lines_are_valid_json() {
        let at = UNIX_EPOCH + Duration::from_millis(1_763_773_323_456);
        let line = format_entry(Format::Json, &entry(), at);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["time"], "2025-11-22T01:02:03.456Z");
        assert_eq!(value["target"], "/a?b=\"c\"");
        assert_eq!(value["status"], 200);
        assert_eq!(value["size"], 27);
        assert!(line.ends_with("}\n"));
    }

    #[test]
    fn leap_day() {
        // 2024-02-29T00:00:00Z
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_164_800)),
            "2024-02-29T00:00:00.000Z"
        );
    }
}
