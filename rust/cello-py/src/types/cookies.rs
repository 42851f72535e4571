//! `Set-Cookie` values: the name checked, the value encoded, every
//! attribute validated, as anything written unchecked into the header could
//! add attributes or headers (RFC 6265 §4.1).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyInt};

use crate::ffi::support::support;

/// A cookie's attributes, `expires` already an HTTP date.
pub(crate) struct CookieAttributes<'a> {
    pub(crate) max_age: Option<i64>,
    pub(crate) expires: Option<String>,
    pub(crate) path: Option<&'a str>,
    pub(crate) domain: Option<&'a str>,
    pub(crate) secure: bool,
    pub(crate) httponly: bool,
    pub(crate) samesite: Option<&'a str>,
}

/// The `Set-Cookie` value: the name must be a token, the value is
/// percent-encoded into cookie-octets, each attribute is checked.
pub(crate) fn set_cookie_value(
    name: &str,
    value: &str,
    a: &CookieAttributes<'_>,
) -> PyResult<String> {
    if name.is_empty() || !name.bytes().all(is_cookie_name_byte) {
        return Err(PyValueError::new_err(format!(
            "invalid cookie name {name:?}: it must be a non-empty HTTP token"
        )));
    }
    let mut cookie = format!(
        "{name}={}",
        percent_encoding::utf8_percent_encode(value, COOKIE_VALUE_ENCODE)
    );
    if let Some(age) = a.max_age {
        cookie.push_str(&format!("; Max-Age={age}"));
    }
    if let Some(expires) = &a.expires {
        cookie.push_str(&format!("; Expires={expires}"));
    }
    if let Some(path) = a.path {
        check_attribute("Path", path, is_cookie_path_byte, PATH_RULE)?;
        cookie.push_str(&format!("; Path={path}"));
    }
    if let Some(domain) = a.domain {
        check_attribute("Domain", domain, is_cookie_domain_byte, DOMAIN_RULE)?;
        cookie.push_str(&format!("; Domain={domain}"));
    }
    if a.secure {
        cookie.push_str("; Secure");
    }
    if a.httponly {
        cookie.push_str("; HttpOnly");
    }
    if let Some(site) = a.samesite {
        cookie.push_str(&format!("; SameSite={}", same_site(site, a.secure)?));
    }
    Ok(cookie)
}

fn check_attribute(attr: &str, value: &str, allowed: fn(u8) -> bool, rule: &str) -> PyResult<()> {
    if value.is_empty() || !value.bytes().all(allowed) {
        return Err(PyValueError::new_err(format!(
            "invalid cookie {attr} {value:?}: it must be {rule}"
        )));
    }
    Ok(())
}

const PATH_RULE: &str = "non-empty ASCII without ';' or control characters";
const DOMAIN_RULE: &str = "a host name: ASCII letters, digits, '.', '-' or '_'";

/// RFC 6265 `path-value`: any CHAR except CTLs and `;` (ASCII only: a
/// non-ASCII path is sent percent-encoded).
fn is_cookie_path_byte(b: u8) -> bool {
    (0x20..0x7f).contains(&b) && b != b';'
}

/// A host name, optionally with the leading dot older clients expect.
fn is_cookie_domain_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_')
}

/// Browsers drop a `SameSite=None` cookie that is not `Secure`, so that
/// combination is refused rather than silently lost.
fn same_site(site: &str, secure: bool) -> PyResult<&'static str> {
    match site.to_ascii_lowercase().as_str() {
        "lax" => Ok("Lax"),
        "strict" => Ok("Strict"),
        "none" if secure => Ok("None"),
        "none" => Err(PyValueError::new_err(
            "samesite='None' needs secure=True: browsers drop such a cookie otherwise",
        )),
        _ => Err(PyValueError::new_err(format!(
            "samesite must be Lax, Strict or None, not {site:?}"
        ))),
    }
}

/// `expires` as an HTTP date, by `cello._support.cookie_expires`: Python's
/// `email.utils` already formats and parses them, and this is no hot path.
pub(crate) fn cookie_expires(value: &Bound<'_, PyAny>) -> PyResult<String> {
    let py = value.py();
    support(py)?
        .cookie_expires
        .bind(py)
        .call1((value,))?
        .extract()
}

/// `max_age` in whole seconds; a bool, a float or a string is refused
/// rather than written into the header as its text.
pub(crate) fn cookie_max_age(value: &Bound<'_, PyAny>) -> PyResult<i64> {
    let refused = || {
        PyValueError::new_err(format!(
            "max_age must be an int number of seconds, not {}",
            value.repr().map(|r| r.to_string()).unwrap_or_default()
        ))
    };
    if value.is_instance_of::<PyBool>() || !value.is_instance_of::<PyInt>() {
        return Err(refused());
    }
    value.extract().map_err(|_| refused())
}

fn is_cookie_name_byte(b: u8) -> bool {
    b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)
}

/// Bytes outside RFC 6265's cookie-octet set, percent-encoded on the way out
/// (and decoded again by `Request.cookies`).
const COOKIE_VALUE_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b',')
    .add(b';')
    .add(b'\\')
    .add(b'%');
