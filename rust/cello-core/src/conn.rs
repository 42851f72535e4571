//! Per-connection bookkeeping: which phase a connection is in, and the
//! watchdog that closes it when a phase lasts too long.
//!
//! hyper's own header timeout also runs while a keep-alive connection waits
//! for its next request, so it cannot tell "slow to send headers" (cut off
//! after `header_read`) from "idle between requests" (allowed `idle`). This
//! module tracks both by watching the bytes themselves.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

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
    pub fn any(&self) -> bool {
        self.header_read.is_some() || self.idle.is_some() || self.write.is_some()
    }
}

/// Why the watchdog gave up on a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expired {
    /// Idle too long: close it gracefully.
    Idle,
    /// Headers too slow, or the client stopped reading: drop it.
    Stalled,
}

pub(crate) struct ConnState {
    epoch: Instant,
    phase: AtomicU8,
    phase_since_ms: AtomicU64,
    /// 0 when no write is blocked, otherwise (ms since epoch) + 1.
    write_blocked_since: AtomicU64,
    in_flight: AtomicUsize,
    pub(crate) requests: AtomicUsize,
    changed: Notify,
}

impl ConnState {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(ConnState {
            epoch: Instant::now(),
            phase: AtomicU8::new(IDLE),
            phase_since_ms: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            changed: Notify::new(),
        })
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn bytes_arrived(&self) {
        if self
            .phase
            .compare_exchange(IDLE, HEAD, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            self.phase_since_ms.store(self.now_ms(), Ordering::Release);
            self.changed.notify_one();
        }
    }

    /// A request head was parsed and handed to the service.
    pub(crate) fn request_started(self: &Arc<Self>) -> RequestGuard {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        self.phase.store(BUSY, Ordering::Release);
        RequestGuard(self.clone())
    }

    fn write_blocked(&self, blocked: bool) {
        if blocked {
            if self.write_blocked_since.load(Ordering::Relaxed) == 0 {
                self.write_blocked_since
                    .store(self.now_ms() + 1, Ordering::Release);
                self.changed.notify_one();
            }
        } else if self.write_blocked_since.load(Ordering::Relaxed) != 0 {
            self.write_blocked_since.store(0, Ordering::Release);
        }
    }

    /// The next moment something expires, and what; `None` when nothing can.
    fn next_deadline(&self, t: &Timeouts) -> Option<(u64, Expired)> {
        let since = self.phase_since_ms.load(Ordering::Acquire);
        let phase = match self.phase.load(Ordering::Acquire) {
            IDLE => t
                .idle
                .map(|d| (since + d.as_millis() as u64, Expired::Idle)),
            HEAD => t
                .header_read
                .map(|d| (since + d.as_millis() as u64, Expired::Stalled)),
            _ => None,
        };
        let blocked = self.write_blocked_since.load(Ordering::Acquire);
        let write = (blocked != 0)
            .then_some(t.write)
            .flatten()
            .map(|d| (blocked - 1 + d.as_millis() as u64, Expired::Stalled));
        match (phase, write) {
            (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
            (a, b) => a.or(b),
        }
    }

    /// Resolves when a deadline passes; runs alongside the connection.
    pub(crate) async fn watchdog(self: Arc<Self>, timeouts: Timeouts) -> Expired {
        loop {
            match self.next_deadline(&timeouts) {
                Some((at, why)) => {
                    let now = self.now_ms();
                    if at <= now {
                        return why;
                    }
                    let sleep = tokio::time::sleep(Duration::from_millis(at - now));
                    tokio::select! {
                        () = sleep => {}
                        () = self.changed.notified() => {}
                    }
                }
                None => self.changed.notified().await,
            }
        }
    }
}

/// Held by a response body; dropping it marks the request finished.
pub(crate) struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let state = &self.0;
        if state.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            state
                .phase_since_ms
                .store(state.now_ms(), Ordering::Release);
            state.phase.store(IDLE, Ordering::Release);
            state.changed.notify_one();
        }
    }
}

/// A socket that reports arriving bytes and blocked writes to its `ConnState`.
pub(crate) struct TrackedIo<S> {
    inner: S,
    state: Arc<ConnState>,
}

impl<S> TrackedIo<S> {
    pub(crate) fn new(inner: S, state: Arc<ConnState>) -> Self {
        TrackedIo { inner, state }
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
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
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
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.state.write_blocked(polled.is_pending());
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
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

    #[tokio::test]
    async fn idle_connection_expires_as_idle() {
        let state = ConnState::new();
        assert_eq!(state.clone().watchdog(timeouts()).await, Expired::Idle);
    }

    #[tokio::test]
    async fn partial_head_expires_as_stalled_before_idle() {
        let state = ConnState::new();
        state.bytes_arrived();
        assert_eq!(state.clone().watchdog(timeouts()).await, Expired::Stalled);
    }

    #[tokio::test]
    async fn busy_connection_never_expires_until_finished() {
        let state = ConnState::new();
        state.bytes_arrived();
        let guard = state.request_started();
        let dog = tokio::spawn(state.clone().watchdog(timeouts()));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!dog.is_finished());
        drop(guard);
        assert_eq!(dog.await.unwrap(), Expired::Idle);
    }
}
