//! The answer to a native request as it travels back to its connection.

use cello_core::server::Body;

/// The answer to a native request, with the request body if the handler
/// left it unread: the I/O side discards it so the connection stays usable.
pub struct NativeReply {
    /// Boxed: the response is handed through several layers on its way to
    /// hyper, and moving a pointer is cheaper than moving 176 bytes.
    pub response: Box<http::Response<Body>>,
    pub unread: Option<cello_core::server::RequestBody>,
}
