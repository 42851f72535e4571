//! Per-connection bookkeeping: which phase a connection is in, and the
//! sweeper that closes connections whose phase lasted too long.
//!
//! hyper's own header timeout also runs while a keep-alive connection waits
//! for its next request, so it cannot tell "slow to send headers" (cut off
//! after `header_read`) from "idle between requests" (allowed `idle`). This
//! module tracks both by watching the bytes themselves.
//!
//! Phases change on every request, so nothing here wakes a task when they
//! do: one sweeper task per server looks at every connection a few times per
//! shortest timeout and tells the expired ones through a one-shot channel.
//! A deadline is therefore enforced up to one sweep late.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;

use crate::server::clock::coarse_ms;
use crate::server::parse_error::{is_automatic_answer, problem_answer, HeadLimits};

const IDLE: u8 = 0;
const HEAD: u8 = 1;
const BUSY: u8 = 2;

/// Connection deadlines; `None` disables one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// From the first byte of a request until its head is complete.
    pub header_read: Option<Duration>,
    /// Between requests on a keep-alive connection (and before the first).
    pub idle: Option<Duration>,
    /// How long one write may wait on a client that does not read.
    pub write: Option<Duration>,
}

impl Timeouts {
    /// How often the sweeper looks: a quarter of the shortest timeout.
    fn sweep_interval(&self) -> Duration {
        [self.header_read, self.idle, self.write]
            .into_iter()
            .flatten()
            .min()
            .map(|d| (d / 4).clamp(Duration::from_millis(10), Duration::from_secs(1)))
            .unwrap_or(Duration::from_secs(1))
    }
}

/// Why a connection is being closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Idle too long: close it gracefully.
    Idle,
    /// Headers too slow, or the client stopped reading: drop it.
    Stalled,
    /// The server is stopping: finish the request in flight, then close.
    Stopping,
}

/// Where a connection goes once hyper has written a 101.
pub(crate) enum Switch {
    /// To whoever holds the receiver (see `upgrade`): a WebSocket server.
    HandOver(oneshot::Sender<crate::server::upgrade::Upgraded>),
    /// To HTTP/2, with the upgrade request replayed as stream 1 (see `h2c`).
    Http2(bytes::Bytes),
}

pub(crate) struct ConnState {
    phase: AtomicU8,
    phase_since_ms: AtomicU64,
    /// 0 when no write is blocked, otherwise (ms since epoch) + 1.
    write_blocked_since: AtomicU64,
    in_flight: AtomicUsize,
    pub(crate) requests: AtomicUsize,
    expire: Mutex<Option<oneshot::Sender<Expired>>>,
    /// Set when a 101 response asked for the connection.
    upgrade: Mutex<Option<Switch>>,
}

impl ConnState {
    /// A new connection's state and the receiver that fires when it expires.
    pub(crate) fn new() -> (Arc<Self>, oneshot::Receiver<Expired>) {
        let (tx, rx) = oneshot::channel();
        let state = Arc::new(ConnState {
            phase: AtomicU8::new(IDLE),
            phase_since_ms: AtomicU64::new(coarse_ms()),
            write_blocked_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            expire: Mutex::new(Some(tx)),
            upgrade: Mutex::new(None),
        });
        (state, rx)
    }

    fn now_ms(&self) -> u64 {
        coarse_ms()
    }

