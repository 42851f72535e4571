"""Multipart forms through every door: the same echo of fields and files,
and the same 400 and 413 problems (status, content type, detail), byte for
byte."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.forms.app:app"
PROBLEM = "application/problem+json"
CT = [("content-type", "multipart/form-data; boundary=XyZ")]


def form(*parts: tuple[str, bytes]) -> bytes:
    body = b""
    for headers, content in parts:
        body += b"--XyZ\r\n" + headers.encode() + b"\r\n\r\n" + content + b"\r\n"
    return body + b"--XyZ--\r\n"


FIELD = ('Content-Disposition: form-data; name="title"', b"hello")
FILE = (
    'Content-Disposition: form-data; name="doc"; filename="../a.txt"\r\nContent-Type: text/plain',
    b"file body",
)
EXTENDED = (
    "Content-Disposition: form-data; name=\"doc\"; filename*=UTF-8''%E2%82%AC.txt",
    b"euro",
)
ECHO = {
    "items": [
        ["title", "hello"],
        ["doc", {"filename": "../a.txt", "content_type": "text/plain", "size": 9,
                 "text": "file body"}],
    ]
}  # fmt: skip

# (name, path, headers, body, status, expected JSON: the echo, or the problem's detail)
CASES = [
    ("echo", "/echo", CT, form(FIELD, FILE), 200, ECHO),
    ("echo async", "/echo-async", CT, form(FIELD, FILE), 200, ECHO),
    ("RFC 5987 filename", "/echo", CT, form(EXTENDED), 200,
     {"items": [["doc", {"filename": "€.txt", "content_type": None, "size": 4, "text": "euro"}]]}),
    ("empty form", "/echo", CT, b"--XyZ--\r\n", 200, {"items": []}),
    ("file over its limit", "/small", CT, form(FILE), 413,
     'file "doc" exceeds the limit of 4 bytes per file'),
    ("too many fields", "/small", CT, form(FIELD, FIELD, FIELD), 413,
     "the form has more than 2 fields"),
    ("body over the route limit", "/tiny-body", CT, form(FIELD, FILE, FILE), 413,
     "request body exceeds the limit of 64 bytes"),
    ("no boundary", "/echo", [("content-type", "multipart/form-data")], form(FIELD), 400,
     "the multipart/form-data Content-Type has no boundary"),
    ("no closing boundary", "/echo", CT, form(FIELD)[: -len(b"--\r\n")], 400,
     "the multipart body ends before its closing boundary"),
    ("truncated part", "/echo", CT, b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\nab',
     400, 'form part "a" ends before its closing boundary'),
    ("bad header", "/echo", CT, b"--XyZ\r\nnot a header\r\n\r\nx\r\n--XyZ--\r\n", 400,
     "a form part has malformed headers"),
    ("non-UTF-8 field", "/echo", CT,
     form(('Content-Disposition: form-data; name="t"', b"\xff")), 400,
     'form field "t" is not valid UTF-8'),
]  # fmt: skip


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors, case):
    name, path, headers, body, status, expected = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send("POST", path, headers, body)
        assert observed.status == status, f"{door_name}: {observed.body[:300]!r}"
        seen = dict(observed.headers)
        if status == 200:
            assert observed.json() == expected, door_name
        else:
            assert seen["content-type"] == PROBLEM, door_name
            problem = observed.json()
            assert problem["detail"] == expected, door_name
            assert problem["status"] == status and problem["instance"] == path, door_name
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"
