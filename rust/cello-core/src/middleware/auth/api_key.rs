//! API-key authentication: a header (`X-API-Key`) must hold one of the
//! configured keys; the key's name becomes the request's `api_key_name`
//! and its `user` (`{"name": ...}`, so guards can tell an authenticated
//! request apart).
//!
//! The key given is hashed once and its digest compared, in constant time,
//! with the digest of every configured key, without stopping at a match:
//! neither how much of a key was right nor which key matched shows in the
//! time a request takes, and comparing digests hides the keys' lengths.

use http::header::{HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::{exempt, unauthorized, SkipPaths};
use crate::http::request::RequestHead;
use crate::json::write_str;
use crate::middleware::{Answer, Context, Layer, Stage};

/// A configuration the layer cannot be built from, saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyError(pub String);

impl std::fmt::Display for ApiKeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ApiKeyError {}

struct Key {
    digest: [u8; 32],
    name: String,
    /// `{"name": ...}`, built once.
    user: String,
}

pub struct ApiKeyAuth {
    keys: Vec<Key>,
    header: HeaderName,
    challenge: HeaderValue,
    skip: SkipPaths,
}

/// One accepted key, the name handlers see for it and, optionally, the
/// whole `user` document (a JSON object: roles, permissions... for guards).
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub key: String,
    pub name: String,
    /// JSON object text; `None` makes it `{"name": <name>}`.
    pub user: Option<String>,
}

impl From<(String, String)> for ApiKey {
    fn from((key, name): (String, String)) -> Self {
        ApiKey {
            key,
            name,
            user: None,
        }
    }
}

impl ApiKeyAuth {
    /// `keys` pairs each key with the name handlers see for it.
    pub fn new(
        keys: impl IntoIterator<Item = impl Into<ApiKey>>,
        header: &str,
        skip_paths: Vec<String>,
    ) -> Result<Self, ApiKeyError> {
        let header_name = HeaderName::from_bytes(header.as_bytes())
            .map_err(|_| ApiKeyError(format!("{header:?} is not a header name")))?;
        let mut built = Vec::new();
        for key in keys {
            let ApiKey { key, name, user } = key.into();
            if key.is_empty() {
                return Err(ApiKeyError("an API key must not be empty".into()));
            }
            let user = match user {
                Some(user) if user.trim_start().starts_with('{') => user,
                Some(_) => {
                    return Err(ApiKeyError(format!(
                        "the user of API key {name:?} must be a JSON object"
                    )))
                }
                None => {
                    let mut user = Vec::with_capacity(name.len() + 12);
                    user.extend_from_slice(b"{\"name\":");
                    write_str(&mut user, &name);
                    user.push(b'}');
                    String::from_utf8(user).expect("JSON text is UTF-8")
                }
            };
            built.push(Key {
                digest: Sha256::digest(key.as_bytes()).into(),
                name,
                user,
            });
        }
        if built.is_empty() {
            return Err(ApiKeyError("give at least one API key".into()));
        }
        if built.len() > u32::MAX as usize {
            return Err(ApiKeyError("too many API keys".into()));
        }
        // The scheme is not a registered one, but a 401 must carry a
        // challenge (RFC 9110 §15.5.2), and this one tells clients where
        // the key goes.
        let challenge = HeaderValue::from_str(&format!("ApiKey header=\"{}\"", header_name))
            .expect("a header name is a valid header value");
        Ok(ApiKeyAuth {
            keys: built,
            header: header_name,
            challenge,
            skip: SkipPaths::new(skip_paths).map_err(ApiKeyError)?,
        })
    }

    /// The index of the key `given` matches, after comparing it with all.
    fn find(&self, given: &[u8]) -> Option<usize> {
        let digest: [u8; 32] = Sha256::digest(given).into();
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, key) in self.keys.iter().enumerate() {
            let matches = key.digest.ct_eq(&digest);
            index.conditional_assign(&(i as u32), matches);
            found |= matches;
        }
        bool::from(found).then_some(index as usize)
    }
}

impl Layer for ApiKeyAuth {
    fn name(&self) -> &'static str {
        "ApiKeyAuth"
    }

    fn stage(&self) -> Stage {
        Stage::Authentication
    }

    fn request(&self, head: &mut RequestHead, context: &mut Context) -> Option<Answer> {
        if exempt(head, &self.skip) {
            return None;
        }
        let given = head
            .headers
            .get(&self.header)
            .map(|v| v.as_bytes().trim_ascii())
            .filter(|v| !v.is_empty());
        let Some(given) = given else {
            return Some(unauthorized(
                head,
                "Missing API key",
                self.challenge.clone(),
            ));
        };
        match self.find(given) {
            Some(at) => {
                let key = &self.keys[at];
                context.insert("api_key_name", key.name.clone());
                context.insert_json("user", key.user.clone());
                None
            }
            None => Some(unauthorized(
                head,
                "Invalid API key",
                self.challenge.clone(),
            )),
        }
    }
}