    fn bytes_arrived(&self) {
        // A plain load first: the common case (already reading, or busy) stays a read.
        if self.phase.load(Ordering::Relaxed) == IDLE
            && self
                .phase
                .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.phase_since_ms.store(self.now_ms(), Ordering::Release);
        }
    }

    /// True while a request is with the service or its response body lives.
    fn serving(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) > 0
    }

    /// A request head was parsed and handed to the service.
    pub(crate) fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.phase.store(BUSY, Ordering::Release);
        RequestGuard(self.clone())
    }

    fn write_blocked(&self, blocked: bool) {
        let since = self.write_blocked_since.load(Ordering::Relaxed);
        if blocked && since == 0 {
            self.write_blocked_since
                .store(self.now_ms() + 1, Ordering::Release);
        } else if !blocked && since != 0 {
            self.write_blocked_since.store(0, Ordering::Release);
        }
    }

    /// What has expired by now, if anything.
    fn expired(&self, t: &Timeouts) -> Option<Expired> {
        let now = self.now_ms();
        let past = |since: u64, limit: Option<Duration>| {
            limit.is_some_and(|d| now >= since + d.as_millis() as u64)
        };
        let blocked = self.write_blocked_since.load(Ordering::Acquire);
        if blocked != 0 && past(blocked - 1, t.write) {
            return Some(Expired::Stalled);
        }
        let since = self.phase_since_ms.load(Ordering::Acquire);
        match self.phase.load(Ordering::Acquire) {
            IDLE if past(since, t.idle) => Some(Expired::Idle),
            HEAD if past(since, t.header_read) => Some(Expired::Stalled),
            _ => None,
        }
    }

    /// Where the connection goes once hyper has written the 101 response.
    pub(crate) fn set_upgrade(&self, to: Switch) {
        *self.upgrade.lock().unwrap_or_else(|p| p.into_inner()) = Some(to);
    }

    pub(crate) fn take_upgrade(&self) -> Option<Switch> {
        self.upgrade
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Tells the connection task to close; true if it had not been told yet.
    fn fire(&self, why: Expired) -> bool {
        let sender = self.expire.lock().unwrap_or_else(|p| p.into_inner()).take();
        sender.map(|tx| tx.send(why).is_ok()).unwrap_or(false)
    }
}

/// Every live connection of one server, for the sweeper.
#[derive(Default)]
pub(crate) struct Registry {
    /// Each connection, with its task so a stop can cut it off.
    conns: Mutex<Vec<(Weak<ConnState>, Option<AbortHandle>)>>,
}

impl Registry {
    pub(crate) fn add(&self, state: &Arc<ConnState>, task: Option<AbortHandle>) {
        self.conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((Arc::downgrade(state), task));
    }

    /// Tells every live connection the server is stopping. One that was
    /// already told to close (idle, stalled) is on its way out anyway.
    pub(crate) fn stop_all(&self) {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        for state in conns.iter().filter_map(|(weak, _)| weak.upgrade()) {
            state.fire(Expired::Stopping);
        }
    }

    /// Closes every connection still open: the shutdown stopped waiting for
    /// them. Their tasks would otherwise live on in a runtime that outlives
    /// the server (the event loop's), answering requests after the stop.
    pub(crate) fn abort_all(&self) {
        let conns = std::mem::take(&mut *self.conns.lock().unwrap_or_else(|p| p.into_inner()));
        for task in conns.into_iter().filter_map(|(_, task)| task) {
            task.abort();
        }
    }

    /// Fires every expired connection and forgets closed ones.
    fn sweep(&self, timeouts: &Timeouts) {
        let mut conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        conns.retain(|(weak, _)| match weak.upgrade() {
            Some(state) => {
                if let Some(why) = state.expired(timeouts) {
                    state.fire(why);
                }
                true
            }
            None => false,
        });
    }
}

/// Sweeps `registry` until its server drops it.
pub(crate) async fn run_sweeper(registry: Weak<Registry>, timeouts: Timeouts) {
    let mut tick = tokio::time::interval(timeouts.sweep_interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match registry.upgrade() {
            Some(registry) => registry.sweep(&timeouts),
            None => return,
        }
    }
}

/// Held by a response body; dropping it marks the request finished.
pub(crate) struct RequestGuard(Arc<ConnState>);

impl RequestGuard {
    pub(crate) fn state(&self) -> &Arc<ConnState> {
        &self.0
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let state = &self.0;
        if state.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            state
                .phase_since_ms
                .store(state.now_ms(), Ordering::Release);
            state.phase.store(IDLE, Ordering::Release);
        }
    }
}

/// A socket that reports arriving bytes and blocked writes to its `ConnState`,
/// and holds back what may be hyper's own answer to an unparsable request
/// (see `parse_error`) until `finish` knows whether it was.
pub(crate) struct TrackedIo<S> {
    inner: S,
    state: Arc<ConnState>,
    held: Option<Vec<u8>>,
    /// Whether arriving bytes start a request head (HTTP/1). An HTTP/2
    /// connection receives frames (pings, window updates) while idle, so
    /// only its requests mark it busy: no head deadline applies.
    heads: bool,
}

