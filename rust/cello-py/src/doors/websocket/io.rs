//! The WebSocket session on the I/O side: tungstenite reads and writes the
//! frames (fragmentation, masking, ping replies, the close handshake), and
//! this task moves whole messages between the socket and the app's
//! `receive`/`send` through bounded channels.
//!
//! Back-pressure both ways: a message is read off the socket only once
//! there is room for it in the inbound channel (the app not receiving
//! leaves the client's bytes in the kernel, and TCP slows the client), and
//! the app's `send` waits while the outbound channel is full (a client that
//! does not read blocks the writes here, which fill that channel).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use cello_core::server::upgrade::{Closing, Upgraded};
use futures_util::{SinkExt, StreamExt};
use pyo3::prelude::*;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::WebSocketStream;

use crate::pipeline::queue::{Queue, Work};

/// Messages read ahead of the app's `receive()`.
pub(crate) const INBOUND: usize = 16;
/// Messages the app may `send` ahead of the socket.
pub(crate) const OUTBOUND: usize = 16;
/// Bytes read from the socket at a time.
const READ_BUFFER: usize = 4 * 1024;
/// How long the close handshake may take once the server closes.
const CLOSE_WAIT: Duration = Duration::from_secs(5);

/// Close codes the server reports or sends.
pub(crate) const NORMAL: u16 = 1000;
pub(crate) const GOING_AWAY: u16 = 1001;
pub(crate) const PROTOCOL_ERROR: u16 = 1002;
pub(crate) const NO_STATUS: u16 = 1005;
pub(crate) const ABNORMAL: u16 = 1006;
pub(crate) const INVALID_DATA: u16 = 1007;
pub(crate) const TOO_BIG: u16 = 1009;
pub(crate) const INTERNAL_ERROR: u16 = 1011;

/// The server's WebSocket settings (`WebSocketConfig` in Python).
#[derive(Debug, Clone)]
pub struct WsSettings {
    /// How often each client is pinged; None: never.
    pub ping_interval: Option<Duration>,
    /// How long the pong may take before the connection is dropped.
    pub ping_timeout: Option<Duration>,
    /// Largest message accepted (after reassembly); larger closes with 1009.
    pub max_message_size: usize,
    /// Largest single frame accepted; larger closes with 1009.
    pub max_frame_size: usize,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(20)),
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
        }
    }
}

impl WsSettings {
    fn tungstenite(&self) -> WebSocketConfig {
        WebSocketConfig::default()
            // tungstenite zero-fills its whole read buffer before every
            // read: at its 128 KiB default that was half the CPU of an echo
            // and 128 KiB of every idle connection. Larger messages still
            // arrive whole; they just take more reads.
            .read_buffer_size(READ_BUFFER)
            .max_message_size(Some(self.max_message_size))
            .max_frame_size(Some(self.max_frame_size))
    }
}

/// A message from the client, for `receive()`.
pub(crate) enum Inbound {
    Text(Utf8Bytes),
    Binary(Bytes),
}

/// A message from the app, for the socket.
pub(crate) enum Outbound {
    Text(String),
    Binary(Bytes),
    Close(u16, String),
}

/// The app's side of the inbound channel, and what the session left behind.
pub(crate) struct Inbox {
    pub(crate) rx: mpsc::Receiver<Inbound>,
    /// The future of a `receive()` waiting for a message.
    pub(crate) waiter: Option<Py<PyAny>>,
}

/// Shared by the session task and the app's `receive`.
pub struct WsShared {
    pub(crate) inbox: Mutex<Inbox>,
    /// A `receive()` is waiting: the session wakes it after each message.
    pub(crate) waiting: AtomicBool,
    /// The close code and reason, once the connection is over.
    pub(crate) ended: Mutex<Option<(u16, String)>>,
    pub(crate) queue: Arc<Queue>,
}

impl WsShared {
    pub(crate) fn new(rx: mpsc::Receiver<Inbound>, queue: Arc<Queue>) -> Arc<Self> {
        Arc::new(WsShared {
            inbox: Mutex::new(Inbox { rx, waiter: None }),
            waiting: AtomicBool::new(false),
            ended: Mutex::new(None),
            queue,
        })
    }

