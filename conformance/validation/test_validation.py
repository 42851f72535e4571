"""Bound parameters and validation through every door: the same 422
problems (path, query, header and body errors, the documented invalid-JSON
error, DTOConfig's options), the same 415, the same dependency refusal, the
same filtered response model, and the same replaced 422."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.validation.app:app"
PROBLEM = {"content-type": "application/problem+json"}
JSON = [("content-type", "application/json")]
TOKEN = [("x-token", "letmein"), *JSON]
INT_MSG = "Input should be a valid integer, unable to parse string as an integer"


def unprocessable(path: str, *errors: dict) -> dict:
    return {"type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": list(errors), "instance": path}  # fmt: skip


def missing(*loc: object) -> dict:
    return {"type": "missing", "loc": list(loc), "msg": "Field required", "input": None}


INVALID_JSON = {"loc": ["body"], "msg": "Invalid JSON body", "type": "value_error.json"}
ITEM = b'{"name": "hat", "price": 9.5}'

CASES = [
    # (name, method, path, headers, body, status, expected JSON body, expected headers)
    ("path and query", "GET", "/items/7?q=hat&limit=2", [], None, 200,
     {"item_id": 7, "q": "hat", "limit": 2}, {"content-type": "application/json"}),
    ("bad path int", "GET", "/items/seven", [], None, 422,
     unprocessable("/items/seven", {"type": "int_parsing", "loc": ["path", "item_id"],
                                    "msg": INT_MSG, "input": "seven"}), PROBLEM),
    ("bad query constraint", "GET", "/items/7?limit=0", [], None, 422,
     unprocessable("/items/7", {"type": "greater_than_equal", "loc": ["query", "limit"],
                                "msg": "Input should be greater than or equal to 1",
                                "input": "0", "ctx": {"ge": 1}}), PROBLEM),
    ("missing list query", "GET", "/search", [], None, 422,
     unprocessable("/search", missing("query", "terms")), PROBLEM),
    ("repeated query keys", "GET", "/search?terms=a&terms=b&page=2", [], None, 200,
     {"terms": ["a", "b"], "page": 2}, {}),
    ("dependency refuses", "POST", "/items", JSON, ITEM, 401,
     {"type": "about:blank", "title": "Unauthorized", "status": 401,
      "detail": "a valid X-Token header is required", "instance": "/items"}, PROBLEM),
    ("valid body", "POST", "/items", TOKEN, ITEM, 200,
     {"name": "hat", "price": 9.5, "tags": [], "address": None}, {}),
    ("invalid JSON", "POST", "/items", TOKEN, b'{"name": ', 422,
     unprocessable("/items", INVALID_JSON), PROBLEM),
    ("empty body", "POST", "/items", TOKEN, b"", 422,
     unprocessable("/items", missing("body")), PROBLEM),
    ("nested errors", "POST", "/items", TOKEN,
     b'{"name": "", "price": 0, "address": {"zip": "1"}}', 422,
     unprocessable("/items",
                   {"type": "string_too_short", "loc": ["body", "name"],
                    "msg": "String should have at least 1 character", "input": "",
                    "ctx": {"min_length": 1}},
                   {"type": "greater_than", "loc": ["body", "price"],
                    "msg": "Input should be greater than 0", "input": 0, "ctx": {"gt": 0}},
                   {"type": "missing", "loc": ["body", "address", "city"],
                    "msg": "Field required", "input": {"zip": "1"}},
                   {"type": "string_pattern_mismatch", "loc": ["body", "address", "zip"],
                    "msg": "String should match pattern '^\\d{5}$'", "input": "1",
                    "ctx": {"pattern": "^\\d{5}$"}}), PROBLEM),
    ("wrong content type", "POST", "/items", [("x-token", "letmein"),
     ("content-type", "text/plain")], ITEM, 415,
     {"type": "about:blank", "title": "Unsupported Media Type", "status": 415,
      "detail": "the request body must be JSON (Content-Type: application/json), not text/plain",
      "instance": "/items"}, PROBLEM),
    ("strict, extra forbidden, no input", "POST", "/items/strict", JSON,
     b'{"name": "a", "price": "1", "color": "red"}', 422,
     unprocessable("/items/strict",
                   {"type": "float_type", "loc": ["body", "price"],
                    "msg": "Input should be a valid number"},
                   {"type": "extra_forbidden", "loc": ["body", "color"],
                    "msg": "Extra inputs are not permitted"}), PROBLEM),
    ("response model filters", "GET", "/public", [], None, 200, {"name": "ada"}, {}),
    ("blueprint with request", "GET", "/v2/items/3", [], None, 200,
     {"item_id": 3, "path": "/v2/items/3"}, {}),
    ("blueprint bad int", "GET", "/v2/items/x", [], None, 422,
     unprocessable("/v2/items/x", {"type": "int_parsing", "loc": ["path", "item_id"],
                                   "msg": INT_MSG, "input": "x"}), PROBLEM),
]  # fmt: skip


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.fixture(scope="module")
def custom_doors() -> Iterator[dict[str, Door]]:
    with started_doors("conformance.validation.app:custom") as started:
        yield started


def check(doors: dict[str, Door], case: tuple) -> None:
    name, method, path, headers, body, status, expected, expected_headers = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, body)
        assert observed.status == status, f"{door_name}: {observed.body[:300]!r}"
        assert json.loads(observed.body) == expected, door_name
        seen = dict(observed.headers)
        for header, value in expected_headers.items():
            assert seen.get(header) == value, f"{door_name}: {header} {seen.get(header)!r}"
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors: dict[str, Door], case: tuple) -> None:
    check(doors, case)


def test_an_exception_handler_replaces_the_422_in_every_door(
    custom_doors: dict[str, Door],
) -> None:
    check(custom_doors, ("replaced", "POST", "/items", JSON, b"{}", 400, {"errors": 2}, {}))
