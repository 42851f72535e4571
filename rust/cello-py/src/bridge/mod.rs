//! The asyncio event loop and the Rust runtime working as one: the loop
//! driver that waits by running tokio, eager Task starts, the fast paths
//! found in this Python's asyncio, and the reply a native request waits for.

pub(crate) mod driver;
pub(crate) mod eager;
pub(crate) mod fast_paths;
pub(crate) mod first_step;
pub(crate) mod reply;
