"""Running one health check: what its return value means, the timeout it
runs within (a sync check in a thread of its own), and how the checks'
statuses add up to the app's. The probes and the report are ``cello.health``."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cello._routes import is_async_handler

log = logging.getLogger("cello.error")


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


def seconds(option: str, value: Any, *, none: bool = False, zero: bool = False) -> float | None:
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
            self.timeout_secs = seconds("timeout", self.timeout_secs)
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


async def run_check(check: HealthCheck, default_timeout: float) -> CheckResult:
    """Runs ``check`` once, within its timeout; what it says, or why it failed."""
    timeout = check.timeout_secs or default_timeout
    start = time.perf_counter()
    error: Exception | None = None
    try:
        if check._busy:
            raise _StillRunning
        value = await _call(check, timeout)
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
        error = exc
    duration = round((time.perf_counter() - start) * 1000, 3)
    # Logged when a check stops being UP, not on every probe while it stays down.
    if status is not HealthStatus.UP and check._last in (None, HealthStatus.UP):
        log.warning("health check %r is %s: %s", check.name, status.value, message, exc_info=error)
    check._last = status
    return CheckResult(status, check.critical, duration, message, details)


async def _call(check: HealthCheck, timeout: float) -> Any:
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
