"""Serving an ``App`` in one process.

With no I/O thread of its own (``threads=0``, the default) everything runs on
the main thread: the event loop is ``cello._loop.EventLoop``, whose waits run
the native server. With ``threads=N`` the event loop runs on the main thread
and the sockets, HTTP and sync handlers on N Rust I/O threads."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import traceback
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from cello import _after_response as after_response
from cello import _cello, _loop
from cello._settings import STARTUP_FAILED, ConfigError, RunConfig
from cello._support import eager_starter
from cello.mounts import LifespanFailed

if TYPE_CHECKING:
    from cello.types import ServedApp


def supports_websocket() -> bool:
    """Whether the native server (door 1) accepts WebSocket upgrades: it
    then calls the app as an ASGI app with a ``websocket`` scope (see
    ``cello.asgi``). The native module says so with ``WEBSOCKET = True``."""
    return bool(getattr(_cello, "WEBSOCKET", False))


def _new_event_loop(threads: int) -> asyncio.AbstractEventLoop:
    if threads == 0 and _loop.supported():
        return _loop.EventLoop()
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()

    # A Python subclass gives the loop an instance __dict__, which the eager
    # task start on Python 3.11 needs (see cello._support.eager_starter).
    class Loop(uvloop.Loop):  # type: ignore[misc,name-defined]
        pass

    return Loop()


def url(host: str, port: int, tls: bool = False) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{port}"


def tls_args(config: RunConfig) -> tuple[str, str, str | None, str, str, bool] | None:
    """``TlsConfig`` as ``_cello.start_server(tls=...)`` takes it."""
    tls = config.tls
    if tls is None:
        return None
    return (tls.cert_path, tls.key_path, tls.ca_path, tls.min_version, tls.max_version,
            tls.require_client_cert)  # fmt: skip


def http2_args(config: RunConfig) -> tuple[int, int, int] | None:
    """``Http2Config`` as ``_cello.start_server(http2=...)`` takes it."""
    h2 = config.http2
    if h2 is None:
        return None
    return (h2.max_concurrent_streams, h2.initial_window_size, h2.max_frame_size)


def check_tls(config: RunConfig) -> None:
    """Reads the TLS files once before anything is bound or forked, so a
    bad certificate is one line and exit status 2, not a worker crash loop."""
    args = tls_args(config)
    if args is not None:
        try:
            _cello.check_tls(args, http2=config.http2 is not None)
        except ValueError as exc:
            raise ConfigError(str(exc)) from None


def _reload_tls(handle: _cello.ServerHandle) -> None:
    """SIGHUP: new handshakes get the certificate as the files now have it;
    a broken new certificate is reported and the current one kept."""
    try:
        handle.reload_tls()
    except ValueError as exc:
        print(
            f"cello: TLS reload failed, still serving the previous certificate: {exc}",
            file=sys.stderr,
            flush=True,
        )
    else:
        print(
            f"cello: TLS certificate reloaded (process {os.getpid()})", file=sys.stderr, flush=True
        )


def serve(
    app: ServedApp, config: RunConfig, fd: int | None = None, udp_fd: int | None = None
) -> None:
    """Runs startup hooks, serves until SIGINT/SIGTERM, lets in-flight requests
    finish, runs shutdown hooks. ``fd`` is an inherited listening socket (a
    worker process; ``udp_fd`` its HTTP/3 socket); without it the socket is
    bound here and the startup line printed."""
    app.debug = config.debug
    if config.logs and not app._logs_requests():
        app.enable_logging(format=config.log_format)
    if app._body_limit is None:
        app._core.max_body_size = config.limits.max_body_size
    loop = _new_event_loop(config.threads)
    driver = loop.driver if isinstance(loop, _loop.EventLoop) else None
    # Where the loop cannot run the server in its waits, one thread does.
    threads = 0 if driver else max(config.threads, 1)
    asyncio.set_event_loop(loop)
    try:
        try:
            loop.run_until_complete(app._run_hooks("startup"))
        except LifespanFailed as exc:
            print(f"cello: {exc}", file=sys.stderr, flush=True)
            raise SystemExit(STARTUP_FAILED) from None
        except Exception:
            print(f"cello: startup failed in process {os.getpid()}:", file=sys.stderr)
            traceback.print_exc()
            sys.stderr.flush()
            raise SystemExit(STARTUP_FAILED) from None
        closed = loop.create_future()
        timeout, limits = config.timeout, config.limits
        cluster = config.cluster
        # Not graceful: in-flight requests are cut off as soon as the stop comes.
        drain = (cluster.shutdown_timeout or 0.0) if cluster.graceful_shutdown else 0.0
        # A stop signal stays pending until the loop runs: uvloop drops one
        # that lands between add_signal_handler and the loop's start (the
        # worker then served on past its master's SIGTERM). Blocked before the
        # server's threads start, they inherit the mask, so only this thread
        # takes the signal once it is unblocked.
        watched = {signal.SIGINT, signal.SIGTERM} | ({signal.SIGHUP} if config.tls else set())
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, watched)
        try:
            handle = _cello.start_server(
                app._core, loop, eager_starter(loop), closed, driver=driver,
                host=config.host, port=config.port, fd=fd, threads=threads,
                shutdown_timeout=drain,
                header_read_timeout=timeout.read_header_timeout,
                body_read_timeout=timeout.read_body_timeout,
                idle_timeout=timeout.idle_timeout,
                write_timeout=timeout.write_timeout,
                handler_timeout=timeout.handler_timeout,
                max_connections=limits.max_connections,
                max_requests_per_connection=limits.max_requests_per_connection,
                max_headers=limits.max_headers,
                max_header_size=limits.max_header_size,
                # An upgrade no mount claims goes to the App itself, as ASGI.
                websocket_app=app,
                ws_ping_interval=config.websocket.ping_interval,
                ws_ping_timeout=config.websocket.ping_timeout,
                ws_max_message_size=config.websocket.max_message_size,
                ws_max_frame_size=config.websocket.max_frame_size,
                ws_per_message_deflate=config.websocket.per_message_deflate,
                tls=tls_args(config), http2=http2_args(config),
                http3=http3_args(config), udp_fd=udp_fd,
            )  # fmt: skip
        # A port in use, or (ValueError) an unusable HTTP/3 setting.
        except (OSError, ValueError) as exc:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            raise ConfigError(str(exc)) from None
        wake_fd = handle.fileno()
        if wake_fd is not None:
            loop.add_reader(wake_fd, handle.drain)
        signals_seen = 0

        def on_signal() -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen > 1:
                print("cello: second signal, exiting without waiting", file=sys.stderr)
                os._exit(1)
            handle.shutdown()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        if config.tls is not None:
            loop.add_signal_handler(signal.SIGHUP, _reload_tls, handle)
        if fd is None:
            shown = url(handle.host, handle.port, config.tls is not None)
            also = f" and HTTP/3 on UDP port {handle.port}" if config.http3 else ""
            print(
                f"Cello running on {shown}{also} (Press CTRL+C to quit)",
                flush=True,
            )
        else:
            _watch_parent(loop, handle)
        loop.call_soon(signal.pthread_sigmask, signal.SIG_SETMASK, mask)
        loop.run_until_complete(closed)
        if wake_fd is not None:
            loop.remove_reader(wake_fd)
        handle.join()
        _shut_down(loop, app, config, handle)
    finally:
        asyncio.set_event_loop(None)
        loop.close()


def http3_args(config: RunConfig) -> tuple[float, int, int, bool] | None:
    """``Http3Config`` as ``_cello.start_server(http3=...)`` takes it (its
    certificate is ``tls=``'s)."""
    h3 = config.http3
    if h3 is None:
        return None
    return (h3.max_idle_timeout, h3.max_udp_payload_size, h3.initial_max_streams_bidi,
            h3.enable_0rtt)  # fmt: skip


# How long tasks cancelled at exit get to run their cleanup (finally blocks,
# async context managers) before the process exits without them.
CANCEL_GRACE = 5.0


def _shut_down(
    loop: asyncio.AbstractEventLoop,
    app: ServedApp,
    config: RunConfig,
    handle: _cello.ServerHandle,
) -> None:
    """After the server stopped: what uvicorn and ``asyncio.run`` do, so the
    cleanup in handlers, their tasks and async generators runs. Requests still
    running past the shutdown timeout are cancelled before the shutdown hooks
    (which may close what they use); after the hooks, every other task is,
    then async generators are closed and the default executor shut down."""
    requests = [t for t in asyncio.all_tasks(loop) if isinstance(t.get_coro(), _cello.Drive)]
    if requests:
        print(
            f"cello: cancelling {len(requests)} request(s) still running at shutdown",
            file=sys.stderr,
            flush=True,
        )
    _cancel(loop, requests)
    # The responses of the last requests (finished, cancelled or abandoned
    # by their clients) queued their after-response callbacks: start them,
    # for the shutdown hooks to wait on.
    handle.drain()
    cluster = config.cluster
    # Without a graceful shutdown background work is not waited for either.
    wait = (cluster.shutdown_timeout or 0.0) if cluster.graceful_shutdown else 0.0
    loop.run_until_complete(after_response.drain(wait))
    try:
        loop.run_until_complete(app._run_hooks("shutdown", cluster.shutdown_timeout))
    finally:
        _cancel(loop, asyncio.all_tasks(loop))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(_shut_down_executor(loop))


def _cancel(loop: asyncio.AbstractEventLoop, tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancels ``tasks`` and waits (bounded) for them to finish, reporting
    what they raised as ``asyncio.run`` does."""
    tasks = [t for t in tasks if not t.done()]
    if not tasks:
        return
    for task in tasks:
        task.cancel()
    done, pending = loop.run_until_complete(asyncio.wait(tasks, timeout=CANCEL_GRACE))
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            loop.call_exception_handler(
                {
                    "message": "unhandled exception in a task cancelled at shutdown",
                    "exception": task.exception(),
                    "task": task,
                }
            )
    if pending:
        print(
            f"cello: {len(pending)} task(s) still running {CANCEL_GRACE:g}s after being "
            "cancelled at shutdown; exiting without them",
            file=sys.stderr,
            flush=True,
        )


async def _shut_down_executor(loop: asyncio.AbstractEventLoop) -> None:
    # Python 3.12 added a timeout of its own; 3.11 would wait for ever.
    try:
        await asyncio.wait_for(loop.shutdown_default_executor(), CANCEL_GRACE)
    except TimeoutError:
        print("cello: the default executor did not shut down in time", file=sys.stderr)


def _watch_parent(loop: asyncio.AbstractEventLoop, handle: _cello.ServerHandle) -> None:
    """A worker whose master died (even by SIGKILL) shuts down instead of
    serving on as an orphan."""
    parent = os.getppid()

    def check() -> None:
        if os.getppid() != parent:
            handle.shutdown()
        else:
            loop.call_later(1.0, check)

    loop.call_later(1.0, check)
