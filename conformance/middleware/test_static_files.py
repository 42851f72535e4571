"""Static files through every door: the same files, validators, ranges,
precompressed variants, listings and refusals, byte for byte."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.middleware.static_files_app:app"
STATIC = Path(__file__).resolve().parent / "static"
HELLO = (STATIC / "hello.txt").read_bytes()
APP_JS = (STATIC / "app.js").read_bytes()


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


def not_found(path: str) -> bytes:
    return json.dumps(
        {"type": "about:blank", "title": "Not Found", "status": 404,
         "detail": f"no route for GET {path}", "instance": path},
        separators=(",", ":"),
    ).encode()  # fmt: skip


CASES = [
    # (name, method, path, headers, status, expected body, expected headers)
    ("a file", "GET", "/static/hello.txt", [], 200, HELLO,
     {"content-type": "text/plain; charset=utf-8", "content-length": str(len(HELLO)),
      "accept-ranges": "bytes", "cache-control": "public, max-age=600",
      "vary": "accept-encoding"}),
    ("HEAD of a file", "HEAD", "/static/hello.txt", [], 200, b"",
     {"content-length": str(len(HELLO)), "accept-ranges": "bytes"}),
    ("JSON gets a charset", "GET", "/static/data.json", [], 200, b'{"static": true}\n',
     {"content-type": "application/json; charset=utf-8"}),
    ("the index of the root", "GET", "/static/", [], 200, (STATIC / "index.html").read_bytes(),
     {"content-type": "text/html; charset=utf-8"}),
    ("a directory without its slash", "GET", "/static/docs", [], 301, b"",
     {"location": "/static/docs/"}),
    ("a listing", "GET", "/static/docs/", [], 200, None,
     {"content-type": "text/html; charset=utf-8"}),
    ("a range", "GET", "/static/hello.txt", [("range", "bytes=0-4")], 206, HELLO[:5],
     {"content-range": f"bytes 0-4/{len(HELLO)}", "content-length": "5"}),
    ("a suffix range", "GET", "/static/hello.txt", [("range", "bytes=-5")], 206, HELLO[-5:],
     {"content-range": f"bytes {len(HELLO) - 5}-{len(HELLO) - 1}/{len(HELLO)}"}),
    ("several ranges give the whole file", "GET", "/static/hello.txt",
     [("range", "bytes=0-1,3-4")], 200, HELLO, {}),
    ("a malformed range is ignored", "GET", "/static/hello.txt", [("range", "bytes=z-")],
     200, HELLO, {}),
    ("an unsatisfiable range", "GET", "/static/hello.txt", [("range", "bytes=999-")], 416, None,
     {"content-range": f"bytes */{len(HELLO)}", "content-type": "application/problem+json"}),
    ("If-None-Match: *", "GET", "/static/hello.txt", [("if-none-match", "*")], 304, b"",
     {"cache-control": "public, max-age=600"}),
    ("a stored gzip variant", "GET", "/static/app.js", [("accept-encoding", "gzip")], 200, APP_JS,
     {"content-encoding": "gzip", "content-type": "text/javascript; charset=utf-8",
      "content-length": str((STATIC / "app.js.gz").stat().st_size)}),
    ("no variant for identity", "GET", "/static/app.js", [("accept-encoding", "identity")], 200,
     APP_JS, {"content-length": str(len(APP_JS))}),
    ("a dotfile", "GET", "/static/.secret", [], 404, not_found("/static/.secret"), {}),
    ("an encoded climb", "GET", "/static/%2e%2e/static_files_app.py", [], 404,
     not_found("/static/../static_files_app.py"), {}),
    ("an encoded slash", "GET", "/static/docs%2f..%2f.secret", [], 404,
     not_found("/static/docs/../.secret"), {}),
    ("a missing file falls through to a route", "GET", "/static/dynamic", [], 200,
     b'{"dynamic":true}', {"content-type": "application/json"}),
    ("a missing file without a route", "GET", "/static/missing.txt", [], 404,
     not_found("/static/missing.txt"), {}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_serves_alike(doors, case):
    name, method, path, headers, status, body, expected_headers = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, None)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        if body is not None:
            assert observed.body == body, door_name
        seen = dict(observed.headers)
        for header, value in expected_headers.items():
            assert seen.get(header) == value, f"{door_name}: {header} {seen.get(header)!r}"
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


def test_the_listing_names_the_files_escaped_and_linked(doors):
    page = doors["native"].send("GET", "/static/docs/", [], None).body.decode()
    assert '<a href="./a%20%26%20b.txt">a &amp; b.txt</a>' in page
    assert '<a href="./guide.txt">guide.txt</a>' in page


def test_the_validators_a_door_sends_are_honoured_by_every_door(doors):
    first = dict(doors["native"].send("GET", "/static/hello.txt", [], None).headers)
    for headers in (
        [("if-none-match", first["etag"])],
        [("if-modified-since", first["last-modified"])],
    ):
        answers = {}
        for door_name, door in doors.items():
            observed = door.send("GET", "/static/hello.txt", headers, None)
            assert observed.status == 304, door_name
            assert dict(observed.headers)["etag"] == first["etag"], door_name
            answers[door_name] = comparable(observed, door_name)
        assert len(set(answers.values())) == 1, answers
    ranged = [("range", "bytes=1-3"), ("if-range", first["etag"])]
    for door_name, door in doors.items():
        observed = door.send("GET", "/static/hello.txt", ranged, None)
        assert (observed.status, observed.body) == (206, HELLO[1:4]), door_name
