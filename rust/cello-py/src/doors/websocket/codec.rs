//! The server side of RFC 6455 framing, with RFC 7692 compression: reads
//! client frames into whole messages (unmasking, reassembling fragments,
//! validating UTF-8 as it arrives, decompressing under the message size
//! limit) and writes messages, pongs and close frames.
//!
//! Cello frames WebSocket itself rather than through tungstenite, whose
//! message layer rejects the RSV1 bit that marks a compressed message. The
//! codec is small on purpose: no fragmentation of outgoing messages, no
//! automatic replies (the session decides what to answer a ping or a close
//! with), and `read` is cancel-safe (every partial state lives in `Conn`),
//! so the session can select on it.

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::deflate::{Deflate, Deflater, InflateError, Inflater};

const CONTINUATION: u8 = 0x0;
const TEXT: u8 = 0x1;
const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PING: u8 = 0x9;
const PONG: u8 = 0xA;

/// Bytes asked of the socket per read, at least.
const READ_CHUNK: usize = 8 * 1024;
/// A buffer grown past this for a large message is given back once empty.
const KEEP_BUFFER: usize = 64 * 1024;

/// A text message's payload: UTF-8, checked by the codec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Text(Bytes);

impl Text {
    pub(crate) fn as_str(&self) -> &str {
        // SAFETY: a `Text` is only made from bytes `std::str::from_utf8`
        // accepted (`Text::checked`).
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }

    fn checked(data: Bytes) -> Result<Self, ReadError> {
        match std::str::from_utf8(&data) {
            Ok(_) => Ok(Text(data)),
            Err(_) => Err(ReadError::InvalidData),
        }
    }
}

/// What the client sent.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Message {
    Text(Text),
    Binary(Bytes),
    Ping(Bytes),
    Pong(Bytes),
    /// The client's close: its code and reason, None without a code. A
    /// code that may not be sent is reported (and echoed) as 1002.
    Close(Option<(u16, String)>),
}

/// Why reading stopped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ReadError {
    /// The connection ended (or failed) without a close frame.
    Gone,
    /// A protocol violation: close with 1002.
    Protocol(&'static str),
    /// Invalid UTF-8: close with 1007.
    InvalidData,
    /// A frame or message over the limits: close with 1009.
    TooBig,
}

impl ReadError {
    /// The close code to answer with; None when no frame can be sent.
    pub(crate) fn close_code(&self) -> Option<u16> {
        match self {
            ReadError::Gone => None,
            ReadError::Protocol(_) => Some(super::io::PROTOCOL_ERROR),
            ReadError::InvalidData => Some(super::io::INVALID_DATA),
            ReadError::TooBig => Some(super::io::TOO_BIG),
        }
    }
}

/// A fragmented (or compressed) message being put together.
struct Partial {
    text: bool,
    compressed: bool,
    data: Vec<u8>,
    /// Bytes of `data` known to be valid UTF-8.
    checked: usize,
}

impl Partial {
    /// Fails fast on invalid UTF-8: a sequence cut at the end of what has
    /// arrived may still complete, unless `complete`.
    fn check_utf8(&mut self, complete: bool) -> Result<(), ReadError> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.data[self.checked..]) {
            Ok(_) => {
                self.checked = self.data.len();
                Ok(())
            }
            Err(e) if e.error_len().is_none() && !complete => {
                self.checked += e.valid_up_to();
                Ok(())
            }
            Err(_) => Err(ReadError::InvalidData),
        }
    }
}

/// A frame head, parsed.
struct Head {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: [u8; 4],
    /// Bytes of the head on the wire.
    size: usize,
    len: usize,
}

/// The head at the start of `buf`, once all of it has arrived.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ReadError> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let (b0, b1) = (buf[0], buf[1]);
    if b0 & 0x30 != 0 {
        return Err(ReadError::Protocol("reserved bits set"));
    }
    if b1 & 0x80 == 0 {
        return Err(ReadError::Protocol("unmasked frame from the client"));
    }
    let (len, at) = match b1 & 0x7f {
        126 if buf.len() >= 4 => (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4),
        127 if buf.len() >= 10 => {
            let len = u64::from_be_bytes(buf[2..10].try_into().expect("eight bytes"));
            if len >> 63 != 0 {
                return Err(ReadError::Protocol("frame length out of range"));
            }
            (len, 10)
        }
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if buf.len() < at + 4 {
        return Ok(None);
    }
    Ok(Some(Head {
        fin: b0 & 0x80 != 0,
        rsv1: b0 & 0x40 != 0,
        opcode: b0 & 0x0f,
        mask: buf[at..at + 4].try_into().expect("four bytes"),
        size: at + 4,
        len: usize::try_from(len).unwrap_or(usize::MAX),
    }))
}

