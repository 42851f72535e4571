"""Health checks (cello.health): the probes, the report, user checks and
their timeouts, caching, and what guards and middleware do to probes,
through door 1 (the native server) and door 2 (ASGI in process)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cello import App, HealthCheckConfig, HealthStatus, JwtConfig
from cello.health import CheckResult, outcome, overall
from cello.testing import AsyncTestClient, TestClient, lifespan
from tests.apps.health import KEY
from tests.live import LiveServer

TARGETS = ("app", "cached_app", "quiet_app", "default_app", "breaker_app")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, LiveServer]]:
    """One native server per app of tests/apps/health.py, started on demand."""
    started: dict[str, LiveServer] = {}
    try:
        yield started
    finally:
        for live in started.values():
            live.close()


Connect = Callable[[str], httpx.Client]


@pytest.fixture
def connect(door: str, servers: dict[str, LiveServer]) -> Iterator[Connect]:
    """``connect("app")``: a client of that app through the current door,
    with the app's checks reset to healthy."""
    clients: list[Any] = []

    def make(name: str) -> httpx.Client:
        assert name in TARGETS
        client: httpx.Client
        if door == "native":
            if name not in servers:
                servers[name] = LiveServer(f"tests.apps.health:{name}").start()
            client = httpx.Client(base_url=servers[name].url, timeout=15)
        else:
            import tests.apps.health as module

            client = TestClient(getattr(module, name))
            client.__enter__()
        clients.append(client)
        for check in ("db", "cache"):
            set_state(client, check, "up")
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def set_state(client: httpx.Client, check: str, behaviour: str) -> None:
    response = client.put(f"/state/{check}/{behaviour}", headers={"x-key": KEY})
    assert response.status_code == 200, response.text


def calls(client: httpx.Client) -> dict[str, int]:
    response = client.get("/calls", headers={"x-key": KEY})
    assert response.status_code == 200
    return dict(response.json())


def is_recent(stamp: str) -> bool:
    moment = datetime.fromisoformat(stamp)
    assert moment.tzinfo is not None and moment.utcoffset() == timedelta(0)
    return abs(datetime.now(UTC) - moment) < timedelta(minutes=5)


# -- the probes ------------------------------------------------------------------


def test_liveness_answers_up_and_never_runs_the_checks(connect):
    client = connect("app")
    set_state(client, "db", "down")
    before = calls(client)
    for path in ("/health/live", "/liveness", "/health/liveness"):
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.json()
        assert set(body) == {"status", "timestamp"}
        assert body["status"] == "UP"
        assert is_recent(body["timestamp"])
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["content-type"].startswith("application/json")
    assert calls(client) == before


def test_readiness_runs_the_checks(connect):
    client = connect("app")
    for path in ("/health/ready", "/readiness", "/health/readiness"):
        response = client.get(path)
        assert response.status_code == 200, path
        body = response.json()
        assert set(body) == {"status", "ready", "timestamp", "checks"}
        assert (body["status"], body["ready"]) == ("UP", True)
        assert set(body["checks"]) == {"db", "cache"}
        assert response.headers["cache-control"] == "no-store"
    set_state(client, "db", "down")
    response = client.get("/health/ready")
    assert response.status_code == 503
    assert (response.json()["status"], response.json()["ready"]) == ("DOWN", False)
    assert client.get("/readiness").status_code == 503


def test_startup_is_up_once_the_startup_hooks_ran(connect):
    client = connect("app")
    set_state(client, "db", "down")  # the startup probe runs no checks
    before = calls(client)
    response = client.get("/health/startup")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "started", "timestamp"}
    assert (body["status"], body["started"]) == ("UP", True)
    assert response.headers["cache-control"] == "no-store"
    assert calls(client) == before


def test_the_full_report_when_healthy(connect):
    client = connect("app")
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"status", "timestamp", "version", "uptime_seconds", "checks"}
    assert body["status"] == "UP"
    assert body["version"] == "2.1.0"
    assert isinstance(body["uptime_seconds"], int) and body["uptime_seconds"] >= 0
    assert is_recent(body["timestamp"])
    assert response.headers["cache-control"] == "no-store"
    db, cache = body["checks"]["db"], body["checks"]["cache"]
    assert set(db) == {"status", "critical", "duration_ms"}
    assert (db["status"], db["critical"]) == ("UP", True)
    assert (cache["status"], cache["critical"]) == ("UP", False)
    assert db["duration_ms"] >= 0