    pub(crate) fn lock_inbox(&self) -> std::sync::MutexGuard<'_, Inbox> {
        self.inbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The close code and reason, once the connection has ended.
    pub(crate) fn ended(&self) -> Option<(u16, String)> {
        self.ended.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Wakes a waiting `receive()` on the event-loop thread: one queued
    /// call, whatever number of messages arrived meanwhile.
    fn wake(self: &Arc<Self>) {
        if self.waiting.swap(false, Ordering::SeqCst) {
            let shared = self.clone();
            self.queue
                .push(Work::call(move |py| super::serve::deliver(py, &shared)));
        }
    }

    /// The connection is over: `receive()` gives `websocket.disconnect`
    /// with this code from now on (after any message still queued).
    pub(crate) fn end(self: &Arc<Self>, code: u16, reason: String) {
        {
            let mut ended = self.ended.lock().unwrap_or_else(|p| p.into_inner());
            if ended.is_none() {
                *ended = Some((code, reason));
            }
        }
        // The waiter may be waiting for a message that will never come.
        self.waiting.store(true, Ordering::SeqCst);
        self.wake();
    }
}

/// The close code to send for an error reading from the client, or None
/// when the connection is simply gone (no close frame can be sent).
pub(crate) fn close_code_for(error: &WsError) -> Option<u16> {
    match error {
        // The client went away mid-connection: no frame can reach it.
        WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake) => None,
        WsError::Capacity(_) => Some(TOO_BIG),
        WsError::Utf8(_) => Some(INVALID_DATA),
        WsError::Protocol(_) | WsError::AttackAttempt => Some(PROTOCOL_ERROR),
        _ => None,
    }
}

/// The code and reason an incoming close frame reports to the app: 1005
/// when the frame had no code.
pub(crate) fn reported_close(frame: Option<&CloseFrame>) -> (u16, String) {
    match frame {
        Some(frame) => (u16::from(frame.code), frame.reason.as_str().to_owned()),
        None => (NO_STATUS, String::new()),
    }
}

/// The frame for a close the app (or the server) asks for. 1005 and 1006
/// may not be sent on the wire: they become a close frame without a code.
pub(crate) fn close_frame(code: u16, reason: &str) -> Option<CloseFrame> {
    if code == NO_STATUS || code == ABNORMAL {
        return None;
    }
    Some(CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from(truncate_reason(reason)),
    })
}

/// A close reason fits in 123 bytes (125 less the code), cut at a char
/// boundary.
pub(crate) fn truncate_reason(reason: &str) -> String {
    if reason.len() <= 123 {
        return reason.to_owned();
    }
    let mut end = 123;
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    reason[..end].to_owned()
}

fn to_message(out: Outbound) -> Message {
    match out {
        Outbound::Text(text) => Message::Text(text.into()),
        Outbound::Binary(data) => Message::Binary(data),
        Outbound::Close(code, reason) => Message::Close(close_frame(code, &reason)),
    }
}

/// Runs one WebSocket connection until it closes; the app's `receive`
/// then reports how.
pub(crate) async fn run_session(
    mut upgraded: Upgraded,
    shared: Arc<WsShared>,
    inbound: mpsc::Sender<Inbound>,
    outbound: mpsc::Receiver<Outbound>,
    settings: Arc<WsSettings>,
) {
    let closing = upgraded.take_closing();
    let ws = WebSocketStream::from_raw_socket(upgraded, Role::Server, Some(settings.tungstenite()))
        .await;
    let (code, reason) = session(ws, &shared, inbound, outbound, closing, &settings).await;
    shared.end(code, reason);
}

type Ws = WebSocketStream<Upgraded>;

