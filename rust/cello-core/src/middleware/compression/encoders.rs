//! The compressors: `async-compression`'s writers over an in-memory buffer,
//! driven synchronously, so that both the native server and the ASGI door
//! (which calls them from Python, outside any runtime) can use them.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use async_compression::tokio::write::{BrotliEncoder, GzipEncoder, ZstdEncoder};
use async_compression::Level;
use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::negotiation::Coding;
use crate::middleware::Encoder;

/// Compression levels, one per coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    pub gzip: u32,
    pub brotli: u32,
    pub zstd: i32,
}

impl Default for Levels {
    /// Levels for dynamic content, where the CPU spent per response matters
    /// as much as the bytes saved: past these the output shrinks by a few
    /// percent for several times the work.
    fn default() -> Self {
        Levels {
            gzip: 6,
            brotli: 4,
            zstd: 3,
        }
    }
}

/// Window sizes (log2 bytes) for bodies of unknown length: each streamed
/// response keeps its window in memory for as long as it lasts, so these stay
/// well below the codings' maximums (brotli 24, zstd 27) while still seeing
/// far past a typical chunk. zstd's is the one browsers accept at most (23)
/// less two.
const BROTLI_STREAM_WINDOW: u32 = 19;
const ZSTD_STREAM_WINDOW: u32 = 21;
/// The smallest window each coding takes.
const BROTLI_MIN_WINDOW: u32 = 10;
const ZSTD_MIN_WINDOW: u32 = 10;

enum Writer {
    Gzip(GzipEncoder<Vec<u8>>),
    // Brotli's state is over 5 kB inline: boxed, so the others stay small.
    Brotli(Box<BrotliEncoder<Vec<u8>>>),
    Zstd(ZstdEncoder<Vec<u8>>),
}

/// One body's compressor. Its output collects in a `Vec` that each call
/// empties.
pub struct Compressor {
    writer: Writer,
}

impl Compressor {
    /// A compressor for `coding`. `size` is the body's length when known: a
    /// window no larger than the body saves allocating (and clearing) memory
    /// it would never use.
    pub fn new(coding: Coding, levels: Levels, size: Option<usize>) -> Self {
        let window = |floor: u32, ceiling: u32| match size {
            Some(n) => (usize::BITS - n.max(1).leading_zeros()).clamp(floor, ceiling),
            None => ceiling,
        };
        let buffer = Vec::with_capacity(size.map_or(0, |n| n / 4));
        let writer = match coding {
            Coding::Gzip => Writer::Gzip(GzipEncoder::with_quality(
                buffer,
                Level::Precise(levels.gzip as i32),
            )),
            Coding::Brotli => {
                let mut params = async_compression::brotli::EncoderParams::default()
                    .quality(Level::Precise(levels.brotli as i32))
                    .window_size(window(BROTLI_MIN_WINDOW, BROTLI_STREAM_WINDOW) as i32);
                if let Some(n) = size {
                    params = params.size_hint(n);
                }
                Writer::Brotli(Box::new(BrotliEncoder::with_params(buffer, params)))
            }
            Coding::Zstd => Writer::Zstd(ZstdEncoder::with_quality_and_params(
                buffer,
                Level::Precise(levels.zstd),
                &[async_compression::zstd::CParameter::window_log(window(
                    ZSTD_MIN_WINDOW,
                    ZSTD_STREAM_WINDOW,
                ))],
            )),
        };
        Compressor { writer }
    }

    /// Compresses a whole body in one go.
    pub fn whole(coding: Coding, levels: Levels, body: &[u8]) -> io::Result<Bytes> {
        let mut compressor = Compressor::new(coding, levels, Some(body.len()));
        compressor.write(body)?;
        compressor.end()
    }

    fn pinned(&mut self) -> Pin<&mut (dyn AsyncWrite + Send + Unpin)> {
        match &mut self.writer {
            Writer::Gzip(w) => Pin::new(w),
            Writer::Brotli(w) => Pin::new(&mut **w),
            Writer::Zstd(w) => Pin::new(w),
        }
    }

