"""Apps with health checks whose outcome a test sets over HTTP (``PUT
/state/<check>/<behaviour>``), and which count how often each check ran
(``GET /calls``), so the same tests drive door 1 and door 2.

Behaviours: ``up``, ``down`` (returns False), ``raise``, ``hang`` (past the
timeout), ``degraded``, ``dict`` (a status with a message and details),
``word`` (the string ``"ok"``), ``none`` (returns None).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from cello import App, HealthCheckConfig, HealthStatus

HANG_SECS = 30
#: What the app's global guard wants in ``X-Key``.
KEY = "let-me-in"


def build(config: HealthCheckConfig | None) -> App:
    app = App()
    state: dict[str, str] = {"db": "up", "cache": "up"}
    calls: dict[str, int] = {"db": 0, "cache": 0}
    release = threading.Event()

    def outcome(name: str) -> Any:
        behaviour = state[name]
        if behaviour == "up":
            return True
        if behaviour == "down":
            return False
        if behaviour == "raise":
            raise ConnectionError(f"{name} unreachable")
        if behaviour == "degraded":
            return HealthStatus.DEGRADED
        if behaviour == "dict":
            return {"status": "UP", "message": "fine", "latency_ms": 3, "pool": {"size": 4}}
        if behaviour == "word":
            return "ok"
        if behaviour == "none":
            return None
        raise AssertionError(behaviour)

    @app.health_check("db")
    async def db() -> Any:
        calls["db"] += 1
        if state["db"] == "hang":
            await asyncio.sleep(HANG_SECS)
        return outcome("db")

    def cache() -> Any:  # sync: run in a thread
        calls["cache"] += 1
        if state["cache"] == "hang":
            release.wait(HANG_SECS)
            return True
        return outcome("cache")

    app.add_health_check("cache", cache, critical=False)

    @app.put("/state/{name}/{behaviour}")
    def set_state(request: Any) -> dict[str, str]:
        name, behaviour = request.params["name"], request.params["behaviour"]
        state[name] = behaviour
        if behaviour != "hang":
            release.set()
            release.clear()
        return state

    @app.get("/calls")
    def get_calls() -> dict[str, int]:
        return calls

    @app.get("/secret")
    def secret() -> dict[str, bool]:
        return {"secret": True}

    @app.get("/health/db")
    def own_route() -> dict[str, str]:  # the docs' way: a route of the app's own
        return {"database": "ok"}

    @app.on_startup
    async def started() -> None:
        app.state.started = True

    if config is not None:
        app.enable_health_checks(config)
    else:
        app.enable_health_checks()
    # Probes carry no credentials: this global guard (added after the probes,
    # so they are bound again) must not refuse them.
    app.add_guard(lambda request: request.headers.get("x-key") == KEY or "key required")
    return app


#: Checks run on every report (no cache), 0.5 s each at most.
app = build(HealthCheckConfig(version="2.1.0", timeout_secs=0.5))
#: The defaults of ``enable_health_checks()``: details, results kept 5 s.
default_app = build(None)
#: Results kept a minute: a probe storm runs each check once.
cached_app = build(HealthCheckConfig(cache_secs=60))
#: Statuses only, system facts, another base path.
quiet_app = build(
    HealthCheckConfig(
        base_path="/probe/", include_details=False, include_system_info=True, timeout_secs=0.5
    )
)


def build_behind_a_breaker() -> App:
    """An app-wide circuit breaker that opens on the first 5xx, with the
    probes exempt as docs/health.md says; ``/boom`` fails."""
    config = HealthCheckConfig(timeout_secs=0.5)
    breaker_app = build(config)
    breaker_app.enable_circuit_breaker(
        failure_threshold=1, reset_timeout=600, exempt_paths=config.paths
    )

    @breaker_app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("the endpoint fails")

    return breaker_app


#: The probes survive an open circuit, and a failing probe does not open it.
breaker_app = build_behind_a_breaker()