async fn session(
    ws: Ws,
    shared: &Arc<WsShared>,
    inbound: mpsc::Sender<Inbound>,
    mut outbound: mpsc::Receiver<Outbound>,
    mut closing: tokio::sync::oneshot::Receiver<Closing>,
    settings: &WsSettings,
) -> (u16, String) {
    let (mut sink, mut stream) = ws.split();
    let mut permit: Option<mpsc::OwnedPermit<Inbound>> = None;
    // The app no longer receives: messages are read and dropped.
    let mut discard = false;
    let mut ping = settings.ping_interval.map(|every| {
        let mut tick = tokio::time::interval_at(Instant::now() + every, every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick
    });
    let mut pong_due: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            why = &mut closing => {
                return match why {
                    Ok(Closing::GoingAway) => {
                        let frame = close_frame(GOING_AWAY, "server shutting down");
                        finish_close(&mut sink, &mut stream, frame).await;
                        (GOING_AWAY, String::new())
                    }
                    // A client that stopped reading: nothing more can be written.
                    Ok(Closing::Stalled) | Err(_) => (ABNORMAL, String::new()),
                };
            }
            reserved = inbound.clone().reserve_owned(), if permit.is_none() && !discard => {
                match reserved {
                    Ok(p) => permit = Some(p),
                    Err(_) => discard = true,
                }
            }
            read = stream.next(), if permit.is_some() || discard => {
                match read {
                    Some(Ok(Message::Text(text))) => {
                        if let Some(p) = permit.take() {
                            p.send(Inbound::Text(text));
                            shared.wake();
                        }
                    }
                    Some(Ok(Message::Binary(data))) => {
                        if let Some(p) = permit.take() {
                            p.send(Inbound::Binary(data));
                            shared.wake();
                        }
                    }
                    Some(Ok(Message::Pong(_))) => pong_due = None,
                    // tungstenite answers pings itself.
                    Some(Ok(Message::Ping(_) | Message::Frame(_))) => {}
                    Some(Ok(Message::Close(frame))) => {
                        // tungstenite queued the reply; send it and end.
                        let reported = reported_close(frame.as_ref());
                        let _ = tokio::time::timeout(CLOSE_WAIT, sink.close()).await;
                        return reported;
                    }
                    Some(Err(e)) => {
                        if let Some(code) = close_code_for(&e) {
                            let frame = close_frame(code, "");
                            let _ = tokio::time::timeout(
                                CLOSE_WAIT,
                                sink.send(Message::Close(frame)),
                            )
                            .await;
                            return (code, String::new());
                        }
                        return (ABNORMAL, String::new());
                    }
                    None => return (ABNORMAL, String::new()),
                }
            }
            out = outbound.recv() => {
                let Some(out) = out else {
                    // The app's side is gone without a close: close normally.
                    finish_close(&mut sink, &mut stream, close_frame(NORMAL, "")).await;
                    return (NORMAL, String::new());
                };
                // Everything the app queued goes out in one flush. A write
                // stuck on a client that does not read still hears the
                // server's stop (or the write timeout).
                let batch = write_batch(&mut sink, &mut stream, &mut outbound, out);
                tokio::select! {
                    ended = batch => {
                        if let Some(ended) = ended {
                            return ended;
                        }
                    }
                    _ = &mut closing => return (ABNORMAL, String::new()),
                }
            }
            _ = async { ping.as_mut().expect("guarded").tick().await }, if ping.is_some() => {
                if pong_due.is_none() {
                    if sink.send(Message::Ping(Bytes::new())).await.is_err() {
                        return (ABNORMAL, String::new());
                    }
                    pong_due = settings.ping_timeout.map(|t| Instant::now() + t);
                }
            }
            _ = async { tokio::time::sleep_until(pong_due.expect("guarded")).await }, if pong_due.is_some() => {
                // No pong in time: the client is gone or stuck.
                let frame = close_frame(INTERNAL_ERROR, "keepalive ping timeout");
                let _ = tokio::time::timeout(Duration::from_secs(1), sink.send(Message::Close(frame))).await;
                return (ABNORMAL, String::new());
            }
        }
    }
}

