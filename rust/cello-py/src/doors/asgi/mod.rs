//! Door 2: the `App` as an ASGI application; `cello.asgi` is its Python half.

pub(crate) mod io;
pub(crate) mod serve;
