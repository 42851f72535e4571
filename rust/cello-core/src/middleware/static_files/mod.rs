//! Static files: a layer that answers `GET` and `HEAD` under a prefix with
//! the files of a directory, without routing or Python.
//!
//! The file is opened and inspected on the I/O thread (a few system calls
//! that the page cache makes fast) and sent as a [`FileSlice`], read chunk
//! by chunk as the connection takes it, so a large file costs a constant
//! amount of memory. A path that names no file falls through to routing, so
//! an app's own routes under the prefix still answer; a path that tries to
//! leave the root or reach a hidden file is refused with the framework's
//! ordinary 404.

mod cache;
mod conditional;
mod listing;
mod mime;
mod path;
mod range;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

use super::{Answer, Content, Context, Layer, Stage};
use crate::http::file::FileSlice;
use crate::http::problem::Problem;
use crate::http::request::RequestHead;
use conditional::Validators;
use mime::Encoding;
use path::{Found, Hidden, Miss, Target};
use range::Ranged;

/// How a static files layer is set up.
#[derive(Debug, Clone)]
pub struct StaticFilesOptions {
    /// The directory served.
    pub root: PathBuf,
    /// The URL path it is served under (`/static`; `/` or empty: all paths).
    pub prefix: String,
    /// The file a directory's URL serves (`index.html`), if any.
    pub index: Option<String>,
    pub etag: bool,
    pub last_modified: bool,
    /// A duration (`1h`, `3600`) or a literal `Cache-Control` value.
    pub cache_control: Option<String>,
    /// Lists a directory that has no index file.
    pub listing: bool,
    /// Serves `file.br` or `file.gz` to clients that accept them.
    pub precompressed: bool,
    /// Added to every file response.
    pub headers: Vec<(String, String)>,
    /// Glob patterns of files never served (dotfiles never are).
    pub hide: Vec<String>,
}

impl StaticFilesOptions {
    pub fn new(root: impl Into<PathBuf>, prefix: impl Into<String>) -> Self {
        StaticFilesOptions {
            root: root.into(),
            prefix: prefix.into(),
            index: Some("index.html".to_owned()),
            etag: true,
            last_modified: true,
            cache_control: None,
            listing: false,
            precompressed: false,
            headers: Vec::new(),
            hide: Vec::new(),
        }
    }
}

/// A setting a static files layer cannot work with; `option` names it.
#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub option: &'static str,
    pub message: String,
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "static files option '{}': {}", self.option, self.message)
    }
}

impl std::error::Error for ConfigError {}

fn bad(option: &'static str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        option,
        message: message.into(),
    }
}

pub struct StaticFiles {
    root: PathBuf,
    /// The prefix's segments, decoded (`["static"]`).
    prefix: Vec<String>,
    /// The prefix as paths start with it (`/static`, or empty).
    prefix_path: String,
    index: Option<String>,
    etag: bool,
    last_modified: bool,
    cache_control: Option<HeaderValue>,
    listing: bool,
    precompressed: bool,
    headers: Vec<(HeaderName, HeaderValue)>,
    hidden: Hidden,
}