/// Writes `first` and whatever else the app queued, then flushes; Some
/// when the session is over (the app closed it, or the write failed).
async fn write_batch(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    stream: &mut futures_util::stream::SplitStream<Ws>,
    outbound: &mut mpsc::Receiver<Outbound>,
    first: Outbound,
) -> Option<(u16, String)> {
    let mut next = Some(first);
    while let Some(out) = next.take() {
        if let Outbound::Close(code, reason) = out {
            if sink.flush().await.is_err() {
                return Some((ABNORMAL, String::new()));
            }
            let frame = close_frame(code, &reason);
            let echoed = finish_close(sink, stream, frame).await;
            return Some(echoed.unwrap_or((code, reason)));
        }
        if sink.feed(to_message(out)).await.is_err() {
            return Some((ABNORMAL, String::new()));
        }
        next = outbound.try_recv().ok();
    }
    if sink.flush().await.is_err() {
        return Some((ABNORMAL, String::new()));
    }
    None
}

/// Sends the server's close frame and waits (bounded) for the client's;
/// returns the code and reason the client echoed, if it did.
async fn finish_close(
    sink: &mut futures_util::stream::SplitSink<Ws, Message>,
    stream: &mut futures_util::stream::SplitStream<Ws>,
    frame: Option<CloseFrame>,
) -> Option<(u16, String)> {
    let handshake = async {
        sink.send(Message::Close(frame)).await.ok()?;
        loop {
            match stream.next().await {
                Some(Ok(Message::Close(echo))) => return Some(reported_close(echo.as_ref())),
                Some(Ok(_)) => continue, // data after our close is dropped
                Some(Err(_)) | None => return None,
            }
        }
    };
    tokio::time::timeout(CLOSE_WAIT, handshake)
        .await
        .ok()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_tungstenite::tungstenite::error::CapacityError;

    #[test]
    fn read_errors_map_to_close_codes() {
        let too_big = WsError::Capacity(CapacityError::MessageTooLong {
            size: 10,
            max_size: 5,
        });
        assert_eq!(close_code_for(&too_big), Some(TOO_BIG));
        assert_eq!(
            close_code_for(&WsError::Utf8("bad".into())),
            Some(INVALID_DATA)
        );
        assert_eq!(
            close_code_for(&WsError::Protocol(ProtocolError::NonZeroReservedBits)),
            Some(PROTOCOL_ERROR)
        );
        assert_eq!(close_code_for(&WsError::ConnectionClosed), None);
        let reset = WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake);
        assert_eq!(close_code_for(&reset), None);
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(close_code_for(&WsError::Io(io)), None);
    }

    #[test]
    fn a_close_without_a_code_reports_1005() {
        assert_eq!(reported_close(None), (NO_STATUS, String::new()));
        let frame = CloseFrame {
            code: CloseCode::from(4000),
            reason: "bye".into(),
        };
        assert_eq!(reported_close(Some(&frame)), (4000, "bye".to_owned()));
    }

    #[test]
    fn codes_that_may_not_be_sent_become_a_bare_close() {
        assert!(close_frame(NO_STATUS, "x").is_none());
        assert!(close_frame(ABNORMAL, "x").is_none());
        let frame = close_frame(4001, "fine").unwrap();
        assert_eq!(u16::from(frame.code), 4001);
        assert_eq!(frame.reason.as_str(), "fine");
    }

    #[test]
    fn long_reasons_are_cut_at_a_char_boundary() {
        let reason = "é".repeat(100); // 200 bytes
        let cut = truncate_reason(&reason);
        assert!(cut.len() <= 123);
        assert_eq!(cut.len() % 2, 0);
        assert_eq!(truncate_reason("short"), "short");
    }

    #[test]
    fn default_limits_are_16_mib_and_20_s_keepalive() {
        let s = WsSettings::default();
        assert_eq!(s.max_message_size, 16 * 1024 * 1024);
        assert_eq!(s.max_frame_size, 16 * 1024 * 1024);
        assert_eq!(s.ping_interval, Some(Duration::from_secs(20)));
        assert_eq!(s.ping_timeout, Some(Duration::from_secs(20)));
    }
}
