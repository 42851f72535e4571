//! HTTP vocabulary shared by every door: the request head, problem details
//! (the body of every framework error), query strings and file bodies.

pub mod file;
pub mod multipart;
pub mod problem;
pub mod query;
pub mod request;
