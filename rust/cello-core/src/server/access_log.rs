//! Access log: one line per request, written by a background thread so the
//! I/O threads never block on the terminal or a pipe.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, Once};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::json::write_str;

/// How each line is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `127.0.0.1:5123 - [2026-01-02T03:04:05.678Z] "GET /path HTTP/1.1" 200 27 0.412ms <request id>`,
    /// with ` aborted` at the end when the body was cut short.
    Text,
    /// One JSON object per line.
    Json,
}

impl Format {
    /// The format named `text` or `json`.
    pub fn from_name(name: &str) -> Option<Format> {
        match name {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

/// What is known about a finished request.
pub struct Entry<'a> {
    pub client: Option<SocketAddr>,
    pub method: &'a str,
    /// Path and query as received.
    pub target: &'a str,
    pub version: http::Version,
    pub status: u16,
    /// Body bytes sent, when known.
    pub size: Option<u64>,
    pub duration: Duration,
    /// The request's ID, when the request ID middleware gave it one.
    pub request_id: Option<&'a str>,
    /// The body stopped before its end: the client left or its producer failed.
    pub aborted: bool,
}

/// A handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct AccessLog {
    format: Format,
    writer: Arc<Writer>,
}

/// Where lines go: a writer thread's channel, started on the first line a
/// process logs. A log made before `fork` (an app configured in the master
/// of a worker pool) must not send to a thread that only the master has,
/// so a forked child starts its own.
struct Writer {
    lines: Mutex<Option<(u64, mpsc::Sender<String>)>>,
    /// Starts the thread that receives the lines (a test reads them instead).
    start: fn() -> mpsc::Sender<String>,
}

/// How many times this process's ancestry forked: a sender made under an
/// older count belongs to a thread this process does not have.
static FORKS: AtomicU64 = AtomicU64::new(0);

extern "C" fn forked() {
    FORKS.fetch_add(1, Ordering::Relaxed);
}

fn count_forks() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: `forked` only touches an atomic, which is async-signal-safe
        // as a child handler must be.
        unsafe {
            libc::pthread_atfork(None, None, Some(forked));
        }
    });
}

/// Writes lines to standard output until every sender is gone.
fn stdout_writer() -> mpsc::Sender<String> {
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
    lines
}

impl AccessLog {
    /// A log writing to standard output from a thread of its own, started
    /// when the first line comes.
    pub fn stdout(format: Format) -> Self {
        count_forks();
        AccessLog {
            format,
            writer: Arc::new(Writer {
                lines: Mutex::new(None),
                start: stdout_writer,
            }),
        }
    }

    /// A log whose lines arrive on the returned receiver instead.
    #[cfg(test)]
    pub(crate) fn channel(format: Format) -> (Self, mpsc::Receiver<String>) {
        let (lines, rx) = mpsc::channel();
        let writer = Writer {
            lines: Mutex::new(Some((FORKS.load(Ordering::Relaxed), lines))),
            start: || unreachable!("a test's log has its channel"),
        };
        let log = AccessLog {
            format,
            writer: Arc::new(writer),
        };
        (log, rx)
    }

