"""Rate limiting: a budget of requests per client, held in memory that every
worker process of the server shares (``run(workers=4)`` with a limit of 100
allows 100, not 400).

The limit runs in Rust, before authentication and routing, unless it needs
Python to name a request's key (``key_func=`` or ``key_by="user"``): then a
Python middleware consults the same shared limiter, with the same headers
and the same 429.
"""

from __future__ import annotations

import ipaddress
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from cello import _cello
from cello.middleware._paths import path_list

__all__ = ["AdaptiveRateLimitConfig", "RateLimitConfig", "validate_rate_limit_config"]

ALGORITHMS = ("token_bucket", "sliding_window", "adaptive")
# What `key_by` takes: the client's address, the path, a header's value,
# or the authenticated user (`request.context["user"]`).
_KEY_BY = re.compile(r"ip|path|user|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+")
# The sliding window's counters hold 20 bits.
MAX_WINDOW_REQUESTS = (1 << 20) - 1
# A token bucket's state is the microsecond it is full again, in 64 bits:
# capacity / refill_rate must stay well within that.
MAX_CAPACITY = 1_000_000_000
MIN_REFILL_RATE = 0.0001
PROBLEM = "application/problem+json"


def _number(name: str, value: Any, *, minimum: float = 0.0, strict: bool = True) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and value == value and value not in (float("inf"), float("-inf")):
        if value > minimum or (not strict and value == minimum):
            return float(value)
    sign = ">" if strict else ">="
    raise ValueError(f"rate limit {name} must be a number {sign} {minimum:g}, not {value!r}")


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"rate limit {name} must be an integer > 0, not {value!r}")
    return value


def _paths(value: Any) -> list[str]:
    return path_list(value, "rate limit exempt_paths")


def _networks(value: Any) -> list[str]:
    if value is None:
        return []
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise ValueError(f"rate limit trusted_proxies must be a list of IPs/CIDRs, not {value!r}")
    networks = []
    for item in items:
        try:
            networks.append(str(ipaddress.ip_network(item, strict=True)))
        except (TypeError, ValueError) as exc:
            raise ValueError(
                f"rate limit trusted_proxies: {item!r} is not an IP address or network ({exc})"
            ) from None
    return networks


