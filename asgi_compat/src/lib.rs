//! The ASGI side of Cello: turning an ASGI `scope` into the transport-neutral
//! request head the pipeline consumes (door 2), and response heads into
//! ASGI message fields.
//!
//! The ASGI host that serves foreign apps (door 3) will live here too.

pub mod scope;

pub use scope::{head_from_scope, headers_to_asgi, http_scope, HostedRequest};
