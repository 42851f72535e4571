//! WebSocket on the native server, for doors 1 and 3: the upgrade, and the
//! ASGI `websocket` protocol spoken to the Python app that serves it (a
//! mounted ASGI app, or Cello's own `App`).

pub(crate) mod codec;
pub(crate) mod deflate;
pub(crate) mod io;
pub(crate) mod serve;

pub use io::WsSettings;

/// What the native server needs to serve WebSocket upgrades.
pub struct WsDoor {
    /// Called for an upgrade no mount claims: Cello's own `App` (its
    /// `__call__` routes `@app.websocket` handlers); None answers those 404.
    pub app: Option<pyo3::Py<pyo3::PyAny>>,
    pub settings: std::sync::Arc<WsSettings>,
}