impl<S> TrackedIo<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>) -> Self {
        TrackedIo {
            inner,
            state,
            held: None,
            heads: true,
        }
    }

    /// The socket, for a connection that changes protocol after a 101
    /// (nothing is held back then: the 101 went out).
    pub(crate) fn into_inner(self) -> S {
        debug_assert!(self.held.is_none());
        self.inner
    }

    /// For an HTTP/2 connection: idle and write deadlines, no head deadline.
    pub(crate) fn for_http2(inner: S, state: Arc<ConnState>) -> Self {
        TrackedIo {
            heads: false,
            ..TrackedIo::new(inner, state)
        }
    }

    /// Whether to hold `data` back: no request is being served, so hyper
    /// writes on its own, and it has the shape of hyper's error answer.
    fn holds(&self, data: &[u8]) -> bool {
        self.heads && !self.state.serving() && is_automatic_answer(data)
    }
}

impl<S: AsyncWrite + Unpin> TrackedIo<S> {
    /// Writes held bytes: hyper wrote more after them, so they were a
    /// response of that shape and not its error answer.
    fn poll_release(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(held) = &mut self.held {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, held))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            held.drain(..n);
            if held.is_empty() {
                self.held = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Ends a connection hyper has finished with (without shutting it down):
    /// held bytes go out as they are, or as a problem response when hyper
    /// ended on a parse error. Then the socket is shut down as hyper would
    /// have: after a clean end or a parse error, not after an I/O failure.
    pub(crate) async fn finish(mut self, ended: &Result<(), hyper::Error>, limits: HeadLimits) {
        let unparsable = ended.as_ref().err().filter(|e| e.is_parse());
        if let Some(held) = self.held.take() {
            let answer = match unparsable {
                Some(e) => problem_answer(&held, e, limits),
                None => held,
            };
            if self.inner.write_all(&answer).await.is_err() {
                return;
            }
        }
        if ended.is_ok() || unparsable.is_some() {
            let _ = self.inner.shutdown().await;
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TrackedIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if this.heads && matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.bytes_arrived();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TrackedIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        if this.holds(data) {
            this.held = Some(data.to_vec());
            return Poll::Ready(Ok(data.len()));
        }
        let polled = Pin::new(&mut this.inner).poll_write(cx, data);
        this.state.write_blocked(polled.is_pending());
        polled
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        // hyper's answer is one buffer; a response with a body is several.
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next()) {
            if this.holds(only) {
                this.held = Some(only.to_vec());
                return Poll::Ready(Ok(only.len()));
            }
        }
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.state.write_blocked(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    /// Does not write held bytes: hyper flushes its error answer too, and
    /// only the end of the connection tells which it was.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_release(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeouts() -> Timeouts {
        Timeouts {
            header_read: Some(Duration::from_millis(50)),
            idle: Some(Duration::from_millis(200)),
            write: Some(Duration::from_millis(50)),
        }
    }

    fn sweep_until_fired(state: &Arc<ConnState>, rx: &mut oneshot::Receiver<Expired>) -> Expired {
        let registry = Registry::default();
        registry.add(state, None);
        for _ in 0..200 {
            registry.sweep(&timeouts());
            if let Ok(why) = rx.try_recv() {
                return why;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        panic!("never expired");
    }

    #[test]
    fn idle_connection_expires_as_idle() {
        let (state, mut rx) = ConnState::new();
        assert_eq!(sweep_until_fired(&state, &mut rx), Expired::Idle);
    }

    #[test]
    fn partial_head_expires_as_stalled_before_idle() {
        let (state, mut rx) = ConnState::new();
        state.bytes_arrived();
        assert_eq!(sweep_until_fired(&state, &mut rx), Expired::Stalled);
    }

    #[test]
    fn blocked_write_expires_as_stalled() {
        let (state, mut rx) = ConnState::new();
        let _guard = state.request_started();
        state.write_blocked(true);
        assert_eq!(sweep_until_fired(&state, &mut rx), Expired::Stalled);
    }

    #[test]
    fn busy_connection_does_not_expire() {
        let (state, _rx) = ConnState::new();
        state.bytes_arrived();
        let guard = state.request_started();
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(state.expired(&timeouts()), None);
        drop(guard);
        assert_eq!(
            state.expired(&timeouts()),
            None,
            "idle time counts from the end of the request"
        );
    }

    #[test]
    fn registry_forgets_closed_connections() {
        let registry = Registry::default();
        let (state, _rx) = ConnState::new();
        registry.add(&state, None);
        drop(state);
        registry.sweep(&timeouts());
        assert!(registry.conns.lock().unwrap().is_empty());
    }
}
