//! The types handlers see (`Request`, `Response`, the header and query
//! mappings, cookies) and what a handler's return value means.

pub(crate) mod after_response;
pub(crate) mod body;
pub(crate) mod convert;
pub(crate) mod cookies;
pub(crate) mod forms;
pub(crate) mod multidict;
pub(crate) mod request;
pub(crate) mod response;
pub(crate) mod tls;
