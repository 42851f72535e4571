//! The WebSocket session on the I/O side: the codec (`codec.rs`) reads
//! and writes the frames, and this task answers pings and closes, pings
//! the client, and moves whole messages between the socket and the app's
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
use pyo3::prelude::*;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::codec::{Conn, Message, Text};
use super::deflate::Deflate;
use crate::pipeline::queue::{Queue, Work};

/// Messages read ahead of the app's `receive()`.
pub(crate) const INBOUND: usize = 16;
/// Messages the app may `send` ahead of the socket.
pub(crate) const OUTBOUND: usize = 16;
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
    /// Whether permessage-deflate is offered to clients that ask for it.
    pub per_message_deflate: bool,
}

impl Default for WsSettings {
    fn default() -> Self {
        WsSettings {
            ping_interval: Some(Duration::from_secs(20)),
            ping_timeout: Some(Duration::from_secs(20)),
            max_message_size: 16 << 20,
            max_frame_size: 16 << 20,
            per_message_deflate: true,
        }
    }
}

impl WsSettings {
    /// The compression agreed for a handshake with these request headers:
    /// None when it is turned off or the client offers nothing acceptable.
    pub(crate) fn negotiate(&self, headers: &http::HeaderMap) -> Option<Deflate> {
        if self.per_message_deflate {
            super::deflate::negotiate(headers)
        } else {
            None
        }
    }
}

/// A message from the client, for `receive()`.
pub(crate) enum Inbound {
    Text(Text),
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

/// The code and reason an incoming close frame reports to the app: 1005
/// when the frame had no code.
pub(crate) fn reported_close(frame: Option<&(u16, String)>) -> (u16, String) {
    match frame {
        Some((code, reason)) => (*code, reason.clone()),
        None => (NO_STATUS, String::new()),
    }
}

/// The close frame for a close the app (or the server) asks for: 1005 and
/// 1006 may not be sent on the wire, so they become a frame without a code.
pub(crate) fn close_frame(code: u16, reason: &str) -> Option<(u16, String)> {
    if code == NO_STATUS || code == ABNORMAL {
        return None;
    }
    Some((code, truncate_reason(reason)))
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

/// Queued output past this is written before more is queued, so a burst
/// of large messages is not copied into one buffer.
const FLUSH_AT: usize = 64 * 1024;

type Ws = Conn<Upgraded>;

/// Runs one WebSocket connection until it closes; the app's `receive`
/// then reports how. `deflate`: the compression agreed in the handshake.
pub(crate) async fn run_session(
    mut upgraded: Upgraded,
    shared: Arc<WsShared>,
    inbound: mpsc::Sender<Inbound>,
    outbound: mpsc::Receiver<Outbound>,
    settings: Arc<WsSettings>,
    deflate: Option<Deflate>,
) {
    let closing = upgraded.take_closing();
    let conn = Conn::new(
        upgraded,
        settings.max_message_size,
        settings.max_frame_size,
        deflate,
    );
    let (code, reason) = session(conn, &shared, inbound, outbound, closing, &settings).await;
    shared.end(code, reason);
}

async fn session(
    mut conn: Ws,
    shared: &Arc<WsShared>,
    inbound: mpsc::Sender<Inbound>,
    mut outbound: mpsc::Receiver<Outbound>,
    mut closing: tokio::sync::oneshot::Receiver<Closing>,
    settings: &WsSettings,
) -> (u16, String) {
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
                        finish_close(&mut conn, frame).await;
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
            read = conn.read(), if permit.is_some() || discard => {
                match read {
                    Ok(Message::Text(text)) => {
                        if let Some(p) = permit.take() {
                            p.send(Inbound::Text(text));
                            shared.wake();
                        }
                    }
                    Ok(Message::Binary(data)) => {
                        if let Some(p) = permit.take() {
                            p.send(Inbound::Binary(data));
                            shared.wake();
                        }
                    }
                    Ok(Message::Pong(_)) => pong_due = None,
                    Ok(Message::Ping(data)) => {
                        conn.queue_pong(&data);
                        tokio::select! {
                            written = conn.flush() => {
                                if written.is_err() {
                                    return (ABNORMAL, String::new());
                                }
                            }
                            _ = &mut closing => return (ABNORMAL, String::new()),
                        }
                    }
                    Ok(Message::Close(frame)) => {
                        // Echo the client's close, then end.
                        let reported = reported_close(frame.as_ref());
                        conn.queue_close(frame.as_ref().map(|(c, r)| (*c, r.as_str())));
                        let _ = tokio::time::timeout(CLOSE_WAIT, conn.flush()).await;
                        return reported;
                    }
                    Err(e) => {
                        if let Some(code) = e.close_code() {
                            conn.queue_close(Some((code, "")));
                            let _ = tokio::time::timeout(CLOSE_WAIT, conn.flush()).await;
                            return (code, String::new());
                        }
                        return (ABNORMAL, String::new());
                    }
                }
            }
            out = outbound.recv() => {
                let Some(out) = out else {
                    // The app's side is gone without a close: close normally.
                    finish_close(&mut conn, close_frame(NORMAL, "")).await;
                    return (NORMAL, String::new());
                };
                // Everything the app queued goes out in one flush. A write
                // stuck on a client that does not read still hears the
                // server's stop (or the write timeout).
                let batch = write_batch(&mut conn, &mut outbound, out);
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
                    conn.queue_ping(&[]);
                    if conn.flush().await.is_err() {
                        return (ABNORMAL, String::new());
                    }
                    pong_due = settings.ping_timeout.map(|t| Instant::now() + t);
                }
            }
            _ = async { tokio::time::sleep_until(pong_due.expect("guarded")).await }, if pong_due.is_some() => {
                // No pong in time: the client is gone or stuck.
                let frame = close_frame(INTERNAL_ERROR, "keepalive ping timeout");
                conn.queue_close(frame.as_ref().map(|(c, r)| (*c, r.as_str())));
                let _ = tokio::time::timeout(Duration::from_secs(1), conn.flush()).await;
                return (ABNORMAL, String::new());
            }
        }
    }
}

