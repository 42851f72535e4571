//! Response header checks shared by every door: names must be HTTP tokens,
//! values must not split the response (CR, LF, NUL) or carry bytes hyper
//! refuses. Python `str` headers and an ASGI app's byte headers go through
//! the same rules and get the same messages.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Appends header pairs that `checked_header` accepted, so neither
/// conversion can fail; a pair that somehow does is left out.
pub(crate) fn append_pairs(map: &mut http::HeaderMap, pairs: &[(String, String)]) {
    map.reserve(pairs.len());
    for (name, value) in pairs {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) {
            map.append(name, value);
        }
    }
}

/// An ASGI header pair (bytes, as an app sends them) as a hyper header,
/// under the same rules and messages as `checked_header`. The value's bytes
/// are kept as they are: ASGI allows any byte HTTP does, UTF-8 or not.
pub fn checked_header_bytes(
    name: &[u8],
    value: &[u8],
) -> PyResult<(http::HeaderName, http::HeaderValue)> {
    check_header(name, value)?;
    // Both accept whatever `check_header` did (a unit test holds the tables
    // to the http crate), so these errors are only a safety net.
    Ok((
        http::HeaderName::from_bytes(name).map_err(|_| HeaderFault::Name.error(name))?,
        http::HeaderValue::from_bytes(value).map_err(|_| HeaderFault::Value.error(name))?,
    ))
}

/// Rejects header names that are not HTTP tokens and values carrying CR, LF
/// or NUL (response splitting), returning the lower-cased name.
pub fn checked_header(name: &str, value: &str) -> PyResult<String> {
    check_header(name.as_bytes(), value.as_bytes())?;
    Ok(name.to_ascii_lowercase())
}

/// The rules of http::HeaderName and http::HeaderValue, checked in one pass
/// each without building either. A bad value is reported before a bad name,
/// and response splitting (CR, LF, NUL) before any other bad byte.
fn check_header(name: &[u8], value: &[u8]) -> PyResult<()> {
    let name_ok = name_is_valid(name);
    if !value.iter().all(|&b| VALUE_BYTE[usize::from(b)]) {
        if value.iter().any(|b| matches!(b, b'\r' | b'\n' | b'\0')) {
            return Err(HeaderFault::Splitting.error(name));
        }
        if name_ok {
            return Err(HeaderFault::Value.error(name));
        }
    }
    if !name_ok {
        return Err(HeaderFault::Name.error(name));
    }
    Ok(())
}

enum HeaderFault {
    Splitting,
    Value,
    Name,
}

impl HeaderFault {
    fn error(self, name: &[u8]) -> PyErr {
        let name = String::from_utf8_lossy(name);
        PyValueError::new_err(match self {
            HeaderFault::Splitting => {
                format!("header {name:?} has a value containing CR, LF or NUL")
            }
            HeaderFault::Value => format!("invalid value for header {name:?}"),
            HeaderFault::Name => format!("invalid header name {name:?}"),
        })
    }
}

fn name_is_valid(name: &[u8]) -> bool {
    !name.is_empty() && name.iter().all(|&b| TOKEN_BYTE[usize::from(b)])
}

/// RFC 9110 `tchar`: the bytes of a header name.
static TOKEN_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] = c.is_ascii_alphanumeric()
            || matches!(
                c,
                b'!' | b'#'
                    | b'$'
                    | b'%'
                    | b'&'
                    | b'\''
                    | b'*'
                    | b'+'
                    | b'-'
                    | b'.'
                    | b'^'
                    | b'_'
                    | b'`'
                    | b'|'
                    | b'~'
            );
        b += 1;
    }
    table
};

/// The bytes http::HeaderValue accepts: visible ASCII, tab, and obs-text.
static VALUE_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b >= 0x20 && b != 0x7f) || b == 0x09;
        b += 1;
    }
    table
};

/// Reads a `headers=` argument: a dict or an iterable of pairs.
pub fn extract_headers(headers: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    let Some(headers) = headers else {
        return Ok(out);
    };
    if headers.is_none() {
        return Ok(out);
    }
    let items = match headers.cast::<PyDict>() {
        Ok(d) => d.items().into_any(),
        Err(_) => headers.clone(),
    };
    for pair in items.try_iter()? {
        let (k, v): (String, Bound<'_, PyAny>) = pair?.extract()?;
        let v = v.str()?.to_string();
        out.push((checked_header(&k, &v)?, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{checked_header, checked_header_bytes};
    use pyo3::Python;

    #[test]
    fn header_checks_agree_with_the_http_crate() {
        let names = [
            "x-id",
            "Content-Type",
            "a!#$%&'*+-.^_`|~9",
            "",
            "bad name",
            "bad:name",
            "é",
            "x\u{7f}",
        ];
        let values = [
            "ok",
            "tab\tok",
            "caf\u{e9}",
            "",
            "bad\u{1}",
            "del\u{7f}",
            "bad\r\n",
        ];
        for name in names {
            for value in values {
                let ours = checked_header(name, value);
                let theirs = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                    && http::HeaderValue::from_bytes(value.as_bytes()).is_ok();
                assert_eq!(ours.is_ok(), theirs, "{name:?}: {value:?}");
                if let Ok(lower) = ours {
                    assert_eq!(lower, name.to_ascii_lowercase());
                }
            }
        }
    }

    #[test]
    fn asgi_header_bytes_are_checked_like_str_headers_and_kept_whole() {
        let (name, value) = checked_header_bytes(b"X-Latin", b"caf\xe9").unwrap();
        assert_eq!(name.as_str(), "x-latin");
        assert_eq!(value.as_bytes(), b"caf\xe9");
        assert!(checked_header_bytes(b"bad name", b"1").is_err());
        assert!(checked_header_bytes(b"x-bad", b"a\r\nb").is_err());
        assert!(checked_header_bytes(b"x-bad", b"a\x01b").is_err());
    }

    #[test]
    fn both_doors_report_the_same_fault_first() {
        Python::initialize();
        Python::attach(|py| {
            let message = |e: pyo3::PyErr| e.value(py).to_string();
            for (name, value) in [
                ("bad name", "a\r\nb"),
                ("bad name", "a\x01b"),
                ("bad name", "ok"),
                ("x-ok", "a\x01b"),
                ("x-ok", "a\nb"),
            ] {
                let text = checked_header(name, value).unwrap_err();
                let bytes = checked_header_bytes(name.as_bytes(), value.as_bytes()).unwrap_err();
                assert_eq!(message(text), message(bytes), "{name:?}: {value:?}");
            }
        });
    }
}
