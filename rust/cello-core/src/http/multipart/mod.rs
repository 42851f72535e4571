//! Streaming `multipart/form-data` parsing (RFC 7578) with `multer`, fed
//! chunk by chunk: whoever holds the body (hyper's stream, a spool file,
//! ASGI `receive()` messages) pushes it in as it comes. File parts go
//! straight to disk in a private upload directory; text fields stay in
//! memory. Every limit is checked as the bytes arrive, so an oversized
//! form is refused without reading the rest of it.

mod disposition;
mod store;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use multer::Multipart;

pub use disposition::{parse as parse_disposition, Disposition};
pub use store::{Spool, SpoolFile, Spooled, UploadDir, SPOOL_PREFIX, UPLOAD_DIR_PREFIX};

/// The limits one parse enforces. Defaults: 10 MiB per file, 50 MiB per
/// form, 1 MiB per text field, 1000 text fields, 100 files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_file_size: u64,
    pub max_form_size: u64,
    pub max_field_size: u64,
    pub max_fields: usize,
    pub max_files: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_size: 10 * 1024 * 1024,
            max_form_size: 50 * 1024 * 1024,
            max_field_size: 1024 * 1024,
            max_fields: 1000,
            max_files: 100,
        }
    }
}

/// Why a form could not be read; the message is the problem's detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormError {
    /// Over one of the limits: 413.
    TooLarge(String),
    /// Not a well-formed multipart body: 400.
    Malformed(String),
    /// The server could not store an upload: 500.
    Storage(String),
}

impl FormError {
    pub fn status(&self) -> u16 {
        match self {
            FormError::TooLarge(_) => 413,
            FormError::Malformed(_) => 400,
            FormError::Storage(_) => 500,
        }
    }

    pub fn detail(&self) -> &str {
        match self {
            FormError::TooLarge(d) | FormError::Malformed(d) | FormError::Storage(d) => d,
        }
    }
}

impl std::fmt::Display for FormError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.detail())
    }
}

/// A text field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextField {
    pub name: String,
    pub value: String,
}

/// A file part, stored in the form's upload directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilePart {
    pub name: String,
    /// As the client sent it: never to be used as a path.
    pub filename: String,
    pub content_type: Option<String>,
    pub path: PathBuf,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    Text(TextField),
    File(FilePart),
}

/// A parsed form: its parts in arrival order, and the directory holding
/// its files (None when it has none). The files live as long as `dir`.
#[derive(Debug)]
pub struct Form {
    pub parts: Vec<Part>,
    pub dir: Option<Arc<UploadDir>>,
}

/// What the parser has been given and not yet consumed.
#[derive(Default)]
struct Inbox {
    chunks: VecDeque<Bytes>,
    ended: bool,
}

/// `multer`'s input: the inbox, "pending" while it is empty and open.
struct InboxStream(Arc<Mutex<Inbox>>);

impl futures_core::Stream for InboxStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut inbox = self.0.lock().unwrap_or_else(|p| p.into_inner());
        match inbox.chunks.pop_front() {
            Some(chunk) => Poll::Ready(Some(Ok(chunk))),
            None if inbox.ended => Poll::Ready(None),
            None => Poll::Pending,
        }
    }
}

type Parse = Pin<Box<dyn Future<Output = Result<Form, FormError>> + Send>>;

/// A push parser: `feed` each chunk, then `finish`. Nothing is ever
/// waiting on a wake-up: the parse is polled whenever input arrives, and
/// it only ever waits for more input.
pub struct FormParser {
    inbox: Arc<Mutex<Inbox>>,
    parse: Parse,
    outcome: Option<Result<Form, FormError>>,
    fed: u64,
    max_form_size: u64,
}

impl FormParser {
    /// A parser for a body declared with `content_type`; its files go to a
    /// new directory under `upload_root`.
    pub fn new(
        content_type: &str,
        limits: Limits,
        upload_root: PathBuf,
    ) -> Result<FormParser, FormError> {
        let boundary = multer::parse_boundary(content_type).map_err(|e| match e {
            multer::Error::NoBoundary => {
                FormError::Malformed("the multipart/form-data Content-Type has no boundary".into())
            }
            _ => FormError::Malformed(format!(
                "the Content-Type {content_type:?} is not multipart/form-data"
            )),
        })?;
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let multipart = Multipart::new(InboxStream(inbox.clone()), boundary);
        Ok(FormParser {
            inbox,
            parse: Box::pin(collect(multipart, limits, upload_root)),
            outcome: None,
            fed: 0,
            max_form_size: limits.max_form_size,
        })
    }

