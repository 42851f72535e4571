"""Health checks for orchestrators: liveness, readiness and startup probes
and a full report, answered by routes of the app (so every door serves
them), with the app's own checks run concurrently, each within a timeout.

``app.enable_health_checks(HealthCheckConfig(...))`` registers the routes;
``@app.health_check("db")`` or ``app.add_health_check("db", check)`` adds a
check. See docs/health.md.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from cello._cello import Response
from cello._health_checks import (
    CheckResult,
    HealthCheck,
    HealthStatus,
    healthy,
    outcome,
    overall,
    run_check,
    seconds,
)

__all__ = [
    "CheckResult",
    "HealthCheck",
    "HealthCheckConfig",
    "HealthChecks",
    "HealthStatus",
    "outcome",
    "overall",
]

#: Every probe answer: a probe must see the state now, never a cached copy.
NO_STORE = {"Cache-Control": "no-store"}


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
        timeout = seconds("timeout_secs", timeout_secs)
        assert timeout is not None
        self.timeout_secs: float = timeout
        self.cache_secs = seconds("cache_secs", cache_secs, none=True, zero=True)

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
        assert self.config is not None
        timeout = self.config.timeout_secs
        done = await asyncio.gather(*(run_check(check, timeout) for check in checks))
        results = dict(zip((c.name for c in checks), done, strict=True))
        self._cached, self._cached_at = results, time.monotonic()
        return results

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
            down = {"status": HealthStatus.DOWN.value, "ready": False, "timestamp": timestamp()}
            return down, 503
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
            (f"{base}/", report),
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