impl StaticFiles {
    /// Checks the options; the root is resolved once, here.
    pub fn new(options: StaticFilesOptions) -> Result<Self, ConfigError> {
        let root = std::fs::canonicalize(&options.root).map_err(|e| {
            bad(
                "root",
                format!("{} cannot be served: {e}", options.root.display()),
            )
        })?;
        if !root.is_dir() {
            return Err(bad(
                "root",
                format!("{} is not a directory", root.display()),
            ));
        }
        let prefix_path = options.prefix.trim_end_matches('/').to_owned();
        if !options.prefix.starts_with('/') {
            return Err(bad(
                "prefix",
                format!("{:?} must start with '/'", options.prefix),
            ));
        }
        let prefix: Vec<String> = prefix_path.split('/').skip(1).map(str::to_owned).collect();
        if prefix
            .iter()
            .any(|s| s.is_empty() || s == "." || s == ".." || s.contains(['%', '\\', '?', '#']))
        {
            return Err(bad(
                "prefix",
                format!(
                    "{:?} must be a plain path (no empty, '.' or '..' segments, no %, \\, ? or #)",
                    options.prefix
                ),
            ));
        }
        if let Some(index) = &options.index {
            if index.is_empty()
                || index.starts_with('.')
                || index.contains(['/', '\\'])
                || index.chars().any(char::is_control)
            {
                return Err(bad(
                    "index_file",
                    format!("{index:?} must be a plain file name"),
                ));
            }
        }
        let cache_control = match &options.cache_control {
            Some(setting) => {
                let value = cache::cache_control(setting).map_err(|e| bad("cache_control", e.0))?;
                Some(
                    HeaderValue::from_str(&value)
                        .map_err(|e| bad("cache_control", e.to_string()))?,
                )
            }
            None => None,
        };
        let mut headers = Vec::with_capacity(options.headers.len());
        for (name, value) in &options.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| bad("header", format!("{name:?} is not a header name")))?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                bad(
                    "header",
                    format!("{value:?} is not a valid value for {name}"),
                )
            })?;
            headers.push((name, value));
        }
        if let Some(pattern) = options.hide.iter().find(|p| p.is_empty()) {
            return Err(bad("hide_pattern", format!("{pattern:?} is empty")));
        }
        Ok(StaticFiles {
            root,
            prefix,
            prefix_path,
            index: options.index,
            etag: options.etag,
            last_modified: options.last_modified,
            cache_control,
            listing: options.listing,
            precompressed: options.precompressed,
            headers,
            hidden: Hidden::new(options.hide),
        })
    }

    fn covers(&self, path: &str) -> bool {
        path.strip_prefix(self.prefix_path.as_str())
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }

    /// The file, directory page or redirect for `segments`; `None` lets
    /// routing answer.
    fn serve(
        &self,
        head: &RequestHead,
        segments: &[String],
        trailing_slash: bool,
    ) -> Option<Answer> {
        if self.hidden.hides(segments) {
            return Some(not_found(head));
        }
        let mut wanted = self.root.clone();
        wanted.extend(segments);
        let found = match path::open_under(&self.root, &wanted, &self.hidden) {
            Ok(found) => found,
            Err(Miss::Absent) => return None,
            Err(Miss::Forbidden) => return Some(not_found(head)),
        };
        if found.metadata.is_file() {
            // `file.txt/` names no directory: routing decides.
            return (!trailing_slash).then(|| self.file(head, found));
        }
        let index = self.index.as_ref().and_then(|name| {
            match path::open_under(&self.root, &found.path.join(name), &self.hidden) {
                Ok(index) if index.metadata.is_file() => Some(Ok(index)),
                Ok(_) | Err(Miss::Absent) => None,
                Err(Miss::Forbidden) => Some(Err(())),
            }
        });
        if index.is_none() && !self.listing {
            return None;
        }
        if !trailing_slash {
            // Relative links in the page resolve against the directory only
            // when its URL ends in `/`.
            return Some(redirect_to_directory(head));
        }
        match index {
            Some(Ok(index)) => Some(self.file(head, index)),
            Some(Err(())) => Some(not_found(head)),
            None => Some(self.listing_page(&found.path, head)),
        }
    }

    fn listing_page(&self, dir: &Path, head: &RequestHead) -> Answer {
        match listing::render(&self.root, dir, &head.path, &self.hidden) {
            Ok(page) => {
                let mut headers = HeaderMap::with_capacity(2 + self.headers.len());
                headers.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                );
                self.add_configured(&mut headers);
                Answer {
                    status: 200,
                    headers,
                    body: Content::Bytes(Bytes::from(page)),
                }
            }
            Err(_) => not_found(head),
        }
    }

    /// The precompressed version of `found` the client takes, if stored.
    fn variant(&self, head: &RequestHead, found: &Found) -> Option<(Found, Encoding)> {
        let accept = head.headers.get(header::ACCEPT_ENCODING)?.to_str().ok()?;
        mime::accepted(accept).into_iter().find_map(|encoding| {
            let mut name = found.path.clone().into_os_string();
            name.push(".");
            name.push(encoding.suffix());
            match path::open_under(&self.root, Path::new(&name), &self.hidden) {
                Ok(variant) if variant.metadata.is_file() => Some((variant, encoding)),
                _ => None,
            }
        })
    }

    fn file(&self, head: &RequestHead, original: Found) -> Answer {
        let content_type = mime::content_type(&original.path);
        let (found, encoding) = match self.precompressed.then(|| self.variant(head, &original)) {
            Some(Some((variant, encoding))) => (variant, Some(encoding)),
            _ => (original, None),
        };
        let len = found.metadata.len();
        let modified = found.metadata.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let validators = Validators::new(len, modified, encoding.map_or("", Encoding::suffix));

        let mut headers = HeaderMap::with_capacity(8 + self.headers.len());
        if self.etag {
            insert(&mut headers, header::ETAG, &validators.etag);
        }
        if self.last_modified {
            insert(
                &mut headers,
                header::LAST_MODIFIED,
                &validators.last_modified(),
            );
        }
        if let Some(cache) = &self.cache_control {
            headers.insert(header::CACHE_CONTROL, cache.clone());
        }
        if self.precompressed {
            headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        self.add_configured(&mut headers);
        if self.not_modified(head, &validators) {
            return Answer::empty(304, headers);
        }

        insert(&mut headers, header::CONTENT_TYPE, &content_type);
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        if let Some(encoding) = encoding {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(encoding.token()),
            );
        }
        let ranged = match head
            .headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
        {
            Some(range) if self.range_still_fresh(head, &validators) => range::parse(range, len),
            _ => Ranged::Whole,
        };
        let file = Arc::new(found.file);
        match ranged {
            Ranged::Whole => Answer {
                status: 200,
                headers,
                body: Content::File(FileSlice::new(file, 0, len)),
            },
            Ranged::Part { start, end } => {
                insert(
                    &mut headers,
                    header::CONTENT_RANGE,
                    &format!("bytes {start}-{end}/{len}"),
                );
                Answer {
                    status: 206,
                    headers,
                    body: Content::File(FileSlice::new(file, start, end - start + 1)),
                }
            }
            Ranged::Unsatisfiable => {
                let problem = Problem::new(416)
                    .with_detail(format!(
                        "the range asked for is outside the file's {len} bytes"
                    ))
                    .with_instance(head.path.clone());
                let mut answer = Answer::problem(&problem);
                insert(
                    &mut answer.headers,
                    header::CONTENT_RANGE,
                    &format!("bytes */{len}"),
                );
                answer
                    .headers
                    .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                answer
            }
        }
    }

    /// RFC 9110 §13.2.2: `If-None-Match` when sent, else `If-Modified-Since`.
    fn not_modified(&self, head: &RequestHead, validators: &Validators) -> bool {
        let text = |name| {
            head.headers
                .get(name)
                .and_then(|v: &HeaderValue| v.to_str().ok())
        };
        if head.headers.contains_key(header::IF_NONE_MATCH) {
            let etag = self.etag.then_some(validators.etag.as_str());
            return head
                .headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .any(|list| conditional::none_match(list, etag));
        }
        match text(header::IF_MODIFIED_SINCE) {
            Some(since) if self.last_modified => {
                conditional::not_modified_since(since, validators.modified, SystemTime::now())
            }
            _ => false,
        }
    }

    fn range_still_fresh(&self, head: &RequestHead, validators: &Validators) -> bool {
        match head.headers.get(header::IF_RANGE) {
            None => true,
            Some(value) => value
                .to_str()
                .is_ok_and(|v| conditional::range_still_fresh(v, validators, self.etag)),
        }
    }

    fn add_configured(&self, headers: &mut HeaderMap) {
        for (name, value) in &self.headers {
            headers.append(name.clone(), value.clone());
        }
    }
}

