//! Cello's core: everything on the hot path that does not need Python.
//!
//! This crate links no libpython. The PyO3 bindings crate (`cello-py`) builds
//! on it; `cargo test` here runs without a Python interpreter.

pub mod access_log;
pub mod body;
pub mod clock;
mod conn;
pub mod json;
pub mod middleware;
mod parse_error;
pub mod problem;
pub mod query;
pub mod request;
pub mod router;
pub mod server;

pub use problem::Problem;
pub use router::{Constraint, Lookup, RouteError, Router};
