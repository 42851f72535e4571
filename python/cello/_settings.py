"""The settings of a run (``app.run()``, ``cello run``, ``cello serve``): from
code and flags, validated once into a ``RunConfig``. A leaf: it imports no
other part of Cello that serves, so everything that serves can import it."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from typing import Any

from cello.config import (
    ClusterConfig,
    Http2Config,
    Http3Config,
    LimitsConfig,
    TimeoutConfig,
    TlsConfig,
    WebSocketConfig,
)

ENVS = ("development", "production")
LOG_FORMATS = ("text", "json")
# 0: no I/O thread of its own, the event loop's thread serves in its waits.
# Cello's own handlers share one GIL with the loop, so that is their fastest
# layout (docs/handlers.md, "Dispatch design"); apps that spend most of a
# request in Python gain from 1 (docs/running.md, "Workers and threads").
DEFAULT_THREADS = 0
# Exit status of a worker whose startup hooks failed: the supervisor stops
# instead of restarting it forever.
STARTUP_FAILED = 3


class ConfigError(SystemExit):
    """A bad setting: one line on stderr, exit status 2."""

    def __init__(self, message: str) -> None:
        print(f"cello: error: {message}", file=sys.stderr, flush=True)
        super().__init__(2)


@dataclass(frozen=True)
class RunConfig:
    host: str
    port: int
    env: str
    debug: bool
    logs: bool
    log_format: str
    workers: int
    threads: int
    reload: bool
    reload_dir: str
    timeout: TimeoutConfig = field(default_factory=TimeoutConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    cluster: ClusterConfig = field(default_factory=lambda: ClusterConfig(workers=1))
    websocket: WebSocketConfig = field(default_factory=WebSocketConfig)


def add_flags(parser: argparse.ArgumentParser) -> None:
    """The flags shared by ``python app.py`` and ``cello run``."""
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="TCP port (default 8000; 0 picks one)")
    parser.add_argument("--env", help="development or production")
    parser.add_argument("--workers", type=int, help="worker processes")
    parser.add_argument(
        "--threads",
        type=int,
        help="Rust I/O threads of their own per process (default 0: the event loop's "
        "thread serves)",
    )
    parser.add_argument("--debug", action="store_true", default=None, help="debug mode")
    parser.add_argument(
        "--reload",
        action="store_true",
        default=None,
        help="restart when .py files change (needs watchfiles)",
    )
    logs = parser.add_mutually_exclusive_group()
    logs.add_argument(
        "--logs", dest="logs", action="store_true", default=None, help="access log on"
    )
    logs.add_argument("--no-logs", dest="logs", action="store_false", help="access log off")
    parser.add_argument("--log-format", help="access log format: text or json")
    parser.add_argument(
        "--ws-ping-interval", type=float, help="seconds between WebSocket pings (default 20)"
    )
    parser.add_argument(
        "--ws-ping-timeout", type=float, help="seconds a WebSocket pong may take (default 20)"
    )
    parser.add_argument(
        "--ws-max-size", type=int, help="largest WebSocket message in bytes (default 16 MiB)"
    )
    parser.add_argument(
        "--ws-per-message-deflate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="WebSocket permessage-deflate compression (default on)",
    )


def flags_from_argv(argv: list[str]) -> dict[str, Any]:
    """Flags found in ``argv``; unknown arguments are left for the app."""
    parser = argparse.ArgumentParser(add_help=False)
    add_flags(parser)
    try:
        flags, _ = parser.parse_known_args(argv)
    except SystemExit:  # argparse already printed what was wrong
        raise ConfigError("invalid command-line flags") from None
    return {k: v for k, v in vars(flags).items() if v is not None}


def _check_type(name: str, value: Any, expected: type) -> Any:
    if value is not None and not isinstance(value, expected):
        raise ConfigError(f"{name}= takes a {expected.__name__}, not {type(value).__name__}")
    return value


def resolve(code: dict[str, Any], flags: dict[str, Any], reload_dir: str) -> RunConfig:
    """Merges ``run()`` arguments with flags (flags win) and validates everything."""
    merged = {**{k: v for k, v in code.items() if v is not None}, **flags}
    _websocket_flags(merged)
    unknown = sorted(set(merged) - _KNOWN)
    if unknown:
        raise ConfigError(f"unknown run() option(s): {', '.join(unknown)}")
    env = merged.get("env", "development")
    if env not in ENVS:
        raise ConfigError(f"unknown env {env!r} (expected development or production)")
    port = merged.get("port", 8000)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ConfigError(f"invalid port {port!r} (expected 0-65535)")
    host = merged.get("host", "127.0.0.1")
    if not isinstance(host, str) or not host:
        raise ConfigError(f"invalid host {host!r}")
    debug = bool(merged.get("debug", env == "development"))
    logs = bool(merged.get("logs", debug))
    log_format = merged.get("log_format", "text")
    if log_format not in LOG_FORMATS:
        raise ConfigError(f"unknown log format {log_format!r} (expected text or json)")
    threads = merged.get("threads", DEFAULT_THREADS)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"invalid threads {threads!r} (expected 0 or more)")

    _check_workers_agree(code.get("workers"), merged.get("cluster"))
    try:
        timeout = _check_type("timeout", merged.get("timeout"), TimeoutConfig) or TimeoutConfig()
        limits = _check_type("limits", merged.get("limits"), LimitsConfig) or LimitsConfig()
        websocket = (
            _check_type("websocket", merged.get("websocket"), WebSocketConfig) or WebSocketConfig()
        )
        cluster = _check_type("cluster", merged.get("cluster"), ClusterConfig)
        workers = merged.get("workers", cluster.workers if cluster else 1)
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"invalid workers {workers!r} (expected 1 or more)")
        cluster = cluster or ClusterConfig(workers=workers)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None

    tls = _check_type("tls", merged.get("tls"), TlsConfig)
    if tls is not None:
        raise ConfigError("tls= is not available yet: HTTPS arrives in a later release")
    http2 = _check_type("http2", merged.get("http2"), Http2Config)
    if http2 is not None and http2.enabled:
        raise ConfigError("http2= is not available yet: HTTP/2 arrives in a later release")
    http3 = _check_type("http3", merged.get("http3"), Http3Config)
    if http3 is not None and http3.enabled:
        raise ConfigError("http3= is not available yet: HTTP/3 arrives in a later release")

    return RunConfig(
        host=host, port=port, env=env, debug=debug, logs=logs, log_format=log_format,
        workers=workers, threads=threads, reload=bool(merged.get("reload", False)),
        reload_dir=reload_dir, timeout=timeout, limits=limits, cluster=cluster,
        websocket=websocket,
    )  # fmt: skip


_WS_FLAGS = {
    "ws_ping_interval": "ping_interval",
    "ws_ping_timeout": "ping_timeout",
    "ws_max_size": "max_message_size",
    "ws_per_message_deflate": "per_message_deflate",
}


def _websocket_flags(merged: dict[str, Any]) -> None:
    """``--ws-*`` flags override the fields of ``websocket=WebSocketConfig()``."""
    given = {_WS_FLAGS[k]: merged.pop(k) for k in list(merged) if k in _WS_FLAGS}
    if not given:
        return
    base = merged.get("websocket")
    if base is not None and not isinstance(base, WebSocketConfig):
        return  # reported by the type check
    base = base or WebSocketConfig()
    fields = {
        "ping_interval": base.ping_interval,
        "ping_timeout": base.ping_timeout,
        "max_message_size": base.max_message_size,
        "max_frame_size": base.max_frame_size,
        "per_message_deflate": base.per_message_deflate,
    }
    # A 0 interval or timeout on the command line turns it off.
    for key in ("ping_interval", "ping_timeout"):
        if given.get(key) == 0:
            given[key] = None
    try:
        merged["websocket"] = WebSocketConfig(**{**fields, **given})
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _check_workers_agree(workers: Any, cluster: Any) -> None:
    """``run(workers=N)`` and ``ClusterConfig(workers=M)`` are one setting:
    two different values in code are a mistake, not a choice to guess at.
    (A ``--workers`` flag overrides both, as flags override code.)"""
    spelling = (
        getattr(cluster, "_workers_given", None) if isinstance(cluster, ClusterConfig) else None
    )
    if spelling and workers is not None and workers != cluster.workers:
        raise ValueError(
            f"run(workers={workers!r}) and ClusterConfig({spelling}={cluster.workers}) "
            "disagree: give the number of worker processes once"
        )


_KNOWN = {
    "host", "port", "env", "debug", "logs", "log_format", "workers", "threads", "reload",
    "timeout", "limits", "cluster", "tls", "http2", "http3", "websocket",
}  # fmt: skip


def main_dir() -> str:
    """The directory of the script being run, for the reloader to watch."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
