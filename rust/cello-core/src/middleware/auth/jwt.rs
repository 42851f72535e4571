//! JWT bearer authentication: the token comes from a header
//! (`Authorization: Bearer <token>`) or a cookie, is verified with the one
//! configured algorithm and key, and its claims become the request's
//! `jwt_claims` and `user` context values.
//!
//! Only the configured algorithm is accepted, so neither `alg: none` nor a
//! token signed HS256 with an RSA public key as its secret (algorithm
//! confusion) gets through. The key and the validation rules are built
//! once, with the layer; a request costs one signature check and one
//! parse of the claims, which handlers get as the JSON text it carried.

use base64::Engine;
use http::header::{self, HeaderName, HeaderValue};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::value::RawValue;

use super::{exempt, unauthorized, SkipPaths};
use crate::http::request::RequestHead;
use crate::middleware::{Answer, Context, Layer, Stage};

/// The longest token read. Real tokens are a few hundred bytes; the bound
/// keeps a client from making the layer decode and hash megabytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The most leeway allowed for `exp` and `nbf`, in seconds (a day): more
/// would make expiry meaningless.
pub const MAX_LEEWAY: u64 = 86_400;

/// The JWT layer's configuration, as the Python `JwtConfig` gives it.
#[derive(Clone)]
pub struct JwtOptions {
    /// `HS256`, `HS384`, `HS512`, `RS256`, `RS384`, `RS512`, `ES256` or `ES384`.
    pub algorithm: String,
    /// The shared secret for HS*, the PEM public key for RS* and ES*.
    pub key: Vec<u8>,
    pub header_name: String,
    /// The scheme before the token in the header (`Bearer`); empty when the
    /// header holds the bare token.
    pub header_prefix: String,
    /// A cookie read for the token when the header has none.
    pub cookie_name: Option<String>,
    /// Seconds of clock skew allowed when checking `exp` and `nbf`.
    pub leeway: u64,
    /// Accepted `iss` values; when any are given a token must carry one.
    pub issuer: Vec<String>,
    /// Accepted `aud` values; when any are given a token must carry one.
    pub audience: Vec<String>,
    pub skip_paths: Vec<String>,
}

impl JwtOptions {
    /// HS256 with `secret`, the token in `Authorization: Bearer`.
    pub fn hs256(secret: impl Into<Vec<u8>>) -> Self {
        JwtOptions {
            algorithm: "HS256".into(),
            key: secret.into(),
            header_name: "Authorization".into(),
            header_prefix: "Bearer".into(),
            cookie_name: None,
            leeway: 0,
            issuer: Vec::new(),
            audience: Vec::new(),
            skip_paths: Vec::new(),
        }
    }
}

impl std::fmt::Debug for JwtOptions {
    /// Everything but the key: a secret must not reach a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtOptions")
            .field("algorithm", &self.algorithm)
            .field("key", &format_args!("<{} bytes>", self.key.len()))
            .field("header_name", &self.header_name)
            .field("header_prefix", &self.header_prefix)
            .field("cookie_name", &self.cookie_name)
            .field("leeway", &self.leeway)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("skip_paths", &self.skip_paths)
            .finish()
    }
}

/// A configuration the layer cannot be built from, saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtError(pub String);

impl std::fmt::Display for JwtError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for JwtError {}

/// The challenge sent when no token came with the request (RFC 6750 §3).
const CHALLENGE_MISSING: HeaderValue = HeaderValue::from_static("Bearer");
/// The challenge sent when the token given was refused.
const CHALLENGE_INVALID: HeaderValue = HeaderValue::from_static("Bearer error=\"invalid_token\"");

pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
    header: HeaderName,
    prefix: String,
    cookie: Option<String>,
    skip: SkipPaths,
}

