"""Guards and the circuit breaker through every door: the same refusals
(401, 403, their RFC 7807 bodies and an exception handler's replacement),
the same admissions, and the same open-circuit 503."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.middleware.guards_app:app"


def user(**claims) -> list[tuple[str, str]]:
    return [("x-user", json.dumps(claims))]


def problem(status: int, title: str, detail: str, path: str) -> dict:
    return {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": path}  # fmt: skip


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


CASES = [
    # (name, method, path, headers, status, expected JSON body, expected headers)
    ("no user, through the 401 handler", "GET", "/me", [], 401,
     {"login": "/login", "reason": "Authentication required"}, {}),
    ("a user passes", "GET", "/me", user(sub="ann"), 200, {"user": {"sub": "ann"}}, {}),
    ("missing role", "GET", "/admin", user(roles=["staff"]), 403,
     problem(403, "Forbidden", "Requires one of roles: admin, owner", "/admin"),
     {"content-type": "application/problem+json"}),
    ("roles as a string", "GET", "/admin", user(roles="staff owner"), 200, {"admin": True}, {}),
    ("missing permissions", "POST", "/reports", user(permissions=["reports:read"]), 403,
     problem(403, "Forbidden", "Missing required permissions: reports:write", "/reports"), {}),
    ("all permissions", "POST", "/reports",
     user(permissions=["reports:read", "reports:write"]), 200, {"written": True}, {}),
    ("a guard returning False", "GET", "/denied", user(sub="x"), 403,
     problem(403, "Forbidden", "Access denied", "/denied"), {}),
    ("Or refuses as its first refusing guard", "GET", "/weekday",
     [*user(roles=[]), ("x-day", "sunday")], 403,
     problem(403, "Forbidden", "Requires one of roles: admin", "/weekday"), {}),
    ("an async guard's message", "GET", "/sunday", [("x-day", "sunday")], 403,
     problem(403, "Forbidden", "Closed on Sundays", "/sunday"), {}),
    ("an async guard admits", "GET", "/weekday", [("x-day", "monday")], 200, {"open": True}, {}),
    ("Or: one passing guard is enough", "GET", "/weekday",
     [*user(roles=["admin"]), ("x-day", "sunday")], 200, {"open": True}, {}),
    ("a broken guard is a 403", "GET", "/broken", [], 403,
     problem(403, "Forbidden", "Guard error: no such tenant", "/broken"), {}),
    ("Not refuses when its guard passes", "GET", "/not-admin", user(roles=["admin"]), 403,
     problem(403, "Forbidden", "Guard succeeded but was expected to fail", "/not-admin"), {}),
    ("blueprint guard", "GET", "/staff/lounge", user(roles=["guest"]), 403,
     problem(403, "Forbidden", "Requires one of roles: staff", "/staff/lounge"), {}),
    ("blueprint guard admits", "GET", "/staff/lounge", user(roles=["staff"]), 200,
     {"lounge": True}, {}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors, case):
    name, method, path, headers, status, expected, expected_headers = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, None)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        assert json.loads(observed.body) == expected, door_name
        seen = dict(observed.headers)
        for header, value in expected_headers.items():
            assert seen.get(header) == value, f"{door_name}: {header} {seen.get(header)!r}"
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


def test_an_open_circuit_gives_every_door_the_same_503(doors):
    answers = {}
    for door_name, door in doors.items():
        assert door.send("GET", "/fragile/ok", [], None).status == 200, door_name
        assert door.send("GET", "/fragile/fail", [], None).status == 500, door_name
        observed = door.send("GET", "/fragile/ok", [], None)
        assert observed.status == 503, door_name
        seen = dict(observed.headers)
        assert seen["content-type"] == "application/problem+json"
        body = json.loads(observed.body)
        retry_after = int(seen["retry-after"])
        # Seconds left, rounded up: the same in every door unless a door
        # took over a second to answer, so it is compared as a range.
        assert 3590 <= retry_after <= 3600, door_name
        assert body.pop("retry_after") == retry_after
        assert body == {"type": "about:blank", "title": "Service Unavailable", "status": 503,
                        "detail": "Service temporarily unavailable"}  # fmt: skip
        headers = tuple(h for h in comparable(observed, door_name).headers if h[0] != "retry-after")
        answers[door_name] = (observed.status, headers, body)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native"
