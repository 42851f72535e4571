//! The ASGI vocabulary, one module per scope type: turning an ASGI `http`
//! scope into the transport-neutral request head the pipeline consumes
//! (door 2), and header maps into ASGI message fields (doors 2 and 3).
//! Lifespan is driven from Python (`cello.lifespan`); `websocket` scopes
//! are built for the native server's upgrades (doors 1 and 3).

pub mod http;
pub mod websocket;

pub use http::{
    address_tuple, head_from_scope, headers_to_asgi, http_scope, http_version, HostedRequest,
};
pub use websocket::{offered_subprotocols, websocket_scope};