    /// Takes the next chunk of the body. An error is final: the body can be
    /// abandoned at once.
    pub fn feed(&mut self, chunk: Bytes) -> Result<(), FormError> {
        if let Some(Err(e)) = &self.outcome {
            return Err(e.clone());
        }
        self.fed += chunk.len() as u64;
        if self.fed > self.max_form_size {
            let e = FormError::TooLarge(format!(
                "the form exceeds the limit of {} bytes",
                self.max_form_size
            ));
            self.outcome = Some(Err(e.clone()));
            return Err(e);
        }
        if self.outcome.is_some() || chunk.is_empty() {
            // Already complete: what follows the closing boundary is ignored.
            return Ok(());
        }
        self.inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .chunks
            .push_back(chunk);
        self.advance();
        match &self.outcome {
            Some(Err(e)) => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// Ends the body and gives the form.
    pub fn finish(mut self) -> Result<Form, FormError> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner()).ended = true;
        self.advance();
        self.outcome.take().unwrap_or_else(|| {
            Err(FormError::Malformed(
                "the multipart body ends before its closing boundary".into(),
            ))
        })
    }

    fn advance(&mut self) {
        if self.outcome.is_some() {
            return;
        }
        let mut context = Context::from_waker(Waker::noop());
        if let Poll::Ready(outcome) = self.parse.as_mut().poll(&mut context) {
            self.outcome = Some(outcome);
        }
    }
}

/// Reads every part, enforcing `limits`.
async fn collect(
    mut multipart: Multipart<'static>,
    limits: Limits,
    upload_root: PathBuf,
) -> Result<Form, FormError> {
    let mut parts = Vec::new();
    let mut dir: Option<Arc<UploadDir>> = None;
    let (mut fields, mut files) = (0usize, 0usize);
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        let disposition = field
            .headers()
            .get(http::header::CONTENT_DISPOSITION)
            .ok_or_else(|| FormError::Malformed("a form part has no Content-Disposition".into()))
            .and_then(|v| parse_disposition(v.as_bytes()).map_err(FormError::Malformed))?;
        let name = disposition.name;
        let Some(filename) = disposition.filename else {
            fields += 1;
            if fields > limits.max_fields {
                return Err(FormError::TooLarge(format!(
                    "the form has more than {} fields",
                    limits.max_fields
                )));
            }
            let mut value = BytesMut::new();
            while let Some(chunk) = field.chunk().await.map_err(malformed)? {
                if (value.len() + chunk.len()) as u64 > limits.max_field_size {
                    return Err(FormError::TooLarge(format!(
                        "form field {name:?} exceeds the limit of {} bytes per field",
                        limits.max_field_size
                    )));
                }
                value.extend_from_slice(&chunk);
            }
            let value = String::from_utf8(value.to_vec()).map_err(|_| {
                FormError::Malformed(format!("form field {name:?} is not valid UTF-8"))
            })?;
            parts.push(Part::Text(TextField { name, value }));
            continue;
        };
        files += 1;
        if files > limits.max_files {
            return Err(FormError::TooLarge(format!(
                "the form has more than {} files",
                limits.max_files
            )));
        }
        let content_type = field
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned());
        let dir = match &dir {
            Some(dir) => dir.clone(),
            None => {
                let created = Arc::new(UploadDir::create(&upload_root).map_err(storage)?);
                dir = Some(created.clone());
                created
            }
        };
        let (path, mut file) = dir.create_file(files).map_err(storage)?;
        let mut size = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            size += chunk.len() as u64;
            if size > limits.max_file_size {
                return Err(FormError::TooLarge(format!(
                    "file {name:?} exceeds the limit of {} bytes per file",
                    limits.max_file_size
                )));
            }
            file.write_all(&chunk).map_err(storage)?;
        }
        parts.push(Part::File(FilePart {
            name,
            filename,
            content_type,
            path,
            size,
        }));
    }
    Ok(Form { parts, dir })
}

fn malformed(e: multer::Error) -> FormError {
    FormError::Malformed(match e {
        multer::Error::IncompleteStream => {
            "the multipart body ends before its closing boundary".into()
        }
        multer::Error::IncompleteFieldData { field_name } => format!(
            "form part {:?} ends before its closing boundary",
            field_name.unwrap_or_default()
        ),
        multer::Error::IncompleteHeaders
        | multer::Error::ReadHeaderFailed(_)
        | multer::Error::DecodeHeaderName { .. }
        | multer::Error::DecodeHeaderValue { .. } => "a form part has malformed headers".into(),
        other => format!("malformed multipart body: {other}"),
    })
}

fn storage(e: std::io::Error) -> FormError {
    FormError::Storage(format!("could not store an uploaded file: {e}"))
}

#[cfg(test)]
mod tests;
