"""Server configuration: timeouts, limits, worker processes, and the
protocol options (TLS, HTTP/2, HTTP/3).

Each class accepts the spellings found in Cello's documentation as well as
the original keyword names, and validates its values when constructed, so a
bad setting fails at startup with a message naming it.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "ClusterConfig",
    "Http2Config",
    "Http3Config",
    "LimitsConfig",
    "TimeoutConfig",
    "TlsConfig",
    "WebSocketConfig",
]


def _seconds(name: str, value: Any) -> float | None:
    """A positive number of seconds, or None to disable."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number of seconds or None, not {value!r}")
    return float(value)


def _count(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


class _Default:
    """Marks an argument left out, so that an explicit None can mean "disabled"."""

    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()


def _pick(name: str, given: Any, aliases: dict[str, Any], default: Any) -> Any:
    """One setting that may be spelled several ways; two spellings at once is an error."""
    spelled = {k: v for k, v in aliases.items() if v is not DEFAULT}
    if given is not DEFAULT:
        spelled = {name: given, **spelled}
    if len(spelled) > 1:
        raise ValueError(f"conflicting settings: {', '.join(sorted(spelled))} mean the same thing")
    return next(iter(spelled.values())) if spelled else default


class TimeoutConfig:
    """How long each phase of a request may take, in seconds; ``None`` disables one.

    - ``read_header``: from a request's first byte until its head is complete;
      a slower client (slow-loris) has its connection closed.
    - ``read_body``: receiving the body; slower gives 408.
    - ``write``: one write to a client that stopped reading; the connection is closed.
    - ``idle``: a keep-alive connection waiting for its next request.
    - ``handler``: the handler producing its response; slower gives 504.

    Also accepted: ``request_timeout`` (= ``read_body``), ``response_timeout``
    (= ``handler``), ``keep_alive_timeout`` (= ``idle``) and the attribute
    names (``read_header_timeout``...).
    """

    def __init__(
        self,
        read_header: float | None = DEFAULT,
        read_body: float | None = DEFAULT,
        write: float | None = DEFAULT,
        idle: float | None = DEFAULT,
        handler: float | None = DEFAULT,
        *,
        read_header_timeout: float | None = DEFAULT,
        read_body_timeout: float | None = DEFAULT,
        write_timeout: float | None = DEFAULT,
        idle_timeout: float | None = DEFAULT,
        handler_timeout: float | None = DEFAULT,
        request_timeout: float | None = DEFAULT,
        response_timeout: float | None = DEFAULT,
        keep_alive_timeout: float | None = DEFAULT,
    ) -> None:
        self.read_header_timeout = _seconds(
            "read_header",
            _pick("read_header", read_header, {"read_header_timeout": read_header_timeout}, 5),
        )
        self.read_body_timeout = _seconds(
            "read_body",
            _pick(
                "read_body",
                read_body,
                {"read_body_timeout": read_body_timeout, "request_timeout": request_timeout},
                30,
            ),
        )
        self.write_timeout = _seconds(
            "write", _pick("write", write, {"write_timeout": write_timeout}, 30)
        )
        self.idle_timeout = _seconds(
            "idle",
            _pick(
                "idle",
                idle,
                {"idle_timeout": idle_timeout, "keep_alive_timeout": keep_alive_timeout},
                60,
            ),
        )
        self.handler_timeout = _seconds(
            "handler",
            _pick(
                "handler",
                handler,
                {"handler_timeout": handler_timeout, "response_timeout": response_timeout},
                30,
            ),
        )

    def __repr__(self) -> str:
        return (
            f"TimeoutConfig(read_header={self.read_header_timeout}, "
            f"read_body={self.read_body_timeout}, write={self.write_timeout}, "
            f"idle={self.idle_timeout}, handler={self.handler_timeout})"
        )


class WebSocketConfig:
    """WebSocket settings of the native server (``run(websocket=...)``,
    ``cello serve --ws-*``), for Cello's own WebSocket routes and hosted
    ASGI apps alike.

    - ``ping_interval``: seconds between the server's pings (None: no pings).
    - ``ping_timeout``: seconds a pong may take before the connection is
      dropped (None: wait for ever).
    - ``max_message_size``: bytes in one message after reassembly; a larger
      one closes the connection with 1009.
    - ``max_frame_size``: bytes in one frame; larger also closes with 1009.
    - ``per_message_deflate``: agree to permessage-deflate compression
      (RFC 7692) with clients that offer it; ``max_message_size`` then
      limits the decompressed size.
    """

    def __init__(
        self,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        max_message_size: int = 16 * 1024 * 1024,
        max_frame_size: int = 16 * 1024 * 1024,
        per_message_deflate: bool = True,
    ) -> None:
        self.ping_interval = _seconds("ping_interval", ping_interval)
        self.ping_timeout = _seconds("ping_timeout", ping_timeout)
        self.max_message_size = _count("max_message_size", max_message_size)
        self.max_frame_size = _count("max_frame_size", max_frame_size)
        if not isinstance(per_message_deflate, bool):
            raise ValueError(
                f"per_message_deflate must be True or False, not {per_message_deflate!r}"
            )
        self.per_message_deflate = per_message_deflate

    def __repr__(self) -> str:
        return (
            f"WebSocketConfig(ping_interval={self.ping_interval!r}, "
            f"ping_timeout={self.ping_timeout!r}, max_message_size={self.max_message_size!r}, "
            f"max_frame_size={self.max_frame_size!r}, "
            f"per_message_deflate={self.per_message_deflate!r})"
        )


class LimitsConfig:
    """Connection and request size limits.

    - ``max_header_size``: bytes in a request head (more: 431).
    - ``max_headers``: header fields in a request (more: 431).
    - ``max_body_size`` (also ``max_request_size``): body bytes (more: 413,
      as soon as ``Content-Length`` or the chunked stream says so).
    - ``max_connections``: connections served at once per worker; further
      clients wait in the listen backlog.
    - ``max_requests_per_connection``: then the connection is closed (None: no limit).
    """

    def __init__(
        self,
        max_header_size: int = 8192,
        max_body_size: int = DEFAULT,
        max_connections: int = 10_000,
        max_requests_per_connection: int | None = 1000,
        *,
        max_request_size: int = DEFAULT,
        max_headers: int = 100,
    ) -> None:
        self.max_header_size = _count("max_header_size", max_header_size)
        if self.max_header_size is not None and self.max_header_size < 1024:
            raise ValueError("max_header_size must be at least 1024 bytes")
        self.max_body_size = _count(
            "max_body_size",
            _pick(
                "max_body_size",
                max_body_size,
                {"max_request_size": max_request_size},
                10 * 1024 * 1024,
            ),
        )
        self.max_connections = _count("max_connections", max_connections)
        self.max_requests_per_connection = _count(
            "max_requests_per_connection", max_requests_per_connection, allow_none=True
        )
        self.max_headers = _count("max_headers", max_headers)

    @property
    def max_request_size(self) -> int | None:
        return self.max_body_size

    def __repr__(self) -> str:
        return (
            f"LimitsConfig(max_header_size={self.max_header_size}, "
            f"max_body_size={self.max_body_size}, max_connections={self.max_connections}, "
            f"max_requests_per_connection={self.max_requests_per_connection}, "
            f"max_headers={self.max_headers})"
        )


class ClusterConfig:
    """Worker processes: how many, and how the master supervises them.

    ``workers`` (also ``processes``) defaults to the CPU count. A worker
    that dies is restarted, at most ``max_restarts`` times within
    ``restart_window`` seconds; past that the master stops with an error.
    ``shutdown_timeout`` bounds how long in-flight requests may run after
    SIGTERM/SIGINT; with ``graceful_shutdown=False`` they are not waited for
    at all.
    """

    def __init__(
        self,
        workers: int | None = DEFAULT,
        cpu_affinity: bool = False,
        max_restarts: int = 5,
        graceful_shutdown: bool = True,
        shutdown_timeout: float = 30,
        *,
        processes: int | None = DEFAULT,
        restart_window: float = 60,
    ) -> None:
        count = _pick("workers", workers, {"processes": processes}, None)
        self.workers = _count("workers", count if count is not None else os.cpu_count() or 1)
        # How the count was given, if it was: run(workers=N) must agree with it.
        self._workers_given = (
            None if count is None else "processes" if processes is not DEFAULT else "workers"
        )
        self.cpu_affinity = bool(cpu_affinity)
        if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
            raise ValueError(f"max_restarts must be a non-negative integer, not {max_restarts!r}")
        self.max_restarts = max_restarts
        self.graceful_shutdown = bool(graceful_shutdown)
        self.shutdown_timeout = _seconds("shutdown_timeout", shutdown_timeout)
        self.restart_window = _seconds("restart_window", restart_window)

    @property
    def processes(self) -> int:
        return self.workers

    @classmethod
    def auto(cls) -> ClusterConfig:
        """One worker per CPU."""
        return cls()

    def __repr__(self) -> str:
        return (
            f"ClusterConfig(workers={self.workers}, max_restarts={self.max_restarts}, "
            f"graceful_shutdown={self.graceful_shutdown}, "
            f"shutdown_timeout={self.shutdown_timeout})"
        )


_TLS_VERSIONS = ("1.2", "1.3")


class TlsConfig:
    """Certificate and key for HTTPS (served once TLS support lands)."""

    def __init__(
        self,
        cert_path: str,
        key_path: str,
        ca_path: str | None = None,
        min_version: str = "1.2",
        max_version: str = "1.3",
        require_client_cert: bool = False,
    ) -> None:
        for name, value in (("cert_path", cert_path), ("key_path", key_path)):
            if not isinstance(value, str) or not value:
                raise ValueError(f"TLS {name} must be a non-empty path string")
        for name, version in (("min_version", min_version), ("max_version", max_version)):
            if version not in _TLS_VERSIONS:
                raise ValueError(f"TLS {name} must be '1.2' or '1.3', not {version!r}")
        if _TLS_VERSIONS.index(min_version) > _TLS_VERSIONS.index(max_version):
            raise ValueError("TLS min_version is above max_version")
        self.cert_path = cert_path
        self.key_path = key_path
        self.ca_path = ca_path
        self.min_version = min_version
        self.max_version = max_version
        self.require_client_cert = bool(require_client_cert)


class Http2Config:
    """HTTP/2 settings (served once HTTP/2 support lands)."""

    def __init__(
        self,
        max_concurrent_streams: int = 100,
        initial_window_size: int = 1_048_576,
        max_frame_size: int = 16_384,
        enable_push: bool = False,
        enabled: bool = True,
    ) -> None:
        self.max_concurrent_streams = _count("max_concurrent_streams", max_concurrent_streams)
        self.initial_window_size = _count("initial_window_size", initial_window_size)
        if not 16_384 <= max_frame_size <= 16_777_215:
            raise ValueError("max_frame_size must be between 16384 and 16777215")
        self.max_frame_size = max_frame_size
        self.enable_push = bool(enable_push)
        self.enabled = bool(enabled)


class Http3Config:
    """HTTP/3 (QUIC) settings: served on the UDP port of the TCP listener when
    ``enabled`` (with ``tls=``); see docs/http3.md."""

    def __init__(
        self,
        max_idle_timeout: float = 30,
        max_udp_payload_size: int = 1350,
        initial_max_streams_bidi: int = 100,
        enable_0rtt: bool = False,
        enabled: bool = False,
    ) -> None:
        if max_idle_timeout is None:
            # A dead peer's connection is only ever reclaimed by this timeout.
            raise ValueError("max_idle_timeout must be a positive number of seconds, not None")
        self.max_idle_timeout = _seconds("max_idle_timeout", max_idle_timeout)
        size = _count("max_udp_payload_size", max_udp_payload_size)
        if not 1200 <= size <= 65527:  # type: ignore[operator]
            # QUIC's floor (RFC 9000 §18.2) and the largest UDP payload.
            raise ValueError(f"max_udp_payload_size must be between 1200 and 65527, not {size}")
        self.max_udp_payload_size = size
        streams = _count("initial_max_streams_bidi", initial_max_streams_bidi)
        if streams > 2**32 - 1:  # type: ignore[operator]
            raise ValueError(f"initial_max_streams_bidi must be below 2**32, not {streams}")
        self.initial_max_streams_bidi = streams
        self.enable_0rtt = bool(enable_0rtt)
        self.enabled = bool(enabled)
