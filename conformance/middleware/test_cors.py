"""CORS and security headers through every door: preflights answered before
routing (also for a mounted Starlette app's paths), refused ones as 403
problems, the headers on handlers' answers, the framework's 404/405/413 and
the mounted app's own responses, and byte-identical answers from each door."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.middleware.cors_app:app"
ORIGIN = "https://example.com"
FROM = [("origin", ORIGIN)]


def asks(method: str, headers: str | None = None, origin: str = ORIGIN) -> list[tuple[str, str]]:
    sent = [("origin", origin), ("access-control-request-method", method)]
    if headers is not None:
        sent.append(("access-control-request-headers", headers))
    return sent


SECURITY = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "x-xss-protection": "1; mode=block",
    "referrer-policy": "strict-origin-when-cross-origin",
    "strict-transport-security": "max-age=31536000; includeSubDomains",
    "content-security-policy": "default-src 'self'; frame-ancestors 'none'",
}
ALLOWED = {
    "access-control-allow-origin": ORIGIN,
    "access-control-allow-credentials": "true",
    "access-control-expose-headers": "x-total",
    "vary": "Origin",
}
PREFLIGHT = {
    "access-control-allow-origin": ORIGIN,
    "access-control-allow-methods": "GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS",
    "access-control-max-age": "600",
    "access-control-allow-credentials": "true",
    "vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
}
NO_CORS = ("access-control-allow-origin", "access-control-allow-credentials",
           "access-control-expose-headers", "access-control-allow-methods")  # fmt: skip


def problem(detail: str, path: str) -> dict[str, object]:
    return {"type": "about:blank", "title": "Forbidden", "status": 403, "detail": detail,
            "instance": path}  # fmt: skip


CASES = [
    # (name, method, path, headers, body, status, expected body, expected headers, absent)
    ("preflight, path without an OPTIONS route", "OPTIONS", "/items", asks("PUT", "x-token"), None,
     204, b"", {**PREFLIGHT, "access-control-allow-headers": "x-token"}, ()),
    ("preflight, unknown path", "OPTIONS", "/nowhere", asks("GET"), None, 204, b"",
     {**PREFLIGHT, "access-control-allow-headers": "x-token"}, ()),
    ("preflight, mounted app's path", "OPTIONS", "/legacy/hello", asks("POST", "content-type"),
     None, 204, b"", {**PREFLIGHT, "access-control-allow-headers": "content-type"}, ()),
    ("preflight, origin refused", "OPTIONS", "/items",
     asks("GET", origin="https://example.com.evil"), None, 403,
     problem("CORS origin not allowed", "/items"),
     {"content-type": "application/problem+json"}, NO_CORS),
    ("preflight, lookalike origin refused", "OPTIONS", "/items",
     asks("GET", origin="https://evil.example.com.attacker.net"), None, 403,
     problem("CORS origin not allowed", "/items"), {}, NO_CORS),
    ("preflight, null origin refused", "OPTIONS", "/items", asks("GET", origin="null"), None, 403,
     problem("CORS origin not allowed", "/items"), {}, NO_CORS),
    ("preflight, method refused", "OPTIONS", "/items", asks("PROPFIND"), None, 403,
     problem("CORS method not allowed: PROPFIND", "/items"), {}, NO_CORS),
    ("preflight, header refused", "OPTIONS", "/legacy/hello", asks("GET", "x-token, x-admin"),
     None, 403, problem("CORS header not allowed: x-admin", "/legacy/hello"), {}, NO_CORS),
    ("OPTIONS without a requested method is routed", "OPTIONS", "/ping", FROM, None, 200,
     {"options": True}, {**ALLOWED, **SECURITY}, ("access-control-allow-methods",)),
    ("handler", "GET", "/items", FROM, None, 200, {"items": [1, 2]}, {**ALLOWED, **SECURITY}, ()),
    ("handler, POST", "POST", "/items", FROM, b"abc", 201, {"size": 3}, {**ALLOWED, **SECURITY},
     ()),
    ("framework 404", "GET", "/nowhere", FROM, None, 404, None, {**ALLOWED, **SECURITY}, ()),
    ("framework 405", "PUT", "/items", FROM, None, 405, None,
     {**ALLOWED, **SECURITY, "allow": "GET, HEAD, POST"}, ()),
    ("framework 413", "POST", "/items", FROM, b"x" * 17, 413, None, {**ALLOWED, **SECURITY}, ()),
    ("mounted Starlette app", "GET", "/legacy/hello", FROM, None, 200,
     {"starlette": "/legacy/hello"}, {**ALLOWED, **SECURITY}, ()),
    ("mounted Starlette app's 404", "GET", "/legacy/nowhere", FROM, None, 404, b"Not Found",
     {**ALLOWED, **SECURITY}, ()),
    ("mounted app's own headers win and its Vary is extended", "GET", "/legacy/framed", FROM,
     None, 200, b"framed",
     {**ALLOWED, **SECURITY, "x-frame-options": "SAMEORIGIN", "vary": "Cookie, Origin"}, ()),
    ("origin refused on an actual request", "GET", "/items",
     [("origin", "https://example.com.evil")], None, 200, {"items": [1, 2]},
     {**SECURITY, "vary": "Origin"}, NO_CORS),
    ("no origin", "GET", "/items", [], None, 200, {"items": [1, 2]},
     {**SECURITY, "vary": "Origin"}, NO_CORS),
]  # fmt: skip


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors, case):
    name, method, path, headers, body, status, expected, expected_headers, absent = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, body)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        if isinstance(expected, bytes):
            assert observed.body == expected, door_name
        elif expected is not None:
            assert json.loads(observed.body) == expected, door_name
        seen: dict[str, list[str]] = {}
        for header, value in observed.headers:
            seen.setdefault(header, []).append(value)
        for header, value in expected_headers.items():
            assert seen.get(header) == [value], f"{door_name}: {header} {seen.get(header)!r}"
        for header in absent:
            assert header not in seen, f"{door_name}: {header} {seen[header]!r}"
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"
