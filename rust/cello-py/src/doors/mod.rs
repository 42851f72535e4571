//! The ways a request reaches the pipeline. Each door only converts: its
//! transport's request into a `RequestHead` for the middleware, routing and
//! the endpoint, and the pipeline's response back into its transport.
//!
//! Every door folder has the same files: `serve.rs` (where requests come
//! in) and `io.rs` (moving bodies in and out).

pub(crate) mod asgi;
pub(crate) mod mounts;
pub(crate) mod native;
pub(crate) mod websocket;
