//! A byte range of an open file, sent as a response body without passing
//! through Python (static files).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

/// How much of a file one read takes: large enough that a big file costs
/// few reads, small enough that a slow client holds little memory.
pub const CHUNK: usize = 256 * 1024;

/// `len` bytes of `file` from `offset`. Reads are positioned (`pread`), so
/// one open file can serve any number of slices at once.
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: u64,
}

impl FileSlice {
    pub fn new(file: Arc<File>, offset: u64, len: u64) -> Self {
        FileSlice { file, offset, len }
    }

    /// Reads up to `max` bytes starting `at` bytes into the slice; an empty
    /// result means the slice is done. A file that shrank under the reader
    /// is an error, not a short body passed off as complete.
    pub fn read_at(&self, at: u64, max: usize) -> io::Result<Bytes> {
        let want = self.len.saturating_sub(at).min(max as u64) as usize;
        if want == 0 {
            return Ok(Bytes::new());
        }
        let mut buf = BytesMut::zeroed(want);
        let mut filled = 0;
        while filled < want {
            match self
                .file
                .read_at(&mut buf[filled..], self.offset + at + filled as u64)
            {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was being sent",
                    ))
                }
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(buf.freeze())
    }

    /// The whole slice in memory.
    pub fn read_all(&self) -> io::Result<Bytes> {
        self.read_at(0, self.len as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn temp_file(content: &[u8]) -> Arc<File> {
        let path = std::env::temp_dir().join(format!(
            "cello-file-slice-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut f = File::create(&path).unwrap();
        f.write_all(content).unwrap();
        let file = File::open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        Arc::new(file)
    }

    #[test]
    fn a_slice_reads_its_range_in_chunks() {
        let slice = FileSlice::new(temp_file(b"0123456789"), 2, 5);
        assert_eq!(slice.read_at(0, 3).unwrap(), "234");
        assert_eq!(slice.read_at(3, 3).unwrap(), "56");
        assert!(slice.read_at(5, 3).unwrap().is_empty());
        assert_eq!(slice.read_all().unwrap(), "23456");
    }

    #[test]
    fn a_file_shorter_than_its_slice_is_an_error() {
        let slice = FileSlice::new(temp_file(b"abc"), 0, 10);
        assert!(slice.read_all().is_err());
    }
}