/// Writes `first` and whatever else the app queued, then flushes; Some
/// when the session is over (the app closed it, or the write failed).
async fn write_batch(
    conn: &mut Ws,
    outbound: &mut mpsc::Receiver<Outbound>,
    first: Outbound,
) -> Option<(u16, String)> {
    let mut next = Some(first);
    while let Some(out) = next.take() {
        match out {
            Outbound::Close(code, reason) => {
                if conn.flush().await.is_err() {
                    return Some((ABNORMAL, String::new()));
                }
                let echoed = finish_close(conn, close_frame(code, &reason)).await;
                return Some(echoed.unwrap_or((code, reason)));
            }
            Outbound::Text(text) => conn.queue_message(true, text.as_bytes()),
            Outbound::Binary(data) => conn.queue_message(false, &data),
        }
        if conn.buffered() >= FLUSH_AT && conn.flush().await.is_err() {
            return Some((ABNORMAL, String::new()));
        }
        next = outbound.try_recv().ok();
    }
    if conn.flush().await.is_err() {
        return Some((ABNORMAL, String::new()));
    }
    None
}

/// Sends the server's close frame and waits (bounded) for the client's;
/// returns the code and reason the client echoed, if it did.
async fn finish_close(conn: &mut Ws, frame: Option<(u16, String)>) -> Option<(u16, String)> {
    let handshake = async {
        conn.queue_close(frame.as_ref().map(|(c, r)| (*c, r.as_str())));
        conn.flush().await.ok()?;
        loop {
            match conn.read().await {
                Ok(Message::Close(echo)) => return Some(reported_close(echo.as_ref())),
                Ok(_) => continue, // data after our close is dropped
                Err(_) => return None,
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

    #[test]
    fn a_close_without_a_code_reports_1005() {
        assert_eq!(reported_close(None), (NO_STATUS, String::new()));
        let frame = (4000, "bye".to_owned());
        assert_eq!(reported_close(Some(&frame)), (4000, "bye".to_owned()));
    }

    #[test]
    fn codes_that_may_not_be_sent_become_a_bare_close() {
        assert!(close_frame(NO_STATUS, "x").is_none());
        assert!(close_frame(ABNORMAL, "x").is_none());
        assert_eq!(close_frame(4001, "fine"), Some((4001, "fine".to_owned())));
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
    fn default_limits_are_16_mib_and_20_s_keepalive_with_compression_on() {
        let s = WsSettings::default();
        assert_eq!(s.max_message_size, 16 * 1024 * 1024);
        assert_eq!(s.max_frame_size, 16 * 1024 * 1024);
        assert_eq!(s.ping_interval, Some(Duration::from_secs(20)));
        assert_eq!(s.ping_timeout, Some(Duration::from_secs(20)));
        assert!(s.per_message_deflate);
    }

    #[test]
    fn compression_turned_off_negotiates_nothing() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::SEC_WEBSOCKET_EXTENSIONS,
            http::HeaderValue::from_static("permessage-deflate"),
        );
        assert!(WsSettings::default().negotiate(&headers).is_some());
        let off = WsSettings {
            per_message_deflate: false,
            ..WsSettings::default()
        };
        assert!(off.negotiate(&headers).is_none());
    }
}
