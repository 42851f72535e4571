//! The transport-neutral head of a request, as every door hands it to the pipeline.

use std::net::SocketAddr;

/// What the pipeline knows about a request before its body: built by the
/// native server from hyper's parts and by the ASGI door from a scope.
pub struct RequestHead {
    pub method: http::Method,
    pub version: http::Version,
    /// Percent-decoded path, without the query.
    pub path: String,
    /// The path as received, still percent-encoded; `None` when it is
    /// `path` (nothing in it was escaped). Read it with `raw_path()`.
    pub raw_path: Option<String>,
    /// The query string as received, without `?`.
    pub query: String,
    pub headers: http::HeaderMap,
    /// Path parameters, filled in by routing.
    pub params: Vec<(String, String)>,
    /// What middleware attached for the handler (`request.context`).
    pub context: Vec<(&'static str, String)>,
    pub client: Option<SocketAddr>,
    pub server: Option<SocketAddr>,
    pub scheme: &'static str,
}

impl RequestHead {
    /// The path as received, still percent-encoded.
    pub fn raw_path(&self) -> &str {
        self.raw_path.as_deref().unwrap_or(&self.path)
    }
}
