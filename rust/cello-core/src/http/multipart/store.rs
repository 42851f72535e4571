//! Where uploads wait on disk: a private directory per form, removed with
//! everything in it when the last owner lets go, and the spool a large
//! multipart body is streamed into before its handler runs.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

/// The prefix of every upload directory, so leftovers are easy to find.
pub const UPLOAD_DIR_PREFIX: &str = "cello-upload-";
/// The prefix of a spool file (unlinked as soon as it is created).
pub const SPOOL_PREFIX: &str = "cello-spool-";

/// A directory of one form's uploaded files, readable by this user only.
/// Dropping it removes the directory and the files in it.
#[derive(Debug)]
pub struct UploadDir {
    path: PathBuf,
}

impl UploadDir {
    /// Creates a new, uniquely named directory under `parent`.
    pub fn create(parent: &Path) -> io::Result<UploadDir> {
        loop {
            let path = parent.join(format!(
                "{UPLOAD_DIR_PREFIX}{}",
                uuid::Uuid::new_v4().simple()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&path) {
                Ok(()) => return Ok(UploadDir { path }),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A new empty file in the directory. Its name is a counter, never
    /// anything the client sent.
    pub fn create_file(&self, index: usize) -> io::Result<(PathBuf, File)> {
        let path = self.path.join(format!("{index}.upload"));
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        Ok((path, file))
    }
}

impl Drop for UploadDir {
    fn drop(&mut self) {
        // Nothing to report to: the request this belonged to is over.
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A body being received: in memory up to `threshold` bytes, then in an
/// anonymous temporary file, so a large upload never sits whole in memory.
#[derive(Debug)]
pub struct Spool {
    memory: BytesMut,
    file: Option<File>,
    len: u64,
    threshold: usize,
    root: PathBuf,
    disk_refused: bool,
}

/// A received body: its bytes, or the spool file holding them.
#[derive(Debug)]
pub enum Spooled {
    Memory(Bytes),
    File(SpoolFile),
}

/// A complete body on disk. The file has no name left: the system frees it
/// when this is dropped, whatever happens to the process.
#[derive(Debug)]
pub struct SpoolFile {
    file: File,
    len: u64,
}

impl Spool {
    /// Spools into `root` (the system temporary directory when None).
    pub fn new(threshold: usize, root: Option<PathBuf>) -> Spool {
        Spool {
            memory: BytesMut::new(),
            file: None,
            len: 0,
            threshold,
            root: root.unwrap_or_else(std::env::temp_dir),
            disk_refused: false,
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends `chunk`. When the disk refuses (full, read-only), the body
    /// carries on in memory: the body limit still bounds it, and a request
    /// is not failed for a spool it could do without.
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let before = self.len;
        self.len += chunk.len() as u64;
        if let Some(file) = &mut self.file {
            if file.write_all(chunk).is_ok() {
                return Ok(());
            }
            let on_disk = SpoolFile {
                file: self.file.take().expect("checked above"),
                len: before,
            };
            self.memory = BytesMut::from(&on_disk.read_all()?[..]);
            self.memory.extend_from_slice(chunk);
            self.disk_refused = true;
            return Ok(());
        }
        if self.memory.len() + chunk.len() <= self.threshold || self.disk_refused {
            self.memory.extend_from_slice(chunk);
            return Ok(());
        }
        match anonymous_file(&self.root).and_then(|mut file| {
            file.write_all(&self.memory)?;
            file.write_all(chunk)?;
            Ok(file)
        }) {
            Ok(file) => {
                self.memory = BytesMut::new();
                self.file = Some(file);
            }
            Err(_) => {
                self.disk_refused = true;
                self.memory.extend_from_slice(chunk);
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Spooled {
        match self.file {
            Some(file) => Spooled::File(SpoolFile {
                file,
                len: self.len,
            }),
            None => Spooled::Memory(self.memory.freeze()),
        }
    }
}

impl SpoolFile {
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Up to `max` bytes from `offset`; empty at the end.
    pub fn read_at(&self, offset: u64, max: usize) -> io::Result<Bytes> {
        let want = max.min(self.len.saturating_sub(offset) as usize);
        let mut buf = vec![0; want];
        let mut filled = 0;
        while filled < want {
            let n = self
                .file
                .read_at(&mut buf[filled..], offset + filled as u64)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the spooled body is shorter than what was written",
                ));
            }
            filled += n;
        }
        Ok(Bytes::from(buf))
    }

    /// A second handle on the same file, to read it without holding on to
    /// whatever guards this one (reads take an offset: nothing is shared).
    pub fn try_clone(&self) -> io::Result<SpoolFile> {
        Ok(SpoolFile {
            file: self.file.try_clone()?,
            len: self.len,
        })
    }

    /// The whole body in memory (what `request.body()` asks for).
    pub fn read_all(&self) -> io::Result<Bytes> {
        self.read_at(0, self.len as usize)
    }
}

fn anonymous_file(root: &Path) -> io::Result<File> {
    loop {
        let path = root.join(format!("{SPOOL_PREFIX}{}", uuid::Uuid::new_v4().simple()));
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(file) => {
                std::fs::remove_file(&path)?;
                return Ok(file);
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}
