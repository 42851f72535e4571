//! The ASGI vocabulary, one module per scope type: turning an ASGI `http`
//! scope into the transport-neutral request head the pipeline consumes
//! (door 2), and header maps into ASGI message fields (doors 2 and 3).
//! Lifespan is driven from Python (`cello.lifespan`); WebSocket scopes
//! arrive with WebSocket support.

pub mod http;

pub use http::{head_from_scope, headers_to_asgi, http_scope, HostedRequest};
