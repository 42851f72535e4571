"""Serving an ``App`` natively: the event loop on the main thread, the
socket and HTTP on Rust I/O threads."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cello import _cello
from cello._support import eager_starter

if TYPE_CHECKING:
    from cello.app import App

_ENVS = ("development", "production")
# Two I/O threads beat one and three on the 2-core benchmark machine
# (docs/handlers.md, "Dispatch design").
DEFAULT_THREADS = 2


class ConfigError(SystemExit):
    """A bad run() argument or flag: one line on stderr, exit status 2."""

    def __init__(self, message: str) -> None:
        print(f"cello: error: {message}", file=sys.stderr)
        super().__init__(2)


@dataclass(frozen=True)
class RunConfig:
    host: str
    port: int
    debug: bool
    env: str
    threads: int

    @classmethod
    def resolve(
        cls,
        *,
        host: str,
        port: int,
        debug: bool | None,
        env: str | None,
        workers: int | None,
        reload: bool,
        logs: bool | None,
        threads: int | None,
        options: dict[str, Any],
    ) -> RunConfig:
        flags = _parse_flags(sys.argv[1:])
        host = flags.host or host
        port = flags.port if flags.port is not None else port
        env = flags.env or env or "development"
        if flags.debug:
            debug = True
        threads = _first(flags.threads, threads, DEFAULT_THREADS)
        workers = _first(flags.workers, workers)
        if env not in _ENVS:
            raise ConfigError(f"unknown env {env!r} (expected development or production)")
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(f"invalid port {port!r} (expected 0-65535)")
        if not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"invalid threads {threads!r} (expected 1 or more)")
        if workers not in (None, 1):
            raise ConfigError("workers > 1 (multiple worker processes) is not available yet")
        if reload or flags.reload:
            raise ConfigError("reload is not available yet")
        unknown = sorted(set(options) - {"tls", "http2", "http3", "cluster", "timeout", "limits"})
        if unknown:
            raise ConfigError(f"unknown run() option(s): {', '.join(unknown)}")
        for name in ("tls", "http2", "http3", "cluster", "timeout", "limits"):
            if options.get(name) is not None:
                raise ConfigError(f"run({name}=...) is not available yet")
        del logs  # request logging arrives with the server runtime work
        return cls(
            host=host,
            port=port,
            debug=env == "development" if debug is None else debug,
            env=env,
            threads=threads,
        )


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _parse_flags(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    parser.add_argument("--env")
    parser.add_argument("--workers", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--reload", action="store_true")
    parser.add_argument("--no-logs", action="store_true")
    try:
        flags, _ = parser.parse_known_args(argv)
    except SystemExit:  # argparse already printed what was wrong
        raise ConfigError("invalid command-line flags") from None
    return flags


def _new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()

    # A Python subclass gives the loop an instance __dict__, which the eager
    # task start on Python 3.11 needs (see cello._support.eager_starter).
    class Loop(uvloop.Loop):  # type: ignore[misc,name-defined]
        pass

    return Loop()


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def serve(app: App, config: RunConfig) -> None:
    """Runs startup hooks, serves until a signal, drains, runs shutdown hooks."""
    app.debug = config.debug
    app._core.debug = config.debug
    loop = _new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(app._run_hooks("startup"))
        closed = loop.create_future()
        try:
            handle = _cello.start_server(
                app._core,
                config.host,
                config.port,
                loop,
                eager_starter(loop),
                closed,
                threads=config.threads,
            )
        except OSError as exc:
            raise ConfigError(str(exc)) from None
        loop.add_reader(handle.fileno(), handle.drain)
        signals_seen = 0

        def on_signal() -> None:
            nonlocal signals_seen
            signals_seen += 1
            if signals_seen > 1:
                raise SystemExit(1)  # second signal: stop waiting
            handle.shutdown()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal)
        print(
            f"Cello running on {_url(handle.host, handle.port)} (Press CTRL+C to quit)", flush=True
        )
        loop.run_until_complete(closed)
        loop.remove_reader(handle.fileno())
        handle.join()
        loop.run_until_complete(app._run_hooks("shutdown"))
    finally:
        asyncio.set_event_loop(None)
        loop.close()
