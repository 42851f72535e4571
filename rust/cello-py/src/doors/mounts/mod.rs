//! Door 3: Cello's server hosting a foreign ASGI application (`app.mount`,
//! `cello serve`), through the same middleware and routing.

pub(crate) mod io;
pub(crate) mod serve;