impl JwtAuth {
    pub fn new(options: JwtOptions) -> Result<Self, JwtError> {
        let error = |message: String| Err(JwtError(message));
        let algorithm = match options.algorithm.to_ascii_uppercase().as_str() {
            "HS256" => Algorithm::HS256,
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            "RS256" => Algorithm::RS256,
            "RS384" => Algorithm::RS384,
            "RS512" => Algorithm::RS512,
            "ES256" => Algorithm::ES256,
            "ES384" => Algorithm::ES384,
            other => {
                return error(format!(
                    "unknown JWT algorithm {other:?}: use HS256, HS384, HS512, RS256, RS384, \
                     RS512, ES256 or ES384"
                ))
            }
        };
        let key = decoding_key(algorithm, &options.key)?;
        let header = HeaderName::from_bytes(options.header_name.as_bytes())
            .map_err(|_| JwtError(format!("{:?} is not a header name", options.header_name)))?;
        if options.header_prefix.bytes().any(|b| !b.is_ascii_graphic()) {
            return error(format!(
                "header_prefix {:?} must be one word of visible ASCII (or empty)",
                options.header_prefix
            ));
        }
        if let Some(cookie) = &options.cookie_name {
            let is_token_char =
                |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
            if cookie.is_empty() || !cookie.bytes().all(is_token_char) {
                return error(format!("{cookie:?} is not a cookie name"));
            }
        }
        if options.leeway > MAX_LEEWAY {
            return error(format!(
                "leeway is at most {MAX_LEEWAY} seconds, not {}",
                options.leeway
            ));
        }
        let mut validation = Validation::new(algorithm);
        validation.leeway = options.leeway;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let mut required = vec!["exp"];
        if !options.issuer.is_empty() {
            validation.set_issuer(&options.issuer);
            required.push("iss");
        }
        if !options.audience.is_empty() {
            validation.set_audience(&options.audience);
            required.push("aud");
        }
        validation.set_required_spec_claims(&required);
        Ok(JwtAuth {
            key,
            validation,
            header,
            prefix: options.header_prefix,
            cookie: options.cookie_name,
            skip: SkipPaths::new(options.skip_paths).map_err(JwtError)?,
        })
    }

    /// The token the request carries: the header's first, else the cookie's.
    fn token<'a>(&self, head: &'a RequestHead) -> Option<&'a [u8]> {
        if let Some(value) = head.headers.get(&self.header) {
            if let Some(token) = strip_scheme(value.as_bytes(), self.prefix.as_bytes()) {
                return Some(token);
            }
        }
        let name = self.cookie.as_deref()?;
        head.headers
            .get_all(header::COOKIE)
            .iter()
            .find_map(|value| cookie(value.as_bytes(), name.as_bytes()))
    }

    /// The claims of a valid token, as JSON text, or why it is refused.
    pub fn verify(&self, token: &[u8]) -> Result<String, &'static str> {
        if token.len() > MAX_TOKEN_LEN {
            return Err("Token is too large");
        }
        match jsonwebtoken::decode::<Box<RawValue>>(token, &self.key, &self.validation) {
            Ok(data) => Ok(data.claims.get().to_owned()),
            Err(error) => Err(describe(error.kind(), token)),
        }
    }
}

/// The key for `algorithm`: the secret itself, or a PEM public key of the
/// algorithm's family (and, for ECDSA, its curve).
fn decoding_key(algorithm: Algorithm, key: &[u8]) -> Result<DecodingKey, JwtError> {
    let name = format!("{algorithm:?}");
    if key.is_empty() {
        return Err(JwtError(format!("the {name} secret must not be empty")));
    }
    let pem_start = |labels: &[&str]| {
        let text = String::from_utf8_lossy(key);
        let text = text.trim_start();
        labels
            .iter()
            .any(|label| text.starts_with(&format!("-----BEGIN {label}-----")))
    };
    let not_public = || {
        JwtError(format!(
            "{name} needs a PEM public key (\"-----BEGIN PUBLIC KEY-----\"), not a secret or a \
             private key"
        ))
    };
    match algorithm {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => Ok(DecodingKey::from_secret(key)),
        Algorithm::RS256 | Algorithm::RS384 | Algorithm::RS512 => {
            if !pem_start(&["PUBLIC KEY", "RSA PUBLIC KEY"]) {
                return Err(not_public());
            }
            DecodingKey::from_rsa_pem(key)
                .map_err(|e| JwtError(format!("{name} key is not an RSA public key: {e}")))
        }
        _ => {
            if !pem_start(&["PUBLIC KEY"]) {
                return Err(not_public());
            }
            let decoded = DecodingKey::from_ec_pem(key)
                .map_err(|e| JwtError(format!("{name} key is not an EC public key: {e}")))?;
            // An uncompressed point is 0x04 and two coordinates of the
            // curve's size: 32 bytes each on P-256, 48 on P-384.
            let (curve, point_len) = match algorithm {
                Algorithm::ES256 => ("P-256", 65),
                _ => ("P-384", 97),
            };
            if decoded.as_bytes().len() != point_len {
                return Err(JwtError(format!("{name} needs a {curve} public key")));
            }
            Ok(decoded)
        }
    }
}

