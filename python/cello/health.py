"""Health checks for orchestrators: liveness, readiness and startup probes
and a full report, answered by routes of the app (so every door serves
them), with the app's own checks run concurrently, each within a timeout.

``app.enable_health_checks(HealthCheckConfig(...))`` registers the routes;
``@app.health_check("db")`` or ``app.add_health_check("db", check)`` adds a
check. See docs/health.md.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from cello._cello import Response
from cello._routes import is_async_handler

__all__ = ["HealthCheck", "HealthCheckConfig", "HealthChecks", "HealthStatus"]

log = logging.getLogger("cello.error")

#: Every probe answer: a probe must see the state now, never a cached copy.
NO_STORE = {"Cache-Control": "no-store"}


class HealthStatus(StrEnum):
    """What a check, or the whole app, reports."""

    UP = "UP"
    DOWN = "DOWN"
    DEGRADED = "DEGRADED"
    UNKNOWN = "UNKNOWN"

    @classmethod
    def parse(cls, value: Any) -> HealthStatus:
        """``value`` as a status: a ``HealthStatus``, one of its names in any
        case, or the words other health APIs use (``"ok"``, ``"healthy"``,
        ``"unhealthy"``...). Anything else is a ``ValueError``."""
        if isinstance(value, HealthStatus):
            return value
        if isinstance(value, str):
            word = value.strip().upper()
            if word in cls.__members__:
                return cls[word]
            if word in _WORDS:
                return _WORDS[word]
        raise ValueError(f"not a health status: {value!r}")


_WORDS = {
    "OK": HealthStatus.UP,
    "HEALTHY": HealthStatus.UP,
    "PASS": HealthStatus.UP,
    "UNHEALTHY": HealthStatus.DOWN,
    "FAIL": HealthStatus.DOWN,
    "ERROR": HealthStatus.DOWN,
    "WARN": HealthStatus.DEGRADED,
}


def _seconds(option: str, value: Any, *, none: bool = False, zero: bool = False) -> float | None:
    if value is None and none:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or value != value
        or value < 0
        or (value == 0 and not zero)
        or value == float("inf")
    ):
        wanted = "a number of seconds " + (">= 0" if zero else "> 0") + (" or None" if none else "")
        raise ValueError(f"HealthCheckConfig {option} must be {wanted}, not {value!r}")
    return float(value)


class HealthCheckConfig:
    """Where the probes answer and what the report says.

    - ``base_path``: the report's path; the probes are ``<base>/live``,
      ``<base>/ready`` and ``<base>/startup`` (``path=`` is accepted too).
    - ``include_details``: each check's message, details and duration in
      the report and the readiness answer (False: statuses only).
    - ``include_system_info``: a ``system`` section (process and host facts).
    - ``version``: shown in the report when set.
    - ``timeout_secs``: how long one check may take before it counts as DOWN.
    - ``cache_secs``: check results are reused for this long (None or 0:
      every report runs the checks; concurrent reports share one run).
    """

    def __init__(
        self,
        base_path: str = "/health",
        include_details: bool = True,
        include_system_info: bool = False,
        version: str | None = None,
        timeout_secs: float = 5,
        cache_secs: float | None = None,
        *,
        path: str | None = None,
    ) -> None:
        if path is not None:
            if base_path != "/health":
                raise ValueError("give HealthCheckConfig base_path or path, not both")
            base_path = path
        if (
            not isinstance(base_path, str)
            or not base_path.startswith("/")
            or base_path.rstrip("/") == ""
            or any(c in base_path for c in "{}?#\r\n ")
        ):
            raise ValueError(
                "HealthCheckConfig base_path must be a path starting with '/' other than '/' "
                f"(no '{{', '}}', '?', '#' or spaces), not {base_path!r}"
            )
        if version is not None and not isinstance(version, str):
            raise ValueError(f"HealthCheckConfig version must be a str or None, not {version!r}")
        self.base_path = base_path.rstrip("/")
        self.include_details = bool(include_details)
        self.include_system_info = bool(include_system_info)
        self.version = version
        self.timeout_secs = _seconds("timeout_secs", timeout_secs)
        self.cache_secs = _seconds("cache_secs", cache_secs, none=True, zero=True)

    @classmethod
    def kubernetes(cls) -> HealthCheckConfig:
        """For probes only: statuses without details, checks given 1 second
        and their results kept 5 (pair it with ``timeoutSeconds: 2``)."""
        return cls(include_details=False, timeout_secs=1, cache_secs=5)

    @classmethod
    def detailed(cls) -> HealthCheckConfig:
        """For people: every check's details and the system section."""
        return cls(include_details=True, include_system_info=True)

    @property
    def paths(self) -> list[str]:
        """Every path the probes answer on: for ``skip_paths=`` of an
        authentication middleware, so probes need no credentials."""
        base = self.base_path
        return [base, f"{base}/live", f"{base}/ready", f"{base}/startup", *_ALIASES]

    def __repr__(self) -> str:
        return (
            f"HealthCheckConfig(base_path={self.base_path!r}, "
            f"include_details={self.include_details!r}, "
            f"include_system_info={self.include_system_info!r}, version={self.version!r}, "
            f"timeout_secs={self.timeout_secs!r}, cache_secs={self.cache_secs!r})"
        )


