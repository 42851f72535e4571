"""OpenTelemetry tracing: a SERVER span per request, W3C trace context in
and out, and OTLP export (HTTP or gRPC) of spans and request metrics.

```python
from cello import App, OpenTelemetryConfig

app = App()
app.enable_telemetry(OpenTelemetryConfig("orders", otlp_endpoint="http://collector:4317"))
```

It is built on the official OpenTelemetry Python SDK, an optional extra
(``pip install cello[otel]``): this module imports none of it until
telemetry is enabled. See docs/telemetry.md.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

__all__ = ["OpenTelemetryConfig"]

#: Where spans go when neither the config nor the environment says.
DEFAULT_ENDPOINT = "http://localhost:4317"
#: The OTLP protocols an exporter can speak.
PROTOCOLS = ("grpc", "http/protobuf")
_PROPAGATIONS = ("w3c", "tracecontext")


def _fraction(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise ValueError(f"sampling_rate must be a number from 0.0 to 1.0, not {value!r}")
    return float(value)


def _positive(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, not {value!r}")
    return value


@dataclass
class OpenTelemetryConfig:
    """What ``app.enable_telemetry()`` traces and where it sends it.

    ``otlp_endpoint`` None means ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or
    ``OTEL_EXPORTER_OTLP_ENDPOINT`` from the environment, else
    ``http://localhost:4317``. ``protocol`` None picks the OTLP protocol
    from the endpoint (see ``protocol_for``). ``excluded_paths`` get no
    span: an entry matches its path exactly and every path below it
    (``"/health"`` covers ``/health/live``); one ending in ``*`` matches
    every path that starts with the rest.
    """

    service_name: str = "cello-service"
    service_version: str = "0.1.0"
    otlp_endpoint: str | None = None
    sampling_rate: float = 1.0
    export_traces: bool = True
    export_metrics: bool = True
    excluded_paths: Iterable[str] | None = None
    propagation: str = "w3c"
    export_timeout_ms: int = 10000
    batch_size: int = 512
    protocol: str | None = None
    _excluded: tuple[tuple[str, bool], ...] = field(default=(), init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.service_name, str) or not self.service_name:
            raise ValueError(f"service_name must be a non-empty str, not {self.service_name!r}")
        if not isinstance(self.service_version, str):
            raise ValueError(f"service_version must be a str, not {self.service_version!r}")
        if self.otlp_endpoint is not None:
            parts = urlsplit(self.otlp_endpoint) if isinstance(self.otlp_endpoint, str) else None
            if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(
                    f"otlp_endpoint must be an http:// or https:// URL, not {self.otlp_endpoint!r}"
                )
        self.sampling_rate = _fraction(self.sampling_rate)
        self.export_timeout_ms = _positive("export_timeout_ms", self.export_timeout_ms)
        self.batch_size = _positive("batch_size", self.batch_size)
        if self.propagation not in _PROPAGATIONS:
            raise ValueError(
                f"propagation {self.propagation!r} is not supported (only 'w3c': "
                "the traceparent and tracestate headers)"
            )
        if self.protocol == "http":
            self.protocol = "http/protobuf"
        if self.protocol is not None and self.protocol not in PROTOCOLS:
            raise ValueError(
                f"protocol must be 'grpc', 'http/protobuf' or None, not {self.protocol!r}"
            )
        paths = [] if self.excluded_paths is None else self.excluded_paths
        if isinstance(paths, str):
            raise ValueError("excluded_paths must be a list of paths, not a str")
        excluded = []
        for path in paths:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(f"excluded_paths entries must start with '/', not {path!r}")
            if path.endswith("*"):
                excluded.append((path[:-1], True))
            else:
                excluded.append((path.rstrip("/") or "/", False))
        self.excluded_paths = [p for p in paths]
        self._excluded = tuple(excluded)

    def excludes(self, path: str) -> bool:
        """Whether requests to ``path`` get no span."""
        for entry, raw_prefix in self._excluded:
            if raw_prefix:
                if path.startswith(entry):
                    return True
            elif path == entry or entry == "/" or path.startswith(entry + "/"):
                return True
        return False

    def endpoint(self) -> str:
        """The OTLP endpoint: the config's, else the environment's, else the default."""
        if self.otlp_endpoint:
            return self.otlp_endpoint
        for name in ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
            if os.environ.get(name):
                return os.environ[name]
        return DEFAULT_ENDPOINT

    def resolved_protocol(self) -> str:
        """``"grpc"`` or ``"http/protobuf"``: the config's ``protocol``, else
        ``OTEL_EXPORTER_OTLP_PROTOCOL``, else the rule of ``protocol_for``."""
        if self.protocol is not None:
            return self.protocol
        env = os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL", "").strip()
        if env in PROTOCOLS:
            return env
        return protocol_for(self.endpoint())


def protocol_for(endpoint: str) -> str:
    """The rule for an endpoint without an explicit protocol: port 4318 or
    a path (``/v1/traces``...) means OTLP/HTTP, anything else (4317 and a
    bare host) OTLP/gRPC, as collectors listen by default."""
    parts = urlsplit(endpoint)
    if parts.port == 4318 or parts.path.strip("/"):
        return "http/protobuf"
    return "grpc"


def signal_url(endpoint: str, signal: str) -> str:
    """The OTLP/HTTP URL of ``signal`` ("traces", "metrics") at ``endpoint``:
    a base URL gets ``/v1/<signal>``; a full ``/v1/traces`` URL is kept for
    traces and its sibling is used for metrics."""
    base = endpoint.rstrip("/")
    for known in ("traces", "metrics"):
        suffix = f"/v1/{known}"
        if base.endswith(suffix):
            return base[: -len(suffix)] + f"/v1/{signal}"
    return f"{base}/v1/{signal}"