class RateLimitConfig:
    """How many requests a client may make.

    ``algorithm`` is ``"token_bucket"`` (``capacity`` requests at once,
    refilled at ``refill_rate`` a second), ``"sliding_window"`` (``capacity``
    requests, also readable as ``max_requests``, in any ``window_secs``) or
    ``"adaptive"`` (a token bucket that shrinks toward ``min_capacity`` when
    the server is under pressure). ``key_by`` is ``"ip"`` (default),
    ``"path"``, ``"header:<name>"`` or ``"user"``; ``key_func(request) ->
    str`` replaces it. ``exempt_paths`` are not limited; ``trusted_proxies``
    (IPs or CIDRs) are the proxies whose ``X-Forwarded-For``/``X-Real-IP``
    are believed. See docs/rate-limiting.md.
    """

    def __init__(
        self,
        algorithm: str = "token_bucket",
        capacity: int = 100,
        refill_rate: float = 10,
        window_secs: float = 60,
        key_by: str = "ip",
        min_capacity: int | None = None,
        error_threshold: float | None = None,
        key_func: Callable[[Any], str | None] | None = None,
        exempt_paths: Iterable[str] | None = None,
        trusted_proxies: Iterable[str] | None = None,
        *,
        cpu_threshold: float | None = 0.8,
        memory_threshold: float | None = 0.9,
        latency_threshold: float | None = 100,
        max_keys: int = 65536,
    ) -> None:
        self.algorithm = algorithm
        self.capacity = capacity
        self.refill_rate = refill_rate
        self.window_secs = window_secs
        self.key_by = key_by
        self.min_capacity = min_capacity
        self.error_threshold = error_threshold
        self.key_func = key_func
        self.exempt_paths = list(exempt_paths) if exempt_paths is not None else []
        self.trusted_proxies = list(trusted_proxies) if trusted_proxies is not None else []
        self.cpu_threshold = cpu_threshold
        self.memory_threshold = memory_threshold
        self.latency_threshold = latency_threshold
        self.max_keys = max_keys

    @property
    def max_requests(self) -> int:
        """The sliding window's name for ``capacity``."""
        return self.capacity

    @max_requests.setter
    def max_requests(self, value: int) -> None:
        self.capacity = value

    # -- builders ------------------------------------------------------------

    @staticmethod
    def token_bucket(
        capacity: int | None = None,
        refill_rate: float | None = None,
        *,
        requests: int | None = None,
        window: float | None = None,
        **options: Any,
    ) -> RateLimitConfig:
        """``token_bucket(100, 10)``: bursts of 100, 10 more a second; or
        ``token_bucket(requests=100, window=60)``: 100 a minute."""
        if requests is not None or window is not None:
            if capacity is not None or refill_rate is not None:
                raise ValueError("give capacity/refill_rate or requests/window, not both")
            requests = _count("requests", requests if requests is not None else 100)
            window = _number("window", window if window is not None else 60)
            capacity, refill_rate = requests, requests / window
        return RateLimitConfig(
            "token_bucket",
            capacity if capacity is not None else 100,
            refill_rate if refill_rate is not None else 10,
            **options,
        )

    @staticmethod
    def sliding_window(
        max_requests: int | None = None,
        window_secs: float | None = None,
        *,
        requests: int | None = None,
        window: float | None = None,
        **options: Any,
    ) -> RateLimitConfig:
        """``sliding_window(100, 60)`` or ``sliding_window(requests=100,
        window=60)``: 100 requests in any 60 seconds."""
        if requests is not None and max_requests is not None:
            raise ValueError("give max_requests or requests, not both")
        if window is not None and window_secs is not None:
            raise ValueError("give window_secs or window, not both")
        count = max_requests if max_requests is not None else requests
        seconds = window_secs if window_secs is not None else window
        return RateLimitConfig(
            "sliding_window",
            capacity=count if count is not None else 100,
            window_secs=seconds if seconds is not None else 60,
            **options,
        )

    @staticmethod
    def adaptive(
        capacity: int | None = None,
        refill_rate: float | None = None,
        min_capacity: int | None = None,
        error_threshold: float | None = None,
        *,
        base_requests: int | None = None,
        window: float | None = None,
        min_requests: int | None = None,
        **options: Any,
    ) -> RateLimitConfig:
        """``adaptive(capacity, refill_rate, min_capacity, error_threshold)``
        or ``adaptive(base_requests=100, window=60, cpu_threshold=0.8,
        memory_threshold=0.9, latency_threshold=100, min_requests=10)``."""
        if base_requests is not None or window is not None:
            if capacity is not None or refill_rate is not None:
                raise ValueError("give capacity/refill_rate or base_requests/window, not both")
            return AdaptiveRateLimitConfig(
                base_requests if base_requests is not None else 100,
                window if window is not None else 60,
                min_requests=min_requests if min_requests is not None else 10,
                error_threshold=error_threshold,
                **options,
            )
        if min_requests is not None:
            if min_capacity is not None:
                raise ValueError("give min_capacity or min_requests, not both")
            min_capacity = min_requests
        return RateLimitConfig(
            "adaptive",
            capacity if capacity is not None else 100,
            refill_rate if refill_rate is not None else 10,
            min_capacity=min_capacity,
            error_threshold=error_threshold,
            **options,
        )

    # -- checking and building -------------------------------------------------

    def validate(self) -> None:
        """Raises ``ValueError`` naming the first bad option."""
        if self.algorithm not in ALGORITHMS:
            raise ValueError(
                f"Unknown rate limit algorithm: {self.algorithm!r} "
                "(expected 'token_bucket', 'sliding_window' or 'adaptive')"
            )
        name = "max_requests" if self.algorithm == "sliding_window" else "capacity"
        capacity = _count(name, self.capacity)
        if self.algorithm == "sliding_window":
            if capacity > MAX_WINDOW_REQUESTS:
                raise ValueError(
                    f"rate limit max_requests must be at most {MAX_WINDOW_REQUESTS}, not {capacity}"
                )
        else:
            if capacity > MAX_CAPACITY:
                raise ValueError(
                    f"rate limit capacity must be at most {MAX_CAPACITY}, not {capacity}"
                )
            if _number("refill_rate", self.refill_rate) < MIN_REFILL_RATE:
                raise ValueError(
                    f"rate limit refill_rate must be at least {MIN_REFILL_RATE} "
                    f"(one request in {1 / MIN_REFILL_RATE:.0f} s), not {self.refill_rate!r}"
                )
        _number("window_secs", self.window_secs)
        if self.algorithm == "adaptive":
            if self.min_capacity is not None:
                floor = _count("min_capacity", self.min_capacity)
                if floor > capacity:
                    raise ValueError(
                        f"rate limit min_capacity ({floor}) must not exceed capacity ({capacity})"
                    )
            for option in ("cpu_threshold", "memory_threshold", "error_threshold"):
                value = getattr(self, option)
                if value is not None and _number(option, value, strict=False) > 1:
                    raise ValueError(f"rate limit {option} is a share from 0 to 1, not {value!r}")
            if self.latency_threshold is not None:
                _number("latency_threshold", self.latency_threshold)
        if not isinstance(self.key_by, str) or not _KEY_BY.fullmatch(self.key_by):
            raise ValueError(
                "rate limit key_by must be 'ip', 'path', 'user' or 'header:<name>', "
                f"not {self.key_by!r}"
            )
        if self.key_func is not None and not callable(self.key_func):
            raise ValueError(f"rate limit key_func must be callable, not {self.key_func!r}")
        _paths(self.exempt_paths)
        _networks(self.trusted_proxies)
        _count("max_keys", self.max_keys)

    def _options(self) -> dict[str, Any]:
        self.validate()
        adaptive = self.algorithm == "adaptive"
        error_threshold = self.error_threshold
        if adaptive and error_threshold is None:
            error_threshold = 0.10
        # The Python tier names keys itself; the native limiter's own key
        # (the client's address) is its fallback.
        key_by = "ip" if self.key_by == "user" else self.key_by
        return {
            "algorithm": self.algorithm,
            "capacity": self.capacity,
            "refill_rate": float(self.refill_rate),
            "window_secs": float(self.window_secs),
            "key_by": key_by,
            "min_capacity": self.min_capacity,
            "error_threshold": error_threshold if adaptive else None,
            "latency_threshold": self.latency_threshold if adaptive else None,
            "cpu_threshold": self.cpu_threshold if adaptive else None,
            "memory_threshold": self.memory_threshold if adaptive else None,
            "exempt_paths": _paths(self.exempt_paths),
            "trusted_proxies": _networks(self.trusted_proxies),
            "max_keys": self.max_keys,
        }

    def _in_python(self) -> bool:
        """Whether keys need Python: a ``key_func``, or the user."""
        return self.key_func is not None or self.key_by == "user"

    def _layer(self) -> tuple[str, dict[str, Any]]:
        if self._in_python():
            raise ValueError(
                "a rate limit with key_func or key_by='user' runs in Python: "
                "add it with app.enable_rate_limit(config)"
            )
        return "rate_limit", self._options()

    def _middleware(self) -> PythonRateLimit:
        return PythonRateLimit(self)

    def __repr__(self) -> str:
        return (
            f"RateLimitConfig(algorithm={self.algorithm!r}, capacity={self.capacity!r}, "
            f"refill_rate={self.refill_rate!r}, window_secs={self.window_secs!r}, "
            f"key_by={self.key_by!r})"
        )