#: The probe aliases at the root, whatever the base path.
_ALIASES = ("/liveness", "/readiness")


@dataclass
class HealthCheck:
    """One check: ``check()`` (sync or async) returns True/None (UP),
    False (DOWN), a status, a dict (its ``status`` and ``message``, the rest
    details) or a ``(status, details)`` pair; raising means DOWN. A failing
    non-critical check makes the app DEGRADED, not DOWN."""

    name: str
    check: Callable[[], Any]
    critical: bool = True
    timeout_secs: float | None = None
    is_async: bool = field(init=False)
    # A sync check still running in its thread from an earlier run.
    _busy: bool = field(default=False, init=False, repr=False)
    _last: HealthStatus | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"a health check's name must be a non-empty str, not {self.name!r}")
        if not callable(self.check):
            raise TypeError(f"health check {self.name!r} must be callable, not {self.check!r}")
        if self.timeout_secs is not None:
            self.timeout_secs = _seconds("timeout", self.timeout_secs)
        self.is_async = is_async_handler(self.check)


@dataclass(frozen=True)
class CheckResult:
    status: HealthStatus
    critical: bool
    duration_ms: float
    message: str | None = None
    details: dict[str, Any] | None = None

    def body(self, details: bool) -> dict[str, Any]:
        if not details:
            return {"status": self.status.value}
        out: dict[str, Any] = {
            "status": self.status.value,
            "critical": self.critical,
            "duration_ms": self.duration_ms,
        }
        if self.message is not None:
            out["message"] = self.message
        if self.details:
            out["details"] = self.details
        return out


