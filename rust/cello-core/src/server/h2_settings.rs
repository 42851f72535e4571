//! HTTP/2 connection settings (`Http2Config`) and the hyper builder they
//! make, with the guards against rapid reset and CONTINUATION floods.

use std::time::Duration;

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};

/// HTTP/2 connection settings.
#[derive(Debug, Clone)]
pub struct Http2Settings {
    pub max_concurrent_streams: u32,
    /// Each stream's initial flow-control window; the connection's is the
    /// same size times the streams allowed at once, capped at 2^31 - 1.
    pub initial_window_size: u32,
    pub max_frame_size: u32,
    /// Largest decoded header list accepted (the CONTINUATION-flood guard).
    pub max_header_list_size: u32,
    /// Ping an idle-looking connection this often; `None`: never.
    pub keep_alive_interval: Option<Duration>,
    /// How long a ping's answer may take before the connection is closed.
    pub keep_alive_timeout: Duration,
    /// Streams a client may open and reset before the server has seen them
    /// (the rapid-reset guard, CVE-2023-44487).
    pub max_pending_accept_reset_streams: usize,
    /// Streams the server may reset for a client's protocol errors before
    /// it closes the connection.
    pub max_local_error_reset_streams: usize,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            max_concurrent_streams: 100,
            initial_window_size: 1_048_576,
            max_frame_size: 16_384,
            max_header_list_size: 16_384,
            keep_alive_interval: Some(Duration::from_secs(20)),
            keep_alive_timeout: Duration::from_secs(20),
            max_pending_accept_reset_streams: 20,
            max_local_error_reset_streams: 1024,
        }
    }
}

impl Http2Settings {
    pub(super) fn builder(&self) -> http2::Builder<TokioExecutor> {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        let window = self.initial_window_size.max(65_535);
        let conn_window = (u64::from(window) * u64::from(self.max_concurrent_streams.max(1)))
            .min(i32::MAX as u64) as u32;
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.max_concurrent_streams)
            .initial_stream_window_size(window)
            .initial_connection_window_size(conn_window.max(window))
            .max_frame_size(self.max_frame_size)
            .max_header_list_size(self.max_header_list_size)
            .keep_alive_interval(self.keep_alive_interval)
            .keep_alive_timeout(self.keep_alive_timeout)
            .max_pending_accept_reset_streams(self.max_pending_accept_reset_streams)
            .max_local_error_reset_streams(self.max_local_error_reset_streams);
        builder
    }
}