class AdaptiveRateLimitConfig(RateLimitConfig):
    """An adaptive limit: ``base_requests`` per ``window`` seconds while the
    server is healthy, shrinking toward ``min_requests`` as CPU load
    (per core), memory use, mean latency (ms) or the share of 5xx responses
    (``error_threshold``, default 0.10) rise past their thresholds. A
    threshold of None turns its signal off."""

    def __init__(
        self,
        base_requests: int = 100,
        window: float = 60,
        cpu_threshold: float | None = 0.8,
        memory_threshold: float | None = 0.9,
        latency_threshold: float | None = 100,
        min_requests: int = 10,
        **options: Any,
    ) -> None:
        requests = _count("base_requests", base_requests)
        seconds = _number("window", window)
        super().__init__(
            "adaptive",
            requests,
            requests / seconds,
            seconds,
            min_capacity=min(min_requests, requests)
            if isinstance(min_requests, int) and not isinstance(min_requests, bool)
            else min_requests,
            cpu_threshold=cpu_threshold,
            memory_threshold=memory_threshold,
            latency_threshold=latency_threshold,
            **options,
        )
        self.base_requests = requests
        self.window = seconds
        self.min_requests = min_requests


def validate_rate_limit_config(config: RateLimitConfig) -> None:
    """Raises ``ValueError`` when ``config`` cannot be enforced (a capacity
    or window of 0 or less, an unknown algorithm or key...)."""
    if not isinstance(config, RateLimitConfig):
        raise ValueError(f"expected a RateLimitConfig, not {type(config).__name__}")
    config.validate()


def _user_key(request: Any) -> str | None:
    """The authenticated user's ``sub`` (or ``id``, or the user itself when
    it is text), as the authentication middleware left it in the context
    (``user``, or the JWT's ``jwt_claims``)."""
    context = request.context
    user = context.get("user")
    if user is None:
        user = context.get("jwt_claims")
    if isinstance(user, dict):
        user = user.get("sub", user.get("id"))
    if isinstance(user, (str, int)) and not isinstance(user, bool) and str(user):
        return f"user:{user}"
    return None


class PythonRateLimit:
    """The limit as Python middleware, for keys only Python can name."""

    def __init__(self, config: RateLimitConfig) -> None:
        self._limiter = _cello.RateLimiter(config._options())
        if config.key_func is not None:
            key_func = config.key_func

            def key(request: Any) -> str | None:
                value = key_func(request)
                if value is None:
                    return None
                if not isinstance(value, str):
                    raise TypeError(f"rate limit key_func must return a str, not {value!r}")
                return f"key:{value}"

            self._key: Callable[[Any], str | None] = key
        else:
            self._key = _user_key

    async def __call__(self, request: Any, call_next: Any) -> Any:
        limiter = self._limiter
        if limiter.exempt(request.path):
            return await call_next(request)
        key = self._key(request) or limiter.default_key(request)
        allowed, limit, remaining, reset, retry_after = limiter.acquire(key)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
        if not allowed:
            headers["Retry-After"] = str(retry_after)
            return _cello.Response(
                _cello.RateLimiter.refusal_body(retry_after), 429, headers, PROBLEM
            )
        request.context["rate_limit_state"] = {"limit": limit, "remaining": remaining,
                                               "reset": reset}  # fmt: skip
        started = time.perf_counter_ns()
        response = await call_next(request)
        if limiter.adapts:
            limiter.observe(response.status, (time.perf_counter_ns() - started) // 1000)
        for name, value in headers.items():
            response.set_header(name, value)
        return response