def test_the_report_answers_with_a_trailing_slash_too(connect):
    client = connect("app")
    response = client.get("/health/")
    assert response.status_code == 200
    assert response.json()["checks"]["db"]["status"] == "UP"


def test_head_gives_the_status_without_a_body(connect):
    client = connect("app")
    for path in ("/health", "/health/live", "/health/ready", "/health/startup", "/liveness"):
        response = client.head(path)
        assert response.status_code == 200, path
        assert response.content == b""
    set_state(client, "db", "down")
    assert client.head("/health").status_code == 503
    assert client.head("/readiness").status_code == 503
    assert client.head("/health/live").status_code == 200


# -- user checks -----------------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["down", "raise"])
def test_a_failing_critical_check_is_down_and_503(connect, behaviour):
    client = connect("app")
    set_state(client, "db", behaviour)
    response = client.get("/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "DOWN"
    db = body["checks"]["db"]
    assert db["status"] == "DOWN"
    if behaviour == "raise":
        assert db["message"] == "ConnectionError: db unreachable"
    else:
        assert "message" not in db
    assert body["checks"]["cache"]["status"] == "UP"


@pytest.mark.parametrize("behaviour", ["down", "raise"])
def test_a_failing_non_critical_check_degrades_and_stays_200(connect, behaviour):
    client = connect("app")
    set_state(client, "cache", behaviour)
    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "DEGRADED"
    assert body["checks"]["cache"]["status"] == "DOWN"
    ready = client.get("/health/ready")
    assert ready.status_code == 200
    assert (ready.json()["status"], ready.json()["ready"]) == ("DEGRADED", True)


def test_a_check_may_report_degraded(connect):
    client = connect("app")
    set_state(client, "db", "degraded")
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "DEGRADED"
    assert response.json()["checks"]["db"]["status"] == "DEGRADED"


@pytest.mark.parametrize("behaviour", ["word", "none"])
def test_ok_and_none_are_up(connect, behaviour):
    client = connect("app")
    set_state(client, "db", behaviour)
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["checks"]["db"]["status"] == "UP"


def test_a_dict_gives_a_message_and_details(connect):
    client = connect("app")
    set_state(client, "db", "dict")
    db = client.get("/health").json()["checks"]["db"]
    assert db["status"] == "UP"
    assert db["message"] == "fine"
    assert db["details"] == {"latency_ms": 3, "pool": {"size": 4}}


def test_a_hanging_async_check_is_down_after_the_timeout(connect):
    client = connect("app")
    set_state(client, "db", "hang")
    response = client.get("/health")
    assert response.status_code == 503
    db = response.json()["checks"]["db"]
    assert db["status"] == "DOWN"
    assert db["message"] == "timed out after 0.5s"
    assert db["duration_ms"] >= 500
    # Meanwhile the app answers, and the next report runs the check again.
    assert client.get("/health/live").status_code == 200
    before = calls(client)["db"]
    assert client.get("/health").json()["checks"]["db"]["message"] == "timed out after 0.5s"
    assert calls(client)["db"] == before + 1


def test_a_hanging_sync_check_blocks_nothing_and_is_not_piled_up(connect):
    client = connect("app")
    set_state(client, "cache", "hang")
    response = client.get("/health")
    # The sync check hangs in its thread: the loop answered after the timeout.
    assert response.status_code == 200  # cache is not critical
    cache = response.json()["checks"]["cache"]
    assert (cache["status"], cache["message"]) == ("DOWN", "timed out after 0.5s")
    assert client.get("/health/live").status_code == 200
    before = calls(client)["cache"]
    again = client.get("/health").json()["checks"]["cache"]
    assert again["status"] == "DOWN"
    assert again["message"].startswith("timed out: still running")
    assert calls(client)["cache"] == before  # no second thread for the same check
    set_state(client, "cache", "up")  # releases the hung call
    deadline = time.monotonic() + 20
    while client.get("/health").json()["checks"]["cache"]["status"] != "UP":
        assert time.monotonic() < deadline, "the released check never came back"
        time.sleep(0.05)


# -- caching ---------------------------------------------------------------------


def test_without_a_cache_every_report_runs_every_check(connect):
    client = connect("app")
    before = calls(client)
    for _ in range(5):
        assert client.get("/health").status_code == 200
    after = calls(client)
    assert after == {"db": before["db"] + 5, "cache": before["cache"] + 5}


def test_cached_results_spare_the_checks_a_probe_storm(connect):
    client = connect("cached_app")
    client.get("/health")
    before = calls(client)
    assert before["db"] >= 1 and before["cache"] >= 1
    set_state(client, "db", "down")
    for _ in range(10):
        response = client.get("/health")
        assert response.status_code == 200  # the cached UP, for cache_secs
        assert client.get("/readiness").status_code == 200
    assert calls(client) == before


def test_the_default_keeps_results_five_seconds(connect):
    client = connect("default_app")
    client.get("/health")
    before = calls(client)
    for _ in range(5):
        client.get("/health/ready")
    assert calls(client) == before


def test_concurrent_reports_share_one_run():
    async def scenario() -> None:
        app = App()
        release = asyncio.Event()
        runs = []

        @app.health_check("slow")
        async def slow() -> bool:
            runs.append(1)
            await release.wait()
            return True

        app.enable_health_checks(HealthCheckConfig(cache_secs=None))
        async with AsyncTestClient(app) as client:
            pending = [asyncio.ensure_future(client.get("/health")) for _ in range(10)]
            while not runs:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # every request reaches the shared run
            release.set()
            responses = await asyncio.gather(*pending)
        assert [r.status_code for r in responses] == [200] * 10
        assert len(runs) == 1

    asyncio.run(scenario())


# -- configuration ---------------------------------------------------------------


def test_details_hidden_and_system_info_under_another_base_path(connect):
    client = connect("quiet_app")
    set_state(client, "db", "raise")
    response = client.get("/probe")
    assert response.status_code == 503
    body = response.json()
    assert set(body) == {"status", "timestamp", "uptime_seconds", "checks", "system"}
    assert body["checks"] == {"db": {"status": "DOWN"}, "cache": {"status": "UP"}}
    system = body["system"]
    for key in ("hostname", "pid", "python_version", "platform", "cpu_count", "memory_rss_bytes",
                "memory_mb", "uptime_seconds", "cpu_time_seconds", "threads"):  # fmt: skip
        assert key in system, key
    assert system["memory_rss_bytes"] > 0
    ready = client.get("/probe/ready")
    assert ready.status_code == 503
    assert set(ready.json()) == {"status", "ready", "timestamp"}
    assert client.get("/probe/live").status_code == 200
    assert client.get("/liveness").status_code == 200
    assert client.get("/health/live").status_code == 404


def test_config_defaults_and_presets():
    config = HealthCheckConfig()
    assert (config.base_path, config.include_details, config.include_system_info) == (
        "/health", True, False)  # fmt: skip
    assert (config.version, config.timeout_secs, config.cache_secs) == (None, 5, None)
    kube = HealthCheckConfig.kubernetes()
    assert (kube.include_details, kube.timeout_secs, kube.cache_secs) == (False, 1, 5)
    detailed = HealthCheckConfig.detailed()
    assert (detailed.include_details, detailed.include_system_info) == (True, True)
    assert HealthCheckConfig(path="/hc/").base_path == "/hc"
    assert HealthCheckConfig().paths == [
        "/health",
        "/health/live",
        "/health/ready",
        "/health/startup",
        "/liveness",
        "/readiness",
    ]
    app = App()
    config = app.enable_health_checks()
    assert (config.include_details, config.cache_secs) == (True, 5)


@pytest.mark.parametrize(
    "options",
    [
        {"base_path": "health"},
        {"base_path": "/"},
        {"base_path": "/a b"},
        {"timeout_secs": 0},
        {"timeout_secs": -1},
        {"timeout_secs": "5"},
        {"cache_secs": -1},
        {"version": 2},
        {"base_path": "/x", "path": "/y"},
    ],
)
def test_bad_config_is_a_value_error(options):
    with pytest.raises(ValueError):
        HealthCheckConfig(**options)


def test_registration_errors():
    app = App()
    app.add_health_check("db", lambda: True)
    with pytest.raises(ValueError, match="already registered"):
        app.add_health_check("db", lambda: True)
    with pytest.raises(TypeError):
        app.add_health_check("x", "not callable")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        app.add_health_check("", lambda: True)
    with pytest.raises(TypeError, match="HealthCheckConfig"):
        app.enable_health_checks({"base_path": "/h"})  # type: ignore[arg-type]
    app.enable_health_checks()
    with pytest.raises(RuntimeError, match="already"):
        app.enable_health_checks()

    taken = App()

    @taken.get("/health/live")
    def mine() -> str:
        return "mine"

    with pytest.raises(RuntimeError, match="GET /health/live"):
        taken.enable_health_checks()


def test_a_bare_decorator_names_the_check_after_the_function():
    app = App()

    @app.health_check
    def disk() -> bool:
        return True

    app.enable_health_checks()
    with TestClient(app) as client:
        assert client.get("/health").json()["checks"]["disk"]["status"] == "UP"


def test_a_check_returning_nonsense_is_down_with_a_reason():
    app = App()
    app.add_health_check("odd", lambda: 42)
    app.add_health_check("word", lambda: "sideways")
    app.enable_health_checks(HealthCheckConfig())
    with TestClient(app) as client:
        checks = client.get("/health").json()["checks"]
    assert checks["odd"]["status"] == "DOWN"
    assert "not int" in checks["odd"]["message"]
    assert checks["word"]["status"] == "DOWN"
    assert "sideways" in checks["word"]["message"]


def test_outcomes_and_the_overall_status():
    assert outcome(True)[0] is HealthStatus.UP
    assert outcome(("degraded", {"lag": 3})) == (HealthStatus.DEGRADED, None, {"lag": 3})
    assert outcome((False, "no route"))[:2] == (HealthStatus.DOWN, "no route")
    assert outcome({"status": "unknown"})[0] is HealthStatus.UNKNOWN
    assert outcome({"details": {"a": 1}}) == (HealthStatus.UP, None, {"a": 1})
    assert outcome({"when": datetime(2026, 1, 1)})[2] == {"when": "2026-01-01 00:00:00"}

    def result(status: HealthStatus, critical: bool = True) -> CheckResult:
        return CheckResult(status, critical, 0.0)

    assert overall([]) is HealthStatus.UP
    assert overall([result(HealthStatus.UNKNOWN)]) is HealthStatus.UNKNOWN
    assert overall([result(HealthStatus.UNKNOWN, False)]) is HealthStatus.DEGRADED
    assert overall([result(HealthStatus.DOWN), result(HealthStatus.DEGRADED)]) is (
        HealthStatus.DOWN)  # fmt: skip


def test_an_unknown_critical_check_is_503():
    app = App()
    app.add_health_check("maybe", lambda: HealthStatus.UNKNOWN)
    app.enable_health_checks()
    with TestClient(app) as client:
        response = client.get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "UNKNOWN"


# -- startup ---------------------------------------------------------------------


def test_startup_and_readiness_wait_for_the_startup_hooks():
    async def scenario() -> None:
        app = App()
        release = asyncio.Event()

        @app.on_startup
        async def warm_up() -> None:
            await release.wait()

        app.enable_health_checks()
        transport = httpx.ASGITransport(app=app)  # no lifespan: startup has not run
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            startup = await client.get("/health/startup")
            assert startup.status_code == 503
            assert (startup.json()["status"], startup.json()["started"]) == ("DOWN", False)
            ready = await client.get("/health/ready")
            assert (ready.status_code, ready.json()["ready"]) == (503, False)
            assert (await client.get("/health")).status_code == 503
            assert (await client.get("/health/live")).status_code == 200
            release.set()
            async with lifespan(app):
                assert (await client.get("/health/startup")).status_code == 200
                assert (await client.get("/health/ready")).status_code == 200
            # Shutting down: no longer started.
            assert (await client.get("/health/startup")).status_code == 503

    asyncio.run(scenario())


def test_an_app_with_nothing_to_start_is_started():
    async def scenario() -> None:
        app = App()
        app.enable_health_checks()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            assert (await client.get("/health/startup")).status_code == 200

    asyncio.run(scenario())


# -- guards, middleware, OpenAPI, the access log -----------------------------------


def test_global_guards_do_not_refuse_probes(connect):
    client = connect("app")
    assert client.get("/secret").status_code == 403
    assert client.get("/secret", headers={"x-key": KEY}).status_code == 200
    for path in ("/health", "/health/live", "/health/ready", "/health/startup", "/readiness"):
        assert client.get(path).status_code == 200, path
    # The app's own route under the base path is the app's: guarded.
    assert client.get("/health/db").status_code == 403
    assert client.get("/health/db", headers={"x-key": KEY}).json() == {"database": "ok"}


def test_authentication_middleware_covers_probes_unless_skipped():
    for skip, expected in ((None, 401), (HealthCheckConfig().paths, 200)):
        app = App()
        app.enable_health_checks()
        app.enable_jwt(JwtConfig(secret="s" * 32), skip_paths=skip)
        with TestClient(app) as client:
            for path in ("/health", "/health/live", "/liveness", "/readiness"):
                assert client.get(path).status_code == expected, (skip, path)


def test_an_exempt_circuit_breaker_neither_counts_nor_answers_probes(connect):
    client = connect("breaker_app")
    keyed = {"x-key": KEY}
    # A failing readiness probe is a 503 of the probe's own, not a failure
    # that opens the circuit for every route...
    set_state(client, "db", "down")
    assert client.get("/health/ready").status_code == 503
    assert client.get("/health").status_code == 503
    assert client.get("/calls", headers=keyed).status_code == 200
    set_state(client, "db", "up")
    # ...while the app's own failure opens it for the app's routes, and the
    # probes still answer from their endpoint.
    assert client.get("/boom", headers=keyed).status_code == 500
    refused = client.get("/calls", headers=keyed)
    assert refused.status_code == 503
    assert refused.headers["retry-after"]
    for path in ("/health/live", "/liveness", "/health/ready", "/health/startup", "/health"):
        assert client.get(path).status_code == 200, path
    assert client.get("/health/live").json()["status"] == "UP"


def test_probes_are_left_out_of_the_openapi_document():
    from tests.apps.health import app

    paths = set(app.openapi()["paths"])
    assert "/health/db" in paths  # the app's own route stays
    assert not {p for p in paths if p.startswith(("/health/l", "/health/r", "/health/s"))}
    assert not paths & {"/health", "/liveness", "/readiness"}


def test_the_access_log_leaves_out_every_probe_path():
    with LiveServer("tests.apps.health:quiet_app", "--env", "production", "--logs") as live:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            for path in ("/probe", "/probe/live", "/liveness", "/readiness", "/probe/startup"):
                client.get(path)
            client.get("/calls", headers={"x-key": KEY})
            deadline = time.monotonic() + 20
            while not any("/calls" in line for line in live.output):
                assert time.monotonic() < deadline, live.output
                time.sleep(0.05)
        logged = [line for line in live.output if " /" in line]
        assert not [line for line in logged if "/probe" in line or "ness" in line], logged


def test_liveness_answers_while_a_report_waits_on_a_hung_check(connect):
    client = connect("app")
    set_state(client, "db", "hang")
    answers: list[int] = []
    thread = threading.Thread(target=lambda: answers.append(client.get("/health").status_code))
    thread.start()
    try:
        assert client.get("/health/live").status_code == 200
    finally:
        thread.join(20)
    assert answers == [503]


def test_the_names_are_exported_where_the_docs_import_them():
    import cello
    import cello.middleware

    for module in (cello, cello.middleware):
        assert {"HealthCheckConfig", "HealthStatus"} <= set(module.__all__)
        assert module.HealthCheckConfig is HealthCheckConfig
    assert HealthStatus("UP") is HealthStatus.UP
    assert HealthStatus.parse("healthy") is HealthStatus.UP
    with pytest.raises(ValueError, match="not a health status"):
        HealthStatus.parse("sideways")


def test_the_response_cache_never_keeps_a_probe_answer():
    app = App()
    state = {"up": True}
    app.add_health_check("db", lambda: state["up"])
    app.enable_health_checks(HealthCheckConfig(base_path="/status"))
    app.enable_caching(ttl=300)
    with TestClient(app) as client:
        for path in ("/status", "/status/ready", "/readiness"):
            assert client.get(path).status_code == 200, path
            assert client.get(path).headers.get("x-cache") != "HIT", path
        state["up"] = False
        for path in ("/status", "/status/ready", "/readiness"):
            assert client.get(path).status_code == 503, path