/// The token after `scheme` and a space (the scheme matched regardless of
/// case, as RFC 9110 says), or the whole value when there is no scheme.
fn strip_scheme<'a>(value: &'a [u8], scheme: &[u8]) -> Option<&'a [u8]> {
    let rest = if scheme.is_empty() {
        value
    } else {
        let (given, rest) = value.split_at_checked(scheme.len())?;
        if !given.eq_ignore_ascii_case(scheme) || rest.first() != Some(&b' ') {
            return None;
        }
        rest
    };
    let token = rest.trim_ascii();
    (!token.is_empty()).then_some(token)
}

/// The value of the cookie `name` in one `Cookie` header.
fn cookie<'a>(header: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    header.split(|b| *b == b';').find_map(|pair| {
        let pair = pair.trim_ascii();
        let at = pair.iter().position(|b| *b == b'=')?;
        let (key, value) = (&pair[..at], &pair[at + 1..]);
        if key != name {
            return None;
        }
        let value = value
            .strip_prefix(b"\"")
            .and_then(|v| v.strip_suffix(b"\""))
            .unwrap_or(value);
        (!value.is_empty()).then_some(value)
    })
}

/// Why a token was refused, in the words the 401's `detail` uses.
fn describe(kind: &ErrorKind, token: &[u8]) -> &'static str {
    match kind {
        ErrorKind::ExpiredSignature => "Token has expired",
        ErrorKind::ImmatureSignature => "Token is not valid yet",
        ErrorKind::InvalidSignature => "Invalid token signature",
        ErrorKind::InvalidIssuer => "Invalid issuer",
        ErrorKind::InvalidAudience => "Invalid audience",
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => "Token algorithm not allowed",
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "iss" => "Invalid issuer",
            "aud" => "Invalid audience",
            _ => "Token has no expiry (exp claim)",
        },
        ErrorKind::InvalidClaimFormat(_) => "Malformed token claims",
        // A header naming an algorithm this crate does not know (`none`,
        // `EdDSA`...) fails to parse; say so rather than "malformed".
        ErrorKind::Json(_) if names_an_algorithm(token) => "Token algorithm not allowed",
        _ => "Malformed token",
    }
}

/// Whether the token's header is JSON naming an algorithm the crate does
/// not know (`none`...), which is why it did not parse.
fn names_an_algorithm(token: &[u8]) -> bool {
    const KNOWN: [&str; 12] = [
        "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
        "ES384", "EdDSA",
    ];
    let Some(encoded) = token.split(|b| *b == b'.').next() else {
        return false;
    };
    let Ok(decoded) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(encoded) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Value>(&decoded)
        .ok()
        .and_then(|header| {
            header
                .get("alg")
                .and_then(serde_json::Value::as_str)
                .map(|alg| !KNOWN.contains(&alg))
        })
        .unwrap_or(false)
}

impl Layer for JwtAuth {
    fn name(&self) -> &'static str {
        "JwtAuth"
    }

    fn stage(&self) -> Stage {
        Stage::Authentication
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if exempt(head, &self.skip) {
            return None;
        }
        let Some(token) = self.token(head) else {
            return Some(unauthorized(
                head,
                "Missing authentication token",
                CHALLENGE_MISSING,
            ));
        };
        match self.verify(token) {
            Ok(claims) => {
                context.insert_json("jwt_claims", claims.clone());
                context.insert_json("user", claims);
                None
            }
            Err(detail) => Some(unauthorized(head, detail, CHALLENGE_INVALID)),
        }
    }
}
