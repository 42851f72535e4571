"""Rendered templates through every door: the native server, uvicorn and
the in-process ASGI transport give the same status, headers and bytes for
pages, text, inline templates, escaping, the CSRF helpers and a template
error."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cello.middleware.csrf import CsrfConfig, CsrfMiddleware
from conformance.doors import Door, comparable, started_doors

APP = "conformance.templates.app:app"
HTML = "text/html; charset=utf-8"
TOKEN = CsrfMiddleware(CsrfConfig(secret="conformance-templates")).new_token()


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


LIST = (
    b"<!doctype html>\n<html><head><title>Fruit &amp; veg - Conformance</title></head>\n"
    b"<body><h1>Fruit &amp; veg</h1>\n<ol><li>apple,</li><li>&lt;b&gt;pear&lt;&#x2f;b&gt;</li>"
    b"</ol>\n</body></html>"
)

# (name, path, request headers, status, content type, body)
CASES = [
    ("a page with a layout, a loop and escaping",
     "/list?heading=Fruit+%26+veg&item=apple&item=%3Cb%3Epear%3C/b%3E", [], 200, HTML, LIST),
    ("an empty loop", "/list", [], 200, HTML, None),
    ("a text template is not escaped", "/plain?heading=%3Ch%3E&item=a&item=%3Cb%3E", [], 200,
     "text/plain; charset=utf-8", b"<h>: a & <b>"),
    ("an inline template is escaped", "/inline?q=%22%3E%3Cscript%3E", [], 200, HTML,
     b"<p>&quot;&gt;&lt;script&gt;</p>"),
    ("a status with a template", "/teapot", [], 418, HTML, None),
    ("a template error is a 500 problem", "/error", [], 500, "application/problem+json", None),
    ("the CSRF meta helper", "/csrf", [], 200, HTML,
     f'<meta name="csrf-token" content="{TOKEN}">'.encode()),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_renders_alike(doors, case):
    name, path, headers, status, content_type, body = case
    answers = {}
    for door_name, door in doors.items():
        # A valid CSRF cookie, so that no door sets a new (random) one.
        observed = door.send("GET", path, [("cookie", f"_csrf={TOKEN}"), *headers], None)
        assert observed.status == status, f"{door_name}: {observed.body[:300]!r}"
        assert dict(observed.headers)["content-type"] == content_type, door_name
        if body is not None:
            assert observed.body == body, door_name
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"
