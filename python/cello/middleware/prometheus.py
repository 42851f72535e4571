"""Prometheus metrics: request counts, latencies and sizes at ``/metrics``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = ["PrometheusConfig"]

_NAME_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: Paths not measured besides the endpoint: the health probes (``/health``
#: covers ``/health/live`` and the rest) and their aliases.
DEFAULT_SKIP_PATHS = ("/health", "/liveness", "/readiness")


def _name_part(value: Any, what: str) -> str:
    if not isinstance(value, str) or (value and not _NAME_PART.fullmatch(value)):
        raise ValueError(
            f"Prometheus {what} must be a valid metric name part (letters, digits "
            f"and underscores, not starting with a digit), or empty; got {value!r}"
        )
    return value


class PrometheusConfig:
    """Counts every request by method, route template and status, times and
    sizes it, and serves the counts of the whole server (every worker
    process ``run(workers=N)`` forked) in Prometheus's text format at
    ``endpoint``. Metric names are ``{namespace}_{subsystem}_...``; an empty
    part is left out. The endpoint and ``skip_paths`` (each with the paths
    below it) are not measured. ``max_series`` bounds the (route, method,
    status) series kept; see docs/metrics.md.
    """

    def __init__(
        self,
        endpoint: str = "/metrics",
        namespace: str = "cello",
        subsystem: str = "http",
        *,
        skip_paths: Iterable[str] = DEFAULT_SKIP_PATHS,
        max_series: int = 4096,
    ) -> None:
        if not isinstance(endpoint, str) or not endpoint.startswith("/"):
            raise ValueError(
                f"Prometheus endpoint must be a path starting with '/', not {endpoint!r}"
            )
        if isinstance(skip_paths, str):
            raise ValueError("Prometheus skip_paths takes a list of paths, not one str")
        skips = list(skip_paths)
        for path in skips:
            if not isinstance(path, str) or not path.startswith("/"):
                raise ValueError(
                    f"Prometheus skip_paths takes paths starting with '/', not {path!r}"
                )
        if isinstance(max_series, bool) or not isinstance(max_series, int) or max_series < 16:
            raise ValueError(f"Prometheus max_series must be an int >= 16, not {max_series!r}")
        self.endpoint = endpoint
        self.namespace = _name_part(namespace, "namespace")
        self.subsystem = _name_part(subsystem, "subsystem")
        self.skip_paths = skips
        self.max_series = max_series

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "prometheus", {
            "endpoint": self.endpoint,
            "namespace": self.namespace,
            "subsystem": self.subsystem,
            "skip_paths": self.skip_paths,
            "max_series": self.max_series,
        }

    def __repr__(self) -> str:
        return (
            f"PrometheusConfig(endpoint={self.endpoint!r}, namespace={self.namespace!r}, "
            f"subsystem={self.subsystem!r})"
        )