def _json_safe(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` with what JSON cannot hold turned into strings."""
    result: dict[str, Any] = json.loads(json.dumps(value, default=str))
    return result


def outcome(value: Any) -> tuple[HealthStatus, str | None, dict[str, Any] | None]:
    """What a check's return value says: its status, message and details."""
    if value is None or value is True:
        return HealthStatus.UP, None, None
    if value is False:
        return HealthStatus.DOWN, None, None
    if isinstance(value, str):
        return HealthStatus.parse(value), None, None
    if isinstance(value, tuple) and len(value) == 2:
        status, _, _ = outcome(value[0])
        extra = value[1]
        if isinstance(extra, str):
            return status, extra, None
        if isinstance(extra, dict):
            return status, None, _json_safe(extra)
        raise ValueError(f"a check's (status, details) pair needs a dict or str, not {extra!r}")
    if isinstance(value, dict):
        rest = dict(value)
        status = HealthStatus.parse(rest.pop("status")) if "status" in rest else HealthStatus.UP
        message = rest.pop("message", None)
        if message is not None and not isinstance(message, str):
            message = str(message)
        if set(rest) == {"details"} and isinstance(rest["details"], dict):
            rest = rest["details"]
        return status, message, (_json_safe(rest) if rest else None)
    raise ValueError(
        "a health check returns True, False, None, a status, a dict or a (status, details) "
        f"pair, not {type(value).__name__}"
    )


def overall(results: Iterable[CheckResult]) -> HealthStatus:
    """The app's status: DOWN or UNKNOWN when a critical check is; DEGRADED
    when any check is degraded or a non-critical one fails; else UP."""
    status = HealthStatus.UP
    rank = {HealthStatus.UP: 0, HealthStatus.DEGRADED: 1, HealthStatus.UNKNOWN: 2,
            HealthStatus.DOWN: 3}  # fmt: skip
    for result in results:
        own = result.status
        if not result.critical and own in (HealthStatus.DOWN, HealthStatus.UNKNOWN):
            own = HealthStatus.DEGRADED
        if rank[own] > rank[status]:
            status = own
    return status


def healthy(status: HealthStatus) -> bool:
    return status in (HealthStatus.UP, HealthStatus.DEGRADED)


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class HealthChecks:
    """An app's checks, their cached results and the probe endpoints."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.config: HealthCheckConfig | None = None
        self.checks: dict[str, HealthCheck] = {}
        self.started_at = time.monotonic()
        self._cached: dict[str, CheckResult] | None = None
        self._cached_at = 0.0
        self._running: asyncio.Task[dict[str, CheckResult]] | None = None

    def add(self, check: HealthCheck) -> None:
        if check.name in self.checks:
            raise ValueError(f"a health check named {check.name!r} is already registered")
        self.checks[check.name] = check
        self._cached = None

    # -- running the checks --------------------------------------------------

    async def results(self) -> dict[str, CheckResult]:
        """Every check's result: from the cache while it is fresh, else from
        one run that concurrent callers share."""
        assert self.config is not None
        ttl = self.config.cache_secs
        if self._cached is not None and ttl and time.monotonic() - self._cached_at < ttl:
            return self._cached
        loop = asyncio.get_running_loop()
        running = self._running
        if running is None or running.done() or running.get_loop() is not loop:
            running = self._running = loop.create_task(self._run_all())
        # Shielded: a client leaving cancels its own wait, not the shared run.
        return await asyncio.shield(running)

    async def _run_all(self) -> dict[str, CheckResult]:
        checks = list(self.checks.values())
        done = await asyncio.gather(*(self._run(check) for check in checks))
        results = dict(zip((c.name for c in checks), done, strict=True))
        self._cached, self._cached_at = results, time.monotonic()
        return results

    async def _run(self, check: HealthCheck) -> CheckResult:
        assert self.config is not None
        timeout = check.timeout_secs or self.config.timeout_secs
        start = time.perf_counter()
        try:
            if check._busy:
                raise _StillRunning
            value = await self._call(check, timeout)
            status, message, details = outcome(value)
        except _TimedOut:
            status, message, details = HealthStatus.DOWN, f"timed out after {timeout:g}s", None
        except _StillRunning:
            status, message, details = (
                HealthStatus.DOWN,
                f"timed out: still running from an earlier run (over {timeout:g}s)",
                None,
            )
        except Exception as exc:  # a failing check is a report, not a 500
            status, message, details = HealthStatus.DOWN, f"{type(exc).__name__}: {exc}", None
            if check._last is not HealthStatus.DOWN:
                log.warning("health check %r failed", check.name, exc_info=exc)
        duration = round((time.perf_counter() - start) * 1000, 3)
        if status is not HealthStatus.UP and check._last is HealthStatus.UP:
            log.warning("health check %r is %s: %s", check.name, status.value, message)
        check._last = status
        return CheckResult(status, check.critical, duration, message, details)

    async def _call(self, check: HealthCheck, timeout: float) -> Any:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        if check.is_async:
            value = await _within(loop.create_task(check.check()), deadline, loop)
        else:
            check._busy = True
            future = loop.create_future()
            threading.Thread(
                target=_in_thread, args=(check, loop, future), name="cello-health", daemon=True
            ).start()
            value = await _within(future, deadline, loop)
        if hasattr(value, "__await__"):  # a sync callable that returned a coroutine
            value = await _within(asyncio.ensure_future(value), deadline, loop)
        return value

    # -- the answers -----------------------------------------------------------

    @property
    def started(self) -> bool:
        return bool(getattr(self.app, "_started", False)) or not self.app._startup_work()

    def live(self) -> dict[str, Any]:
        return {"status": HealthStatus.UP.value, "timestamp": timestamp()}

    def startup(self) -> tuple[dict[str, Any], int]:
        started = self.started
        status = HealthStatus.UP if started else HealthStatus.DOWN
        body = {"status": status.value, "started": started, "timestamp": timestamp()}
        return body, 200 if started else 503

    async def ready(self) -> tuple[dict[str, Any], int]:
        assert self.config is not None
        if not self.started:
            body = {"status": HealthStatus.DOWN.value, "ready": False, "timestamp": timestamp()}
            return body, 503
        results = await self.results()
        status = overall(results.values())
        ready = healthy(status)
        body: dict[str, Any] = {"status": status.value, "ready": ready, "timestamp": timestamp()}
        if self.config.include_details and results:
            body["checks"] = {name: r.body(True) for name, r in results.items()}
        return body, 200 if ready else 503

    async def report(self) -> tuple[dict[str, Any], int]:
        assert self.config is not None
        config = self.config
        results = await self.results()
        status = overall(results.values())
        if not self.started:
            status = HealthStatus.DOWN
        body: dict[str, Any] = {"status": status.value, "timestamp": timestamp()}
        if config.version is not None:
            body["version"] = config.version
        body["uptime_seconds"] = int(time.monotonic() - self.started_at)
        body["checks"] = {name: r.body(config.include_details) for name, r in results.items()}
        if config.include_system_info:
            from cello._health_system import system_info

            body["system"] = system_info(time.monotonic() - self.started_at)
        return body, 200 if healthy(status) else 503

    def routes(self) -> list[tuple[str, Callable[[Any], Any]]]:
        """``(path, endpoint)`` for every probe path."""
        assert self.config is not None
        base = self.config.base_path

        @_probe
        async def live(request: Any) -> Response:
            return Response.json(self.live(), headers=NO_STORE)

        @_probe
        async def ready(request: Any) -> Response:
            body, status = await self.ready()
            return Response.json(body, status=status, headers=NO_STORE)

        @_probe
        async def startup(request: Any) -> Response:
            body, status = self.startup()
            return Response.json(body, status=status, headers=NO_STORE)

        @_probe
        async def report(request: Any) -> Response:
            body, status = await self.report()
            return Response.json(body, status=status, headers=NO_STORE)

        return [
            (base, report),
            (f"{base}/live", live),
            (f"{base}/liveness", live),
            (f"{base}/ready", ready),
            (f"{base}/readiness", ready),
            (f"{base}/startup", startup),
            ("/liveness", live),
            ("/readiness", ready),
        ]


def _probe(endpoint: Any) -> Any:
    """Marks a probe endpoint: out of the OpenAPI document, and not behind
    the app's global guards (see ``App._endpoint``)."""
    # Imported here: cello.openapi imports cello.middleware, which exports
    # this module's classes.
    from cello.openapi.operations import operation

    endpoint.__cello_probe__ = True
    return operation(include_in_schema=False)(endpoint)


class _TimedOut(Exception):
    pass


class _StillRunning(Exception):
    pass


async def _within(
    future: asyncio.Future[Any], deadline: float, loop: asyncio.AbstractEventLoop
) -> Any:
    """``future``'s result if it comes before ``deadline``; else the future
    is cancelled (a thread just runs on) and ``_TimedOut`` raised at once,
    even if the check ignores the cancellation."""
    done, _ = await asyncio.wait({future}, timeout=max(0.0, deadline - loop.time()))
    if not done:
        future.cancel()
        future.add_done_callback(_consume)
        raise _TimedOut
    return future.result()


def _in_thread(
    check: HealthCheck, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]
) -> None:
    """Runs a sync check in a daemon thread of its own: one that hangs
    holds neither a pool's thread nor the process's exit."""
    try:
        value, error = check.check(), None
    except Exception as exc:
        value, error = None, exc
    finally:
        check._busy = False
    try:
        loop.call_soon_threadsafe(_settle, future, value, error)
    except RuntimeError:
        pass  # the loop closed meanwhile: nobody waits for this answer


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.done():
        return  # timed out already
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
