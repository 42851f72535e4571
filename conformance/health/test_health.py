"""The health probes and report through every door (the native server,
uvicorn and the in-process transport): the same statuses, headers and
bodies once what changes by the moment (timestamps, uptime, durations) is
masked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.doors import Door, started_doors

APP = "conformance.health.app:app"
TIME = "<timestamp>"

UP_DB = {"status": "UP", "critical": True, "duration_ms": 0, "details": {"pool": {"size": 5}}}
DOWN_DB = {
    "status": "DOWN",
    "critical": True,
    "duration_ms": 0,
    "message": "connection refused",
    "details": {"host": "db.internal"},
}
SEARCH = {
    "status": "DOWN",
    "critical": False,
    "duration_ms": 0,
    "message": "TimeoutError: search cluster slow",
}

HEALTHY = [
    # (method, path, status, masked body)
    ("GET", "/health/live", 200, {"status": "UP", "timestamp": TIME}),
    ("GET", "/liveness", 200, {"status": "UP", "timestamp": TIME}),
    ("GET", "/health/startup", 200, {"status": "UP", "started": True, "timestamp": TIME}),
    (
        "GET",
        "/health/ready",
        200,
        {
            "status": "DEGRADED",
            "ready": True,
            "timestamp": TIME,
            "checks": {"db": UP_DB, "search": SEARCH},
        },
    ),
    (
        "GET",
        "/readiness",
        200,
        {
            "status": "DEGRADED",
            "ready": True,
            "timestamp": TIME,
            "checks": {"db": UP_DB, "search": SEARCH},
        },
    ),
    (
        "GET",
        "/health",
        200,
        {
            "status": "DEGRADED",
            "timestamp": TIME,
            "version": "3.0.0",
            "uptime_seconds": 0,
            "checks": {"db": UP_DB, "search": SEARCH},
        },
    ),
    ("HEAD", "/health", 200, None),
    ("HEAD", "/health/live", 200, None),
]
DOWN = [
    (
        "GET",
        "/health",
        503,
        {
            "status": "DOWN",
            "timestamp": TIME,
            "version": "3.0.0",
            "uptime_seconds": 0,
            "checks": {"db": DOWN_DB, "search": SEARCH},
        },
    ),
    (
        "GET",
        "/health/ready",
        503,
        {
            "status": "DOWN",
            "ready": False,
            "timestamp": TIME,
            "checks": {"db": DOWN_DB, "search": SEARCH},
        },
    ),
    ("HEAD", "/readiness", 503, None),
    ("GET", "/health/live", 200, {"status": "UP", "timestamp": TIME}),
]


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


def mask(value: Any) -> Any:
    """The body with what changes from one moment to the next replaced."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "timestamp":
                out[key] = TIME
            elif key in ("uptime_seconds", "duration_ms"):
                assert isinstance(item, int | float) and item >= 0, (key, item)
                out[key] = 0
            else:
                out[key] = mask(item)
        return out
    return value


def observe(door: Door, method: str, path: str) -> tuple[int, list[tuple[str, str]], Any]:
    observed = door.send(method, path, [], None)
    # The length follows the masked values; transfer-encoding is the wire's.
    headers = [h for h in observed.headers if h[0] not in ("content-length", "transfer-encoding")]
    body = mask(json.loads(observed.body)) if observed.body else None
    return observed.status, headers, body


@pytest.mark.parametrize("cases", [HEALTHY, DOWN], ids=["healthy", "db-down"])
def test_every_door_gives_the_documented_bodies(doors, cases):
    state = "up" if cases is HEALTHY else "down"
    for door in doors.values():
        assert door.send("PUT", f"/db/{state}", [], None).status == 200
    for method, path, status, body in cases:
        answers = {}
        for name, door in doors.items():
            answer = observe(door, method, path)
            assert answer[0] == status, (name, method, path, answer)
            assert answer[2] == body, (name, method, path, answer[2])
            assert ("cache-control", "no-store") in answer[1], (name, path)
            assert ("content-type", "application/json") in answer[1], (name, path, answer[1])
            answers[name] = answer
        for name, answer in answers.items():
            assert answer == answers["native"], f"{name} differs from native for {method} {path}"
