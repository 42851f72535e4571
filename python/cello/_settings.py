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
    # HTTPS when set; HTTP/2 (ALPN h2 over TLS, prior knowledge without) when set.
    tls: TlsConfig | None = None
    http2: Http2Config | None = None
    # Set only when HTTP/3 is enabled (it then has ``tls``).
    http3: Http3Config | None = None


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
    parser.add_argument("--tls-cert", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--tls-key", help="the certificate's private key (PEM)")
    parser.add_argument(
        "--tls-ca", help="CA certificates (PEM) client certificates are checked against"
    )
    parser.add_argument("--tls-min-version", help="lowest TLS version: 1.2 (default) or 1.3")
    parser.add_argument("--tls-max-version", help="highest TLS version: 1.2 or 1.3 (default)")
    parser.add_argument(
        "--tls-require-client-cert",
        action="store_true",
        default=None,
        help="refuse clients without a certificate signed by --tls-ca",
    )
    http2 = parser.add_mutually_exclusive_group()
    http2.add_argument(
        "--http2", dest="http2_flag", action="store_true", default=None, help="serve HTTP/2 too"
    )
    http2.add_argument(
        "--no-http2", dest="http2_flag", action="store_false", help="serve HTTP/1.1 only"
    )
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
    parser.add_argument(
        "--http3",
        dest="http3_flag",
        action="store_true",
        default=None,
        help="also serve HTTP/3 (QUIC) on the UDP port of --port (needs TLS)",
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
    _tls_flags(merged)
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
    if _workers_count_threads(code, flags):
        # The server-configuration document's vocabulary: beside
        # ClusterConfig(processes=N), run(workers=M) is the I/O threads of
        # each of the N processes ("processes x workers").
        given = merged.pop("workers")
        if merged.setdefault("threads", given) != given:
            raise ConfigError(
                f"run(workers={given}) beside ClusterConfig(processes=...) counts the threads "
                f"of each process, and threads={merged['threads']!r} disagrees"
            )
    else:
        try:
            _check_workers_agree(code.get("workers"), merged.get("cluster"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    threads = merged.get("threads", DEFAULT_THREADS)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ConfigError(f"invalid threads {threads!r} (expected 0 or more)")

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
    http2 = _check_type("http2", merged.get("http2"), Http2Config)
    if http2 is not None and not http2.enabled:
        http2 = None
    if tls is not None and tls.require_client_cert and not tls.ca_path:
        raise ConfigError(
            "TlsConfig(require_client_cert=True) needs ca_path: the CA client "
            "certificates are checked against"
        )
    http3 = _http3(merged, tls)

    return RunConfig(
        host=host, port=port, env=env, debug=debug, logs=logs, log_format=log_format,
        workers=workers, threads=threads, reload=bool(merged.get("reload", False)),
        reload_dir=reload_dir, timeout=timeout, limits=limits, cluster=cluster,
        websocket=websocket, tls=tls, http2=http2, http3=http3,
    )  # fmt: skip


def _http3(merged: dict[str, Any], tls: TlsConfig | None) -> Http3Config | None:
    """The HTTP/3 settings when HTTP/3 is on (``http3=`` enabled, or the
    ``--http3`` flag, which turns on the given or default ``Http3Config``)."""
    http3 = _check_type("http3", merged.get("http3"), Http3Config)
    flag = merged.pop("http3_flag", None)
    if flag:
        given = http3 or Http3Config()
        http3 = Http3Config(
            max_idle_timeout=given.max_idle_timeout,
            max_udp_payload_size=given.max_udp_payload_size,
            initial_max_streams_bidi=given.initial_max_streams_bidi,
            enable_0rtt=given.enable_0rtt,
            enabled=True,
        )
    if http3 is None or not http3.enabled:
        return None
    if tls is None:
        raise ConfigError(
            "HTTP/3 needs TLS: pass tls=TlsConfig(cert_path=..., key_path=...) with http3="
        )
    return http3


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


_TLS_FLAGS = {
    "tls_cert": "cert_path",
    "tls_key": "key_path",
    "tls_ca": "ca_path",
    "tls_min_version": "min_version",
    "tls_max_version": "max_version",
    "tls_require_client_cert": "require_client_cert",
}


def _tls_flags(merged: dict[str, Any]) -> None:
    """``--tls-*`` flags override the fields of ``tls=TlsConfig()``;
    ``--http2``/``--no-http2`` turn HTTP/2 on (with ``http2=``'s settings
    if given) or off."""
    flag = merged.pop("http2_flag", None)
    if flag is True and not isinstance(merged.get("http2"), Http2Config):
        merged["http2"] = Http2Config()
    elif flag is False:
        merged.pop("http2", None)
    given = {_TLS_FLAGS[k]: merged.pop(k) for k in list(merged) if k in _TLS_FLAGS}
    if not given:
        return
    base = merged.get("tls")
    if base is not None and not isinstance(base, TlsConfig):
        return  # reported by the type check
    fields: dict[str, Any] = {}
    if base is not None:
        fields = {
            "cert_path": base.cert_path,
            "key_path": base.key_path,
            "ca_path": base.ca_path,
            "min_version": base.min_version,
            "max_version": base.max_version,
            "require_client_cert": base.require_client_cert,
        }
    fields.update(given)
    missing = [f"--tls-{k[:-5]}" for k in ("cert_path", "key_path") if not fields.get(k)]
    if missing:
        raise ConfigError(f"TLS needs {' and '.join(missing)} too")
    try:
        merged["tls"] = TlsConfig(**fields)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _workers_count_threads(code: dict[str, Any], flags: dict[str, Any]) -> bool:
    """``run(workers=M, cluster=ClusterConfig(processes=N))``, as the
    server-configuration document writes it: there ``workers`` is the
    threads per process. (``ClusterConfig(workers=N)`` and a ``--workers``
    flag count processes, as everywhere else.)"""
    cluster = code.get("cluster")
    return (
        isinstance(cluster, ClusterConfig)
        and getattr(cluster, "_workers_given", None) == "processes"
        and code.get("workers") is not None
        and "workers" not in flags
    )


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
    "timeout", "limits", "cluster", "tls", "http2", "http3", "http3_flag", "websocket",
}  # fmt: skip


def main_dir() -> str:
    """The directory of the script being run, for the reloader to watch."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
