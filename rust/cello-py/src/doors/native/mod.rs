//! Door 1: Cello's own server. hyper connections on tokio, handlers run
//! inline (sync) or as Tasks on the event loop (async).

pub(crate) mod io;
pub(crate) mod serve;
pub(crate) mod service;
