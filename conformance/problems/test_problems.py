"""ProblemDetails through every door: the same status, headers and bytes
for each error kind, returned or raised, custom types, extensions, headers
and exception handlers."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.problems.app:app"
PROBLEM = "application/problem+json"

KINDS = [
    ("validation", 422, "Validation Error"),
    ("bad-request", 400, "Bad Request"),
    ("unauthorized", 401, "Unauthorized"),
    ("forbidden", 403, "Forbidden"),
    ("not-found", 404, "Not Found"),
    ("conflict", 409, "Conflict"),
    ("rate-limited", 429, "Too Many Requests"),
    ("timeout", 504, "Gateway Timeout"),
    ("internal", 500, "Internal Server Error"),
]

CASES = [
    *[(f"returned {k}", f"/kinds/{k}", s,
       {"type": f"/errors/{k}", "title": t, "status": s, "detail": f"a {k} problem",
        "instance": f"/kinds/{k}"}, {}) for k, s, t in KINDS],
    *[(f"raised {k}", f"/raised/{k}", s,
       {"type": f"/errors/{k}", "title": t, "status": s, "detail": f"raised {k}"}, {})
      for k, s, t in KINDS],
    ("unknown kind", "/kinds/nope", 404,
     {"type": "/errors/not-found", "title": "Not Found", "status": 404,
      "detail": "no error kind 'nope'", "instance": "/kinds/nope"}, {}),
    ("retry after", "/rate-limited", 429,
     {"type": "/errors/rate-limited", "title": "Too Many Requests", "status": 429,
      "detail": "Slow down.", "retry_after": 7}, {"retry-after": "7"}),
    ("custom type and extensions", "/custom", 403,
     {"type": "https://example.com/probs/out-of-credit",
      "title": "You do not have enough credit.", "status": 403,
      "detail": "Your current balance is 30, but that costs 50.",
      "instance": "/account/12345/msgs/abc", "balance": 30,
      "accounts": ["/account/12345", None]}, {}),
    ("defaults", "/default", 500,
     {"type": "about:blank", "title": "Internal Server Error", "status": 500}, {}),
    ("escaping", "/unicode", 400,
     {"type": "/errors/bad-request", "title": "Bad Request", "status": 400,
      "detail": '名前 "quoted" \\ and a tab\there', "instance": "/unicode"}, {}),
    ("to_response with headers", "/response", 409,
     {"type": "/errors/conflict", "title": "Conflict", "status": 409,
      "detail": "Already taken."}, {"x-problem": "yes"}),
    ("status tuple", "/with-status", 422,
     {"type": "/errors/bad-request", "title": "Bad Request", "status": 400,
      "detail": "reclassified"}, {}),
    ("exception handler", "/handled", 409,
     {"type": "/errors/conflict", "title": "Conflict", "status": 409,
      "detail": "handled elsewhere", "instance": "/handled", "key": "k-1", "handled": True},
     {}),
]  # fmt: skip


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors, case):
    name, path, status, expected, headers = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send("GET", path, [], None)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        found = dict(observed.headers)
        assert found["content-type"] == PROBLEM, door_name
        # The members in the documented order, not only the same set.
        assert list(json.loads(observed.body)) == list(expected), door_name
        assert json.loads(observed.body) == expected, door_name
        for header, value in headers.items():
            assert found.get(header) == value, (door_name, header)
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


def test_a_raised_problem_is_an_http_exception(doors):
    for door_name, door in doors.items():
        observed = door.send("GET", "/caught", [], None)
        assert observed.json() == {"caught": "ProblemDetails", "status_code": 403}, door_name
