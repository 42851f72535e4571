//! Authentication layers: JWT bearer tokens and API keys, checked in Rust
//! before routing, so a request without valid credentials never reaches
//! Python. Both answer a refusal with a 401 problem and a
//! `WWW-Authenticate` challenge, and both let through the paths they are
//! told to skip and every CORS preflight (browsers send preflights without
//! credentials).

mod api_key;
mod jwt;

pub use api_key::{ApiKey, ApiKeyAuth, ApiKeyError};
pub use jwt::{JwtAuth, JwtError, JwtOptions, MAX_LEEWAY, MAX_TOKEN_LEN};

use http::header::{self, HeaderValue};
use http::Method;
use subtle::ConstantTimeEq;

use super::Answer;
use crate::http::problem::Problem;
use crate::http::request::RequestHead;

/// Whether `a` and `b` hold the same bytes, in a time that depends only on
/// their lengths, never on where they first differ. The length is not
/// treated as secret (as with `hmac.compare_digest`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// Paths a layer lets through without credentials: each one exactly, and
/// the paths below it (`/public` covers `/public/logo.png`, not
/// `/publicity`).
#[derive(Debug, Clone, Default)]
pub struct SkipPaths(Vec<String>);

impl SkipPaths {
    /// The paths, each starting with `/`; a trailing `/` is ignored.
    pub fn new(paths: impl IntoIterator<Item = String>) -> Result<Self, String> {
        let mut kept = Vec::new();
        for path in paths {
            if !path.starts_with('/') {
                return Err(format!(
                    "skip paths start with '/', which {path:?} does not"
                ));
            }
            let trimmed = path.trim_end_matches('/');
            kept.push(trimmed.to_owned());
        }
        Ok(SkipPaths(kept))
    }

    pub fn covers(&self, path: &str) -> bool {
        self.0.iter().any(|skip| {
            skip.is_empty()
                || path
                    .strip_prefix(skip.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
    }
}

/// Whether a request needs no credentials: a skipped path, or a CORS
/// preflight (`OPTIONS` with `Access-Control-Request-Method`).
fn exempt(head: &RequestHead, skip: &SkipPaths) -> bool {
    (head.method == Method::OPTIONS
        && head
            .headers
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD))
        || skip.covers(&head.path)
}

/// A 401 problem whose detail says what was wrong, with the challenge the
/// client should answer.
fn unauthorized(head: &RequestHead, detail: &str, challenge: HeaderValue) -> Answer {
    let problem = Problem::new(401)
        .with_detail(detail)
        .with_instance(head.path.as_str());
    let mut answer = Answer::problem(&problem);
    answer.headers.insert(header::WWW_AUTHENTICATE, challenge);
    answer
}

#[cfg(test)]
mod tests;
