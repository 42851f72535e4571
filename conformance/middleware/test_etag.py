"""ETags and 304 Not Modified through every door: the native server,
uvicorn, and the in-process ASGI transport give the same tags, the same
304s and the same bytes, around handlers, streams and a mounted Starlette
app."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors
from conformance.middleware.etag_app import MODIFIED

APP = "conformance.middleware.etag_app:app"
TAG = re.compile(r'^"[0-9a-f]{32}"$')


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.fixture(scope="module")
def doc_tag(doors) -> str:
    tag = dict(doors["native"].send("GET", "/doc", [], None).headers)["etag"]
    assert TAG.match(tag), tag
    return tag


def cases(doc_tag: str) -> list[tuple]:
    # (name, method, path, request headers, status, body, headers present, headers absent)
    return [
        ("a whole body gets a tag", "GET", "/doc", [], 200, b"conformance document",
         {"etag": doc_tag, "cache-control": "max-age=60"}, set()),
        ("its tag gives a 304", "GET", "/doc", [("if-none-match", doc_tag)], 304, b"",
         {"etag": doc_tag, "cache-control": "max-age=60", "vary": "Accept"},
         {"content-type", "content-length"}),
        ("weakly, in a list", "GET", "/doc", [("if-none-match", f'"x", W/{doc_tag}')], 304, b"",
         {"etag": doc_tag}, {"content-type"}),
        ("star", "GET", "/doc", [("if-none-match", "*")], 304, b"", {"etag": doc_tag}, set()),
        ("a mismatch gets the body", "GET", "/doc", [("if-none-match", '"x"')], 200,
         b"conformance document", {"etag": doc_tag}, set()),
        ("a malformed value matches nothing", "GET", "/doc",
         [("if-none-match", doc_tag.strip('"'))], 200, b"conformance document", {}, set()),
        ("POST is left alone", "POST", "/doc", [("if-none-match", "*")], 200, b"posted", {},
         {"etag"}),
        ("a 404 is left alone", "GET", "/nope", [("if-none-match", "*")], 404, None, {},
         {"etag"}),
        ("a handler's weak tag is kept and compared", "GET", "/tagged",
         [("if-none-match", '"v1"')], 304, b"", {"etag": 'W/"v1"'}, set()),
        ("HEAD compares a tag it has", "HEAD", "/tagged", [("if-none-match", '"v1"')], 304, b"",
         {"etag": 'W/"v1"'}, set()),
        ("HEAD hashes nothing", "HEAD", "/doc", [], 200, b"", {}, {"etag"}),
        ("a stream is not hashed", "GET", "/dated", [], 200, b"dated stream",
         {"last-modified": MODIFIED}, {"etag"}),
        ("If-Modified-Since on a stream", "GET", "/dated",
         [("if-modified-since", MODIFIED)], 304, b"", {"last-modified": MODIFIED},
         {"content-type"}),
        ("an earlier date gets the stream", "GET", "/dated",
         [("if-modified-since", "Tue, 01 Jul 2025 11:00:00 GMT")], 200, b"dated stream", {},
         set()),
        ("a malformed date is ignored", "GET", "/dated", [("if-modified-since", "soon")], 200,
         b"dated stream", {}, set()),
        ("mounted Starlette: star", "GET", "/starlette/plain", [("if-none-match", "*")], 304,
         b"", {"cache-control": "no-cache"}, {"content-type"}),
        ("mounted Starlette: a mismatch", "GET", "/starlette/plain",
         [("if-none-match", '"x"')], 200, b"from starlette", {}, set()),
    ]  # fmt: skip


NAMES = [c[0] for c in cases('"x"')]


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_every_door_answers_alike(doors, doc_tag, index):
    name, method, path, headers, status, body, present, absent = cases(doc_tag)[index]
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, None)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        if body is not None:
            assert observed.body == body, door_name
        seen = dict(observed.headers)
        for header, value in present.items():
            assert seen.get(header) == value, f"{door_name}: {header} {seen.get(header)!r}"
        for header in absent:
            assert header not in seen, f"{door_name}: {header} should be absent"
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


def test_a_mounted_app_s_tag_is_the_same_in_every_door(doors):
    tags = {
        name: dict(door.send("GET", "/starlette/plain", [], None).headers)["etag"]
        for name, door in doors.items()
    }
    assert len(set(tags.values())) == 1, tags
    tag = tags["native"]
    for name, door in doors.items():
        observed = door.send("GET", "/starlette/plain", [("if-none-match", tag)], None)
        assert observed.status == 304, name
