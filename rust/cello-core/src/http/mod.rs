//! HTTP vocabulary shared by every door: the request head, problem details
//! (the body of every framework error) and query strings.

pub mod problem;
pub mod query;
pub mod request;
