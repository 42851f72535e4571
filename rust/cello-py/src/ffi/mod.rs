//! CPython plumbing that knows nothing of Cello's types: the allocator, C-API
//! calls, `asyncio.Handle` fields, and the Python helpers imported once.

pub(crate) mod allocator;
pub(crate) mod capi;
pub(crate) mod handle;
pub(crate) mod support;
