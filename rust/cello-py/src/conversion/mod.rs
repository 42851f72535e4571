//! Python values to and from wire values: header checks and JSON both ways.

pub(crate) mod headers;
pub(crate) mod json_reader;
pub(crate) mod json_writer;
