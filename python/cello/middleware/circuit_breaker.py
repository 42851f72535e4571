"""The circuit breaker: after a run of failed responses, a fast 503 for a
while instead of more requests to a failing endpoint.

It runs in Rust, at its own place in the native chain (inside
authentication, outside the response cache and the endpoint), and keeps its
state per worker process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cello.middleware._paths import path_list

__all__ = ["DEFAULT_FAILURE_CODES", "CircuitBreaker", "CircuitBreakerConfig"]

DEFAULT_FAILURE_CODES = (500, 502, 503, 504)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, not {value!r}")
    return value


def _seconds(value: Any) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value > 0
        or value == float("inf")
    ):
        raise ValueError(f"reset_timeout must be a number of seconds > 0, not {value!r}")
    return float(value)


def _codes(value: Any) -> tuple[int, ...]:
    if value is None:
        return DEFAULT_FAILURE_CODES
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise ValueError(f"failure_codes must be a list of status codes, not {value!r}")
    codes = tuple(value)
    if not codes:
        raise ValueError("failure_codes must name at least one status code")
    for code in codes:
        if isinstance(code, bool) or not isinstance(code, int) or not 100 <= code <= 599:
            raise ValueError(f"failure_codes: {code!r} is not an HTTP status code (100 to 599)")
        if 400 <= code <= 499:
            raise ValueError(
                f"failure_codes: {code} is a client error; 4xx never count as the service failing"
            )
    return codes


class CircuitBreakerConfig:
    """When the circuit opens and closes.

    - ``failure_threshold``: failed responses in a row that open it (default 5);
    - ``reset_timeout``: seconds it stays open, answering 503, before it
      lets requests try again (default 30);
    - ``half_open_target``: successes in a row, once it lets requests try
      again, that close it (default 3); one failure opens it again;
    - ``failure_codes``: the statuses that count as failures (default
      500, 502, 503, 504; 4xx are refused, as client errors say nothing
      about the service's health);
    - ``exempt_paths``: paths (and the paths below them) the breaker leaves
      alone: it neither counts their responses nor answers them with 503.
      Health probes belong here (``HealthCheckConfig().paths``): a failing
      readiness check must not open the circuit for every route, and an
      open circuit must not fail the liveness probe.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        reset_timeout: float = 30,
        half_open_target: int = 3,
        failure_codes: Iterable[int] | None = None,
        exempt_paths: Iterable[str] | None = None,
    ) -> None:
        self.failure_threshold = _count("failure_threshold", failure_threshold)
        self.reset_timeout = _seconds(reset_timeout)
        self.half_open_target = _count("half_open_target", half_open_target)
        self.failure_codes = _codes(failure_codes)
        self.exempt_paths = path_list(exempt_paths, "circuit breaker exempt_paths")

    def _options(self) -> dict[str, Any]:
        return {
            "failure_threshold": self.failure_threshold,
            "reset_timeout": self.reset_timeout,
            "half_open_target": self.half_open_target,
            "failure_codes": list(self.failure_codes),
            "exempt_paths": list(self.exempt_paths),
        }

    def __repr__(self) -> str:
        return (
            f"CircuitBreakerConfig(failure_threshold={self.failure_threshold}, "
            f"reset_timeout={self.reset_timeout:g}, half_open_target={self.half_open_target}, "
            f"failure_codes={list(self.failure_codes)}, exempt_paths={self.exempt_paths})"
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CircuitBreakerConfig) and self._options() == other._options()

    __hash__ = None  # type: ignore[assignment]


class CircuitBreaker:
    """The middleware ``app.use()`` and ``blueprint.use()`` take: a
    ``CircuitBreakerConfig`` or its options as keywords. Each instance used
    is its own circuit (an app's and a blueprint's count separately)."""

    def __init__(self, config: CircuitBreakerConfig | None = None, **options: Any) -> None:
        if config is None:
            config = CircuitBreakerConfig(**options)
        elif options:
            raise ValueError("give CircuitBreaker a config or options, not both")
        elif not isinstance(config, CircuitBreakerConfig):
            raise ValueError(f"CircuitBreaker takes a CircuitBreakerConfig, not {config!r}")
        self.config = config

    def _layer(self) -> tuple[str, dict[str, Any]]:
        return "circuit_breaker", self.config._options()

    def __repr__(self) -> str:
        return f"CircuitBreaker({self.config!r})"
