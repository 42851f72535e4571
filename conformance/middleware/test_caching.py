"""The response cache through every door: the native server, uvicorn and
the in-process ASGI transport miss, hit, bypass, vary and answer 304 alike,
each with its own cache (a door is one process)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from conformance.doors import Door, Observed, comparable, started_doors

APP = "conformance.middleware.caching_app:app"
MAX_AGE = re.compile(r"max-age=(\d+)")


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


def settled(observed: Observed, ttl: int) -> Observed:
    """``observed`` without the headers that count seconds: a hit's ``Age``
    and the ``max-age`` left (checked to add up to the ``ttl``), which a slow
    door may see a second later than another."""
    headers = dict(observed.headers)
    if "age" in headers:
        age = int(headers["age"])
        left = MAX_AGE.fullmatch(headers.get("cache-control", ""))
        assert left and int(left.group(1)) + age == ttl, headers
    kept = tuple(h for h in observed.headers if h[0] not in ("age", "cache-control"))
    return Observed(observed.status, kept, observed.body)


# Each case is requests sent in order: (method, path, request headers,
# status, body, X-Cache, cache-control on a miss or None), all to every door.
CASES = {
    "a miss is stored, then hit": [
        ("GET", "/doc", [], 200, b"document 1", "MISS", "max-age=600"),
        ("GET", "/doc", [], 200, b"document 1", "HIT", None),
        ("HEAD", "/doc", [], 200, b"", "HIT", None),
    ],
    "a no-store response bypasses": [
        ("GET", "/no-store", [], 200, b"fresh 1", "BYPASS", "no-store"),
        ("GET", "/no-store", [], 200, b"fresh 2", "BYPASS", "no-store"),
    ],
    "a 404 is never stored": [
        ("GET", "/missing", [], 404, b'{"missing":1}', "BYPASS", None),
        ("GET", "/missing", [], 404, b'{"missing":2}', "BYPASS", None),
    ],
    "credentials bypass the shared copy": [
        ("GET", "/doc", [("authorization", "Bearer t")], 200, b"document 2", "BYPASS", None),
        ("GET", "/doc", [], 200, b"document 1", "HIT", None),
    ],
    "a fresh copy on request no-cache": [
        ("GET", "/doc", [("cache-control", "no-cache")], 200, b"document 3", "MISS",
         "max-age=600"),
        ("GET", "/doc", [], 200, b"document 3", "HIT", None),
    ],
    "Vary keeps a copy per language": [
        ("GET", "/lang", [("accept-language", "en")], 200, b"en 1", "MISS", "max-age=600"),
        ("GET", "/lang", [("accept-language", "fr")], 200, b"fr 2", "MISS", "max-age=600"),
        ("GET", "/lang", [("accept-language", "en")], 200, b"en 1", "HIT", None),
    ],
    "@cache routes carry their ttl and tags, and invalidate": [
        ("GET", "/tagged", [], 200, b'{"tagged":1}', "MISS", "max-age=120"),
        ("GET", "/tagged", [], 200, b'{"tagged":1}', "HIT", None),
        ("POST", "/invalidate", [], 200, b'{"invalidated":["docs"]}', None, None),
        ("GET", "/tagged", [], 200, b'{"tagged":2}', "MISS", "max-age=120"),
    ],
}  # fmt: skip


@pytest.mark.parametrize("name", list(CASES))
def test_every_door_caches_alike(doors, name):
    for method, path, headers, status, body, x_cache, cache_control in CASES[name]:
        answers = {}
        for door_name, door in doors.items():
            observed = door.send(method, path, headers, None)
            where = f"{door_name}: {method} {path} {headers}"
            assert observed.status == status, where
            assert observed.body == body, where
            seen = dict(observed.headers)
            assert seen.get("x-cache") == x_cache, where
            if cache_control is not None:
                assert seen.get("cache-control") == cache_control, where
            ttl = 120 if path == "/tagged" else 600
            answers[door_name] = settled(comparable(observed, door_name), ttl)
        for door_name, observed in answers.items():
            assert observed == answers["native"], f"{door_name} differs from native: {name}"


def test_a_304_from_a_hit_is_the_same_in_every_door(doors):
    for door_name, door in doors.items():
        tag = dict(door.send("GET", "/doc", [], None).headers)["etag"]
        observed = door.send("GET", "/doc", [("if-none-match", tag)], None)
        seen = dict(observed.headers)
        assert observed.status == 304, door_name
        assert seen["x-cache"] == "HIT", door_name
        assert seen["etag"] == tag, door_name
        assert "content-type" not in seen, door_name
        assert observed.body == b"", door_name
    tags = {
        door_name: dict(door.send("GET", "/doc", [], None).headers)["etag"]
        for door_name, door in doors.items()
    }
    assert len(set(tags.values())) == 1, tags
