"""Server-sent events through every door: the native server, uvicorn and
the in-process ASGI transport send the same status, headers and event
bytes for every kind of source, a returned ``SseStream``, ``HEAD``,
``Last-Event-ID`` and a refused source; a mounted Starlette event stream
passes through the Rust server unchanged."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.sse.app:app"
SSE = "text/event-stream; charset=utf-8"


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


STREAM = (
    b"id: 1\nevent: greeting\nretry: 3000\ndata: hello\n\n"
    b"data: two\ndata: lines\ndata: here\n\n"
    b'event: json\ndata: {"word":"caf\xc3\xa9","n":[1,2]}\n\n'
    b": a comment\n\n"
)

# (name, method, path, request headers, status, content type, body)
CASES = [
    ("a returned SseStream", "GET", "/stream", [], 200, SSE, STREAM),
    ("HEAD sends no events", "HEAD", "/stream", [], 200, SSE, b""),
    ("a list of str, dict and events", "GET", "/list", [], 200, SSE,
     b'data: plain\n\ndata: {"k":null}\n\nid: 9\n\n'),
    ("a sync generator", "GET", "/sync", [], 200, SSE,
     b"id: 0\ndata: sync 0\n\nid: 1\ndata: sync 1\n\nid: 2\ndata: sync 2\n\n"),
    ("an async generator", "GET", "/async", [], 200, SSE,
     b"event: tick\ndata: 0\n\nevent: tick\ndata: 1\n\nevent: tick\ndata: 2\n\n"),
    ("status and headers", "GET", "/options", [], 202, SSE, b"data: x\n\n"),
    ("no Last-Event-ID", "GET", "/resume", [], 200, SSE,
     b"id: 1\ndata: event 1\n\nid: 2\ndata: event 2\n\nid: 3\ndata: event 3\n\n"),
    ("resumed after Last-Event-ID", "GET", "/resume", [("last-event-id", "2")], 200, SSE,
     b"id: 3\ndata: event 3\n\n"),
    ("a str source is a 500 problem", "GET", "/refused", [], 500,
     "application/problem+json", None),
    ("a mounted Starlette event stream", "GET", "/star/events", [], 200,
     "text/event-stream; charset=utf-8", b"id: 0\ndata: mounted 0\n\nid: 1\ndata: mounted 1\n\n"),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_sends_the_same_events(doors, case):
    name, method, path, headers, status, content_type, body = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, None)
        assert observed.status == status, f"{door_name}: {observed.body[:300]!r}"
        got = dict(observed.headers)
        assert got["content-type"] == content_type, door_name
        if status < 300:
            assert "content-length" not in got, door_name
        if body is not None:
            assert observed.body == body, door_name
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


def test_sse_headers(doors):
    for door_name, door in doors.items():
        got = dict(door.send("GET", "/stream", [], None).headers)
        assert got["cache-control"] == "no-cache", door_name
        assert got["x-accel-buffering"] == "no", door_name
        overridden = door.send("GET", "/options", [], None)
        assert overridden.headers.count(("cache-control", "no-store")) == 1, door_name
        assert ("cache-control", "no-cache") not in overridden.headers, door_name
        assert ("x-feed", "1") in overridden.headers, door_name