impl Layer for StaticFiles {
    fn name(&self) -> &'static str {
        "StaticFiles"
    }

    fn stage(&self) -> Stage {
        Stage::Endpoint
    }

    fn request(&self, head: &mut RequestHead, _context: &mut Context) -> Option<Answer> {
        if head.method != http::Method::GET && head.method != http::Method::HEAD {
            return None;
        }
        if !self.covers(&head.path) {
            return None;
        }
        match path::below_prefix(&self.prefix, head.raw_path(), head.raw_path.is_some()) {
            Target::Refused => Some(not_found(head)),
            Target::Below {
                segments,
                trailing_slash,
            } => self.serve(head, &segments, trailing_slash),
        }
    }
}

fn insert(headers: &mut HeaderMap, name: HeaderName, value: &str) {
    if let Ok(value) = HeaderValue::from_str(value) {
        headers.insert(name, value);
    }
}

/// The framework's ordinary 404, byte for byte, so a refused path cannot be
/// told apart from one that names nothing.
fn not_found(head: &RequestHead) -> Answer {
    Answer::problem(
        &Problem::new(404)
            .with_detail(format!("no route for {} {}", head.method, head.path))
            .with_instance(head.path.clone()),
    )
}

/// A directory's URL without its final `/`: the same URL with it.
fn redirect_to_directory(head: &RequestHead) -> Answer {
    let mut location = format!("{}/", head.raw_path());
    if !head.query.is_empty() {
        location.push('?');
        location.push_str(&head.query);
    }
    let mut headers = HeaderMap::with_capacity(1);
    insert(&mut headers, header::LOCATION, &location);
    Answer::empty(301, headers)
}

#[cfg(test)]
mod tests;
