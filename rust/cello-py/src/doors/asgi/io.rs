//! Door 2's response heads: an ASGI header list into the header map the
//! middleware sees, under the rules every door applies.

use pyo3::prelude::*;

use crate::conversion::headers::checked_header_bytes;

/// An ASGI header list (`[(name, value), ...]` of bytes) as a header map,
/// under the rules every door applies to response headers.
pub(crate) fn asgi_header_map(headers: &Bound<'_, PyAny>) -> PyResult<http::HeaderMap> {
    let mut map = http::HeaderMap::new();
    for pair in headers.try_iter()? {
        let (name, value): (Vec<u8>, Vec<u8>) = pair?.extract()?;
        let (name, value) = checked_header_bytes(&name, &value)?;
        map.append(name, value);
    }
    Ok(map)
}
