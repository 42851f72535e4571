//! Cello's core: everything on the hot path that does not need Python.
//!
//! This crate links no libpython. The PyO3 bindings crate (`cello-py`) builds
//! on it; `cargo test` here runs without a Python interpreter.
//!
//! - `http`: the request head every door hands the pipeline, problem
//!   details, query strings;
//! - `routing`: the route table;
//! - `middleware`: the layers every door runs before routing;
//! - `server`: the HTTP/1.1 server, its connections, bodies and access log;
//! - `json`: JSON writing primitives.

pub mod http;
pub mod json;
pub mod middleware;
pub mod routing;
pub mod server;
pub mod shared_memory;

pub use http::problem::Problem;
pub use routing::{Constraint, Lookup, RouteError, Router};