/// XORs the client's mask off, eight bytes at a time.
fn unmask(data: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes((&*chunk).try_into().expect("eight bytes")) ^ wide;
        chunk.copy_from_slice(&word.to_ne_bytes());
    }
    // Whole words keep the mask's phase: the rest starts at mask[0].
    for (i, byte) in chunks.into_remainder().iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
}

/// Whether a close code may appear in a close frame (RFC 6455 §7.4).
fn sendable_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1013 | 3000..=4999)
}

/// One WebSocket connection's framing, over the upgraded socket.
pub(crate) struct Conn<S> {
    io: S,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    /// Bytes of `wbuf` already written.
    written: usize,
    partial: Option<Partial>,
    max_message: usize,
    max_frame: usize,
    inflater: Option<Inflater>,
    deflater: Option<Deflater>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Conn<S> {
    /// `deflate`: the compression agreed in the handshake, if any.
    pub(crate) fn new(
        io: S,
        max_message: usize,
        max_frame: usize,
        deflate: Option<Deflate>,
    ) -> Self {
        Conn {
            io,
            rbuf: BytesMut::new(),
            wbuf: Vec::new(),
            written: 0,
            partial: None,
            max_message,
            max_frame,
            inflater: deflate.as_ref().map(Inflater::new),
            deflater: deflate.as_ref().map(Deflater::new),
        }
    }

    /// The next message from the client. Cancel-safe: a read dropped
    /// half-way loses nothing.
    pub(crate) async fn read(&mut self) -> Result<Message, ReadError> {
        loop {
            if let Some(message) = self.parse()? {
                return Ok(message);
            }
            if self.rbuf.is_empty() && self.rbuf.capacity() > KEEP_BUFFER {
                self.rbuf = BytesMut::new();
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 2 {
                self.rbuf.reserve(READ_CHUNK);
            }
            match self.io.read_buf(&mut self.rbuf).await {
                Ok(0) | Err(_) => return Err(ReadError::Gone),
                Ok(_) => {}
            }
        }
    }

    /// Takes every complete frame off the read buffer until one completes
    /// a message; None when more bytes are needed.
    fn parse(&mut self) -> Result<Option<Message>, ReadError> {
        loop {
            let Some(head) = parse_head(&self.rbuf)? else {
                return Ok(None);
            };
            self.check(&head)?;
            let needed = head.size + head.len;
            if self.rbuf.len() < needed {
                self.rbuf.reserve(needed - self.rbuf.len());
                return Ok(None);
            }
            self.rbuf.advance(head.size);
            let mut payload = self.rbuf.split_to(head.len);
            unmask(&mut payload, head.mask);
            if let Some(message) = self.frame(&head, payload)? {
                return Ok(Some(message));
            }
        }
    }

    /// Checks a frame's head before its payload is read.
    fn check(&self, head: &Head) -> Result<(), ReadError> {
        let control = head.opcode & 0x8 != 0;
        match head.opcode {
            CONTINUATION | TEXT | BINARY | CLOSE | PING | PONG => {}
            _ => return Err(ReadError::Protocol("reserved opcode")),
        }
        if head.rsv1 && (control || head.opcode == CONTINUATION || self.inflater.is_none()) {
            return Err(ReadError::Protocol("RSV1 set where no extension allows it"));
        }
        if control {
            if !head.fin {
                return Err(ReadError::Protocol("fragmented control frame"));
            }
            if head.len > 125 {
                return Err(ReadError::Protocol("control frame over 125 bytes"));
            }
            return Ok(());
        }
        match (head.opcode, &self.partial) {
            (CONTINUATION, None) => return Err(ReadError::Protocol("nothing to continue")),
            (TEXT | BINARY, Some(_)) => {
                return Err(ReadError::Protocol("a new message inside a fragmented one"))
            }
            _ => {}
        }
        if head.len > self.max_frame {
            return Err(ReadError::TooBig);
        }
        let compressed = head.rsv1 || self.partial.as_ref().is_some_and(|p| p.compressed);
        let so_far = self.partial.as_ref().map_or(0, |p| p.data.len());
        if !compressed && so_far.saturating_add(head.len) > self.max_message {
            return Err(ReadError::TooBig);
        }
        Ok(())
    }

    fn frame(&mut self, head: &Head, payload: BytesMut) -> Result<Option<Message>, ReadError> {
        match head.opcode {
            PING => return Ok(Some(Message::Ping(payload.freeze()))),
            PONG => return Ok(Some(Message::Pong(payload.freeze()))),
            CLOSE => return close_payload(&payload).map(|c| Some(Message::Close(c))),
            _ => {}
        }
        if head.opcode != CONTINUATION && head.fin && !head.rsv1 {
            // The common case: a whole message in one plain frame.
            let data = payload.freeze();
            return Ok(Some(if head.opcode == TEXT {
                Message::Text(Text::checked(data)?)
            } else {
                Message::Binary(data)
            }));
        }
        let limit = self.max_message;
        let partial = self.partial.get_or_insert_with(|| Partial {
            text: head.opcode == TEXT,
            compressed: head.rsv1,
            data: Vec::new(),
            checked: 0,
        });
        if partial.compressed {
            let inflater = self
                .inflater
                .as_mut()
                .expect("checked: RSV1 needs the extension");
            inflater
                .inflate(&payload, &mut partial.data, limit)
                .map_err(inflate_error)?;
            if head.fin {
                inflater
                    .finish(&mut partial.data, limit)
                    .map_err(inflate_error)?;
            }
        } else {
            partial.data.extend_from_slice(&payload);
        }
        partial.check_utf8(head.fin)?;
        if !head.fin {
            return Ok(None);
        }
        let partial = self.partial.take().expect("just used");
        let data = Bytes::from(partial.data);
        Ok(Some(if partial.text {
            // Checked as it arrived.
            Message::Text(Text(data))
        } else {
            Message::Binary(data)
        }))
    }

    /// Queues a text or binary message, compressed when that is agreed
    /// and worth it.
    pub(crate) fn queue_message(&mut self, text: bool, payload: &[u8]) {
        let opcode = if text { TEXT } else { BINARY };
        if let Some(deflater) = self.deflater.as_mut() {
            let mut compressed = Vec::new();
            if deflater.deflate(payload, &mut compressed) {
                push_frame(&mut self.wbuf, opcode, true, &compressed);
                return;
            }
        }
        push_frame(&mut self.wbuf, opcode, false, payload);
    }

    /// Bytes queued and not yet written.
    pub(crate) fn buffered(&self) -> usize {
        self.wbuf.len() - self.written
    }

    pub(crate) fn queue_ping(&mut self, payload: &[u8]) {
        push_frame(&mut self.wbuf, PING, false, payload);
    }

    pub(crate) fn queue_pong(&mut self, payload: &[u8]) {
        push_frame(&mut self.wbuf, PONG, false, payload);
    }

    /// Queues a close frame: a code and reason, or None for a bare close.
    pub(crate) fn queue_close(&mut self, close: Option<(u16, &str)>) {
        let mut payload = Vec::new();
        if let Some((code, reason)) = close {
            payload.extend_from_slice(&code.to_be_bytes());
            payload.extend_from_slice(reason.as_bytes());
        }
        push_frame(&mut self.wbuf, CLOSE, false, &payload);
    }

    /// Writes everything queued. Cancel-safe: what was written stays
    /// written, and the next flush goes on from there.
    pub(crate) async fn flush(&mut self) -> std::io::Result<()> {
        while self.written < self.wbuf.len() {
            let n = self.io.write(&self.wbuf[self.written..]).await?;
            if n == 0 {
                return Err(std::io::ErrorKind::WriteZero.into());
            }
            self.written += n;
        }
        self.written = 0;
        if self.wbuf.capacity() > KEEP_BUFFER {
            self.wbuf = Vec::new();
        } else {
            self.wbuf.clear();
        }
        self.io.flush().await
    }
}

fn inflate_error(error: InflateError) -> ReadError {
    match error {
        InflateError::TooBig => ReadError::TooBig,
        InflateError::Corrupt => ReadError::Protocol("invalid compressed data"),
    }
}

/// A close frame's code and reason.
fn close_payload(payload: &[u8]) -> Result<Option<(u16, String)>, ReadError> {
    match payload.len() {
        0 => Ok(None),
        1 => Err(ReadError::Protocol("close frame with a one-byte payload")),
        _ => {
            let code = u16::from_be_bytes([payload[0], payload[1]]);
            let reason = std::str::from_utf8(&payload[2..]).map_err(|_| ReadError::InvalidData)?;
            if sendable_code(code) {
                Ok(Some((code, reason.to_owned())))
            } else {
                Ok(Some((
                    super::io::PROTOCOL_ERROR,
                    "Protocol violation".to_owned(),
                )))
            }
        }
    }
}

/// Appends one unmasked, final frame.
fn push_frame(out: &mut Vec<u8>, opcode: u8, rsv1: bool, payload: &[u8]) {
    let first = 0x80 | if rsv1 { 0x40 } else { 0 } | opcode;
    let len = payload.len();
    out.reserve(len + 10);
    out.push(first);
    if len < 126 {
        out.push(len as u8);
    } else if len <= usize::from(u16::MAX) {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests;
