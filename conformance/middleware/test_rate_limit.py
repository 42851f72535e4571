"""Rate limits through every door: the native server, uvicorn and the
in-process ASGI transport give the same budget headers, the same 429
problem and the same ``Retry-After`` (give or take the seconds between the
doors' requests), for the native layer and for a ``key_func`` limit run in
Python. Each door has its budgets of its own and gets the same requests in
the same order."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conformance.doors import Door, Observed, comparable, started_doors

APP = "conformance.middleware.rate_limit_app:app"
TENANT = [("x-tenant", "acme")]

# (name, method, path, request headers, status, remaining or None for no headers)
CASES = [
    ("an unlimited path has no budget headers", "GET", "/open", [], 200, None),
    ("the first request", "GET", "/limited/ping", [], 200, 1),
    ("the last one in the budget", "GET", "/limited/ping", [], 200, 0),
    ("over the budget", "GET", "/limited/ping", [], 429, 0),
    ("the framework's 404 below the limit is limited too", "GET", "/limited/nope", [], 429, 0),
    ("HEAD over the budget", "HEAD", "/limited/ping", [], 429, 0),
    ("key_func: the first request", "GET", "/keyed", TENANT, 200, 1),
    ("key_func: the last one", "GET", "/keyed", TENANT, 200, 0),
    ("key_func: over the budget", "GET", "/keyed", TENANT, 429, 0),
    ("key_func: another key", "GET", "/keyed", [("x-tenant", "globex")], 200, 1),
]  # fmt: skip


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


def _steady(observed: Observed) -> tuple[Observed, int | None]:
    """``observed`` without the seconds-to-wait, which depend on the moment
    each door was asked, and those seconds."""
    headers = dict(observed.headers)
    retry = headers.get("retry-after")
    body = observed.body
    if retry is not None and body:
        problem = json.loads(body)
        assert problem.pop("retry_after") == int(retry)
        body = json.dumps(problem).encode()
    steady = tuple(h for h in observed.headers if h[0] != "retry-after")
    return Observed(observed.status, steady, body), None if retry is None else int(retry)


def test_every_door_answers_alike_in_order(doors):
    for name, method, path, headers, status, remaining in CASES:
        answers = {}
        waits = {}
        for door_name, door in doors.items():
            observed = door.send(method, path, headers, None)
            assert observed.status == status, f"{name} / {door_name}: {observed.body[:200]!r}"
            seen = dict(observed.headers)
            if remaining is None:
                assert "x-ratelimit-limit" not in seen, f"{name} / {door_name}"
            else:
                assert seen["x-ratelimit-limit"] == "2", f"{name} / {door_name}"
                assert seen["x-ratelimit-remaining"] == str(remaining), f"{name} / {door_name}"
                assert int(seen["x-ratelimit-reset"]) % 86400 == 0, f"{name} / {door_name}"
            if status == 429:
                assert seen["content-type"] == "application/problem+json"
                assert int(seen["retry-after"]) >= 1
                if method == "GET":
                    problem = json.loads(observed.body)
                    assert problem["detail"] == "Rate limit exceeded. Please try again later."
            answers[door_name], waits[door_name] = _steady(comparable(observed, door_name))
        for door_name, observed in answers.items():
            assert observed == answers["native"], f"{door_name} differs from native for {name}"
        if status == 429:
            assert max(waits.values()) - min(waits.values()) <= 5, f"{name}: {waits}"
