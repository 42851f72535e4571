//! A request's TLS session as Python sees it: the ASGI TLS extension's
//! dictionary, for `request.tls` and hosted apps' `scope["extensions"]["tls"]`.

use cello_core::server::tls::{to_pem, PeerTls};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

/// `{"server_cert": None, "client_cert_chain": [PEM, ...], "client_cert_name":
/// None, "client_cert_error": None, "tls_version": int, "cipher_suite": int}`.
/// A client certificate is only ever here once verified (an unverifiable one
/// fails the handshake), so `client_cert_error` is None; the subject's name
/// is not parsed out (`client_cert_name` None): read it from the PEM.
pub(crate) fn tls_extension<'py>(py: Python<'py>, tls: &PeerTls) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    let chain = PyList::empty(py);
    for der in &tls.client_chain {
        chain.append(to_pem(der))?;
    }
    dict.set_item(intern!(py, "server_cert"), py.None())?;
    dict.set_item(intern!(py, "client_cert_chain"), chain)?;
    dict.set_item(intern!(py, "client_cert_name"), py.None())?;
    dict.set_item(intern!(py, "client_cert_error"), py.None())?;
    dict.set_item(intern!(py, "tls_version"), tls.version)?;
    dict.set_item(intern!(py, "cipher_suite"), tls.cipher_suite)?;
    Ok(dict)
}

/// Adds the TLS extension to a hosted app's scope when the request came over TLS.
pub(crate) fn add_to_scope(scope: &Bound<'_, PyDict>, tls: Option<&PeerTls>) -> PyResult<()> {
    let Some(tls) = tls else { return Ok(()) };
    let py = scope.py();
    let extensions = match scope.get_item(intern!(py, "extensions"))? {
        Some(ext) => ext.cast_into::<PyDict>()?,
        None => {
            let ext = PyDict::new(py);
            scope.set_item(intern!(py, "extensions"), &ext)?;
            ext
        }
    };
    extensions.set_item(intern!(py, "tls"), tls_extension(py, tls)?)
}
