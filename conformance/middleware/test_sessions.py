"""Sessions and CSRF through every door: the session cookie's shape when a
session starts, none when it is only read, the expiring cookie when it is
cleared, a tampered cookie ignored; the CSRF cookie on safe requests and
the 403 problem for unsafe ones without a matching signed token.

Session ids and CSRF tokens are random, so their values are replaced by
placeholders before the doors' answers are compared."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from cello.middleware import CsrfConfig
from cello.middleware.csrf import CsrfMiddleware
from conformance.doors import Door, Observed, comparable, started_doors
from conformance.middleware.sessions_app import CSRF_SECRET

APP = "conformance.middleware.sessions_app:app"
SESSION_VALUE = re.compile(r"^session_id=[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43};")
CSRF_VALUE = re.compile(r"^_csrf=[0-9]+\.[0-9a-f]{32}\.[0-9a-f]{64};")

SESSION_COOKIE = "session_id=<id>; Max-Age=3600; Path=/; Secure; HttpOnly; SameSite=Lax"
EXPIRED_COOKIE = (
    "session_id=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; Secure; "
    "HttpOnly; SameSite=Lax"
)
CSRF_COOKIE = "_csrf=<token>; Path=/; Secure; SameSite=Lax"
TOKEN = CsrfMiddleware(CsrfConfig(secret=CSRF_SECRET)).new_token()
FOREIGN = CsrfMiddleware(CsrfConfig(secret="another secret")).new_token()
FORGED = "session_id=" + "A" * 43 + "." + "B" * 43
FAILED = {"type": "about:blank", "title": "Forbidden", "status": 403,
          "detail": "CSRF token validation failed", "instance": "/submit"}  # fmt: skip
WITH_TOKEN = [("cookie", f"_csrf={TOKEN}")]
# The last hex digit flipped, so it differs from the cookie whatever the random token is.
MISMATCHED = TOKEN[:-1] + ("1" if TOKEN.endswith("0") else "0")

CASES = [
    # (name, method, path, headers, body, status, expected body, expected Set-Cookie, headers)
    ("a new session sets the cookie", "GET", "/visit", WITH_TOKEN, None, 200, {"visits": 1},
     [SESSION_COOKIE], {"vary": "Cookie", "cache-control": "private"}),
    ("a first safe request gets the CSRF cookie", "GET", "/peek", [], None, 200, {"data": {}},
     [CSRF_COOKIE], {}),
    ("an empty session is not kept", "GET", "/peek", WITH_TOKEN, None, 200, {"data": {}}, [], {}),
    ("a tampered session cookie starts afresh", "GET", "/visit",
     [("cookie", f"{FORGED}; _csrf={TOKEN}")], None, 200, {"visits": 1}, [SESSION_COOKIE],
     {"vary": "Cookie"}),
    ("clearing expires the cookie", "POST", "/logout",
     [("cookie", f"{FORGED}; _csrf={TOKEN}"), ("x-csrf-token", TOKEN)], None, 200, {"ok": True},
     [EXPIRED_COOKIE], {"vary": "Cookie"}),
    ("POST without a token", "POST", "/submit", [], b"", 403, FAILED, [],
     {"content-type": "application/problem+json"}),
    ("POST with the cookie only", "POST", "/submit", WITH_TOKEN, b"", 403, FAILED, [], {}),
    ("POST with a token of another secret", "POST", "/submit",
     [("cookie", f"_csrf={FOREIGN}"), ("x-csrf-token", FOREIGN)], b"", 403, FAILED, [], {}),
    ("POST with a token that does not match the cookie", "POST", "/submit",
     [*WITH_TOKEN, ("x-csrf-token", MISMATCHED)], b"", 403, FAILED, [], {}),
    ("POST with the header", "POST", "/submit", [*WITH_TOKEN, ("x-csrf-token", TOKEN)], b"x",
     200, {"ok": True, "form": None}, [], {}),
    ("POST with the form field", "POST", "/submit",
     [*WITH_TOKEN, ("content-type", "application/x-www-form-urlencoded")],
     f"a=1&_csrf={TOKEN}".encode(), 200, {"ok": True, "form": {"a": "1", "_csrf": TOKEN}}, [],
     {}),
    ("an exempt path", "POST", "/hooks/ping", WITH_TOKEN, b"", 200, {"ok": True}, [], {}),
]  # fmt: skip


def normalised(observed: Observed) -> Observed:
    headers = []
    for name, value in observed.headers:
        if name == "set-cookie":
            value = SESSION_VALUE.sub("session_id=<id>;", value)
            value = CSRF_VALUE.sub("_csrf=<token>;", value)
        headers.append((name, value))
    return Observed(observed.status, tuple(headers), observed.body)


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors, case):
    name, method, path, headers, body, status, expected, cookies, expected_headers = case
    answers = {}
    for door_name, door in doors.items():
        door.client.cookies.clear()  # every case brings its own cookies
        observed = normalised(door.send(method, path, headers, body))
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        assert json.loads(observed.body) == expected, door_name
        seen: dict[str, list[str]] = {}
        for header, value in observed.headers:
            seen.setdefault(header, []).append(value)
        assert seen.get("set-cookie", []) == cookies, door_name
        for header, value in expected_headers.items():
            assert seen.get(header) == [value], f"{door_name}: {header} {seen.get(header)!r}"
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"