    /// Queues the line for `entry`: the caller pays for formatting one line
    /// and a channel send, never for the write.
    pub fn record(&self, entry: &Entry<'_>) {
        let line = format_entry(self.format, entry, SystemTime::now());
        let forks = FORKS.load(Ordering::Relaxed);
        let mut slot = self.writer.lines.lock().unwrap_or_else(|p| p.into_inner());
        let lines = match &*slot {
            Some((made, lines)) if *made == forks => lines,
            _ => &slot.insert((forks, (self.writer.start)())).1,
        };
        let _ = lines.send(line);
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

/// Renders one line (newline included). Everything a client chose (the
/// target, the request ID) is escaped, so no request can end a line early
/// or forge one.
pub fn format_entry(format: Format, e: &Entry<'_>, now: SystemTime) -> String {
    let client = e
        .client
        .map(|c| c.to_string())
        .unwrap_or_else(|| "-".into());
    let millis = e.duration.as_secs_f64() * 1000.0;
    match format {
        Format::Text => {
            let size = e.size.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
            let mut line = format!("{client} - [{}] \"", rfc3339(now));
            escape_text(&mut line, e.method);
            line.push(' ');
            escape_text(&mut line, e.target);
            let _ = write!(
                line,
                " {}\" {} {size} {millis:.3}ms ",
                version_str(e.version),
                e.status
            );
            match e.request_id {
                Some(id) => escape_text(&mut line, id),
                None => line.push('-'),
            }
            if e.aborted {
                line.push_str(" aborted");
            }
            line.push('\n');
            line
        }
        Format::Json => {
            let mut out = Vec::with_capacity(192);
            out.extend_from_slice(b"{\"time\":");
            write_str(&mut out, &rfc3339(now));
            out.extend_from_slice(b",\"client\":");
            match e.client {
                Some(_) => write_str(&mut out, &client),
                None => out.extend_from_slice(b"null"),
            }
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
            let _ = write!(rest, ",\"duration_ms\":{millis:.3},\"request_id\":");
            out.extend_from_slice(rest.as_bytes());
            match e.request_id {
                Some(id) => write_str(&mut out, id),
                None => out.extend_from_slice(b"null"),
            }
            let tail: &[u8] = if e.aborted {
                b",\"aborted\":true}\n"
            } else {
                b",\"aborted\":false}\n"
            };
            out.extend_from_slice(tail);
            String::from_utf8(out).unwrap_or_default()
        }
    }
}

/// Appends `value` with quotes, backslashes and control characters escaped
/// C-style (`\"`, `\\`, `\n`, `\x1b`), so a text line stays one line whose
/// quoted fields end where the writer ended them.
fn escape_text(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", u32::from(c));
            }
            c => out.push(c),
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

    fn entry(target: &'static str) -> Entry<'static> {
        Entry {
            client: Some("127.0.0.1:5000".parse().unwrap()),
            method: "GET",
            target,
            version: http::Version::HTTP_11,
            status: 200,
            size: Some(27),
            duration: Duration::from_micros(412),
            request_id: Some("trace-1"),
            aborted: false,
        }
    }

    const AT: Duration = Duration::from_millis(1_763_773_323_456);

    #[test]
    fn text_lines_carry_every_field() {
        let line = format_entry(Format::Text, &entry("/a?b=1"), UNIX_EPOCH + AT);
        assert_eq!(
            line,
            "127.0.0.1:5000 - [2025-11-22T01:02:03.456Z] \"GET /a?b=1 HTTP/1.1\" 200 27 0.412ms trace-1\n"
        );
    }

    #[test]
    fn text_lines_mark_what_is_unknown_and_what_was_cut_short() {
        let mut e = entry("/");
        e.client = None;
        e.size = None;
        e.request_id = None;
        e.aborted = true;
        let line = format_entry(Format::Text, &e, UNIX_EPOCH);
        assert_eq!(
            line,
            "- - [1970-01-01T00:00:00.000Z] \"GET / HTTP/1.1\" 200 - 0.412ms - aborted\n"
        );
    }

    #[test]
    fn a_text_target_cannot_end_the_line_or_its_quotes() {
        let forged = "/x\" 200 1 1ms -\r\n127.0.0.1:1 - [x] \"GET /admin\\\u{1b}[31m\u{7f}";
        let line = format_entry(Format::Text, &entry(forged), UNIX_EPOCH);
        assert_eq!(line.matches('\n').count(), 1);
        assert!(line.ends_with('\n'));
        assert!(!line.contains('\r') && !line.contains('\u{1b}') && !line.contains('\u{7f}'));
        assert!(line.contains(
            r#""GET /x\" 200 1 1ms -\r\n127.0.0.1:1 - [x] \"GET /admin\\\x1b[31m\x7f HTTP/1.1""#
        ));
        // Every quote the client sent is escaped: the line holds exactly the
        // two unescaped quotes around the request line.
        let bare = line.replace("\\\\", "").replace("\\\"", "");
        assert_eq!(bare.matches('"').count(), 2);
    }

    #[test]
    fn json_lines_are_valid_json() {
        let line = format_entry(Format::Json, &entry("/a?b=\"c\""), UNIX_EPOCH + AT);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["time"], "2025-11-22T01:02:03.456Z");
        assert_eq!(value["client"], "127.0.0.1:5000");
        assert_eq!(value["method"], "GET");
        assert_eq!(value["target"], "/a?b=\"c\"");
        assert_eq!(value["http_version"], "HTTP/1.1");
        assert_eq!(value["status"], 200);
        assert_eq!(value["size"], 27);
        assert_eq!(value["duration_ms"], 0.412);
        assert_eq!(value["request_id"], "trace-1");
        assert_eq!(value["aborted"], false);
        assert!(line.ends_with("}\n"));
        assert_eq!(line.matches('\n').count(), 1);
    }

    #[test]
    fn hostile_json_fields_stay_one_valid_line() {
        let hostile = "/\"}\n{\"status\":1\r\u{0}\u{1f}\u{7f}\\é\u{2028}";
        let mut e = entry(hostile);
        e.request_id = Some("\"\n");
        e.client = None;
        e.size = None;
        e.aborted = true;
        let line = format_entry(Format::Json, &e, UNIX_EPOCH);
        assert_eq!(line.matches('\n').count(), 1);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["target"], hostile);
        assert_eq!(value["request_id"], "\"\n");
        assert!(value["client"].is_null() && value["size"].is_null());
        assert_eq!(value["aborted"], true);
    }

    #[test]
    fn format_names() {
        assert_eq!(Format::from_name("text"), Some(Format::Text));
        assert_eq!(Format::from_name("json"), Some(Format::Json));
        assert_eq!(Format::from_name("JSON"), None);
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