    fn output(&mut self) -> &mut Vec<u8> {
        match &mut self.writer {
            Writer::Gzip(w) => w.get_mut(),
            Writer::Brotli(w) => w.get_mut(),
            Writer::Zstd(w) => w.get_mut(),
        }
    }

    fn take_output(&mut self) -> Bytes {
        Bytes::from(std::mem::take(self.output()))
    }

    /// Feeds `data` in; some of its compressed form may stay buffered.
    fn write(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            let written = drive(|cx| self.pinned().poll_write(cx, data))?;
            if written == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            data = &data[written..];
        }
        Ok(())
    }

    /// Compresses `data` and returns everything a decoder needs to read it
    /// back so far (a sync flush), so no part of it waits for the next chunk.
    pub fn flushed(&mut self, data: &[u8]) -> io::Result<Bytes> {
        self.write(data)?;
        drive(|cx| self.pinned().poll_flush(cx))?;
        Ok(self.take_output())
    }

    /// Ends the compressed stream: what is still buffered, and the trailer.
    pub fn end(&mut self) -> io::Result<Bytes> {
        drive(|cx| self.pinned().poll_shutdown(cx))?;
        Ok(self.take_output())
    }
}

/// Runs one poll of a writer to completion. The writers here wrap a `Vec`,
/// whose `AsyncWrite` is always ready, and they are only pending when what
/// they wrap is; so one poll always finishes, and no runtime or waker is
/// needed (the ASGI door calls this from Python, outside any runtime). A
/// pending poll would be a broken invariant, reported as an error rather
/// than a panic on the I/O thread.
fn drive<T>(mut poll: impl FnMut(&mut Context<'_>) -> Poll<io::Result<T>>) -> io::Result<T> {
    let mut cx = Context::from_waker(Waker::noop());
    match poll(&mut cx) {
        Poll::Ready(result) => result,
        Poll::Pending => Err(io::Error::new(
            io::ErrorKind::WouldBlock,
            "an in-memory compressor was not ready",
        )),
    }
}

/// A streamed body's compressor, as a middleware [`Encoder`].
///
/// Every chunk goes out compressed and flushed at once: server-sent events
/// and other long-lived streams must reach the client as they are sent. The
/// cost is a few bytes per chunk (gzip's sync marker is five), which only
/// matters for streams of very small chunks.
pub struct StreamEncoder {
    compressor: Compressor,
    broken: bool,
}

impl StreamEncoder {
    pub fn new(coding: Coding, levels: Levels) -> Self {
        StreamEncoder {
            compressor: Compressor::new(coding, levels, None),
            broken: false,
        }
    }

    /// After a compressor error the rest of the body is dropped: the stream
    /// then lacks its trailer, so the client's decoder reports it
    /// incomplete instead of accepting a silently truncated body.
    fn guard(&mut self, result: io::Result<Bytes>) -> Bytes {
        match result {
            Ok(bytes) if !self.broken => bytes,
            _ => {
                self.broken = true;
                Bytes::new()
            }
        }
    }
}

impl Encoder for StreamEncoder {
    fn chunk(&mut self, data: Bytes) -> Bytes {
        if self.broken {
            return Bytes::new();
        }
        let result = self.compressor.flushed(&data);
        self.guard(result)
    }

    fn finish(&mut self) -> Bytes {
        if self.broken {
            return Bytes::new();
        }
        let result = self.compressor.end();
        self.guard(result)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
    use tokio::io::AsyncReadExt;

    pub const ALL: [Coding; 3] = [Coding::Gzip, Coding::Brotli, Coding::Zstd];

    /// Decodes `data` with the crate's own decoders (the Python tests use
    /// independent ones).
    pub fn decode(coding: Coding, data: &[u8]) -> io::Result<Vec<u8>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut out = Vec::new();
            match coding {
                Coding::Gzip => GzipDecoder::new(data).read_to_end(&mut out).await,
                Coding::Brotli => BrotliDecoder::new(data).read_to_end(&mut out).await,
                Coding::Zstd => ZstdDecoder::new(data).read_to_end(&mut out).await,
            }?;
            Ok(out)
        })
    }

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| format!("{{\"id\":{i},\"name\":\"item {}\"}},", i % 97))
            .collect::<String>()
            .into_bytes()
    }

    #[test]
    fn a_whole_body_round_trips_in_every_coding() {
        let body = sample(5000);
        for coding in ALL {
            let packed = Compressor::whole(coding, Levels::default(), &body).unwrap();
            assert!(packed.len() < body.len() / 4, "{coding}: {}", packed.len());
            assert_eq!(decode(coding, &packed).unwrap(), body, "{coding}");
        }
    }

    #[test]
    fn an_empty_body_still_makes_a_valid_stream() {
        for coding in ALL {
            let packed = Compressor::whole(coding, Levels::default(), b"").unwrap();
            assert_eq!(decode(coding, &packed).unwrap(), b"", "{coding}");
        }
    }

    #[test]
    fn each_streamed_chunk_can_be_decoded_as_soon_as_it_is_sent() {
        for coding in ALL {
            let mut encoder = StreamEncoder::new(coding, Levels::default());
            let mut sent = Vec::new();
            for event in ["data: one\n\n", "data: two\n\n"] {
                let out = encoder.chunk(Bytes::from(event));
                assert!(!out.is_empty(), "{coding} held back {event:?}");
                sent.extend_from_slice(&out);
                // A decoder given only what was sent so far reads the event
                // (and then reports the stream unfinished).
                let partial = decode_prefix(coding, &sent);
                assert!(partial.ends_with(event.as_bytes()), "{coding}: {partial:?}");
            }
            sent.extend_from_slice(&encoder.finish());
            assert_eq!(
                decode(coding, &sent).unwrap(),
                b"data: one\n\ndata: two\n\n",
                "{coding}"
            );
        }
    }

    /// What a decoder reads from an unfinished stream before it runs out.
    fn decode_prefix(coding: Coding, data: &[u8]) -> Vec<u8> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            macro_rules! pull {
                ($decoder:expr) => {{
                    let mut decoder = $decoder;
                    while let Ok(n) = decoder.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        out.extend_from_slice(&buf[..n]);
                    }
                }};
            }
            match coding {
                Coding::Gzip => pull!(GzipDecoder::new(data)),
                Coding::Brotli => pull!(BrotliDecoder::new(data)),
                Coding::Zstd => pull!(ZstdDecoder::new(data)),
            }
            out
        })
    }

    #[test]
    fn a_stream_is_incomplete_without_its_end() {
        for coding in ALL {
            let mut encoder = StreamEncoder::new(coding, Levels::default());
            let sent = encoder.chunk(Bytes::from(sample(100)));
            assert!(decode(coding, &sent).is_err(), "{coding} looked complete");
        }
    }

    #[test]
    fn levels_change_the_output() {
        let body = sample(3000);
        let fast = Levels {
            gzip: 1,
            brotli: 0,
            zstd: 1,
        };
        let slow = Levels {
            gzip: 9,
            brotli: 9,
            zstd: 15,
        };
        for coding in ALL {
            let a = Compressor::whole(coding, fast, &body).unwrap();
            let b = Compressor::whole(coding, slow, &body).unwrap();
            assert_ne!(a, b, "{coding}");
            assert_eq!(decode(coding, &a).unwrap(), body);
            assert_eq!(decode(coding, &b).unwrap(), body);
        }
    }

    #[test]
    fn windows_fit_small_bodies_and_large_ones_still_round_trip() {
        for len in [1, 1023, 1024, 70_000] {
            let body = sample(len);
            for coding in ALL {
                let packed = Compressor::whole(coding, Levels::default(), &body).unwrap();
                assert_eq!(decode(coding, &packed).unwrap(), body, "{coding} {len}");
            }
        }
    }
}
