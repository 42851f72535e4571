"""Authentication through every door: the same 401 problems and
challenges for missing, expired, forged and unsigned tokens, wrong API keys
and bad Basic credentials, and the same answers when credentials are good."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors
from conformance.middleware.auth_app import EXPIRED, FORGED, NONE, VALID

APP = "conformance.middleware.auth_app:app"
BEARER = 'Bearer error="invalid_token"'


def problem(detail: str, path: str) -> dict[str, object]:
    return {"type": "about:blank", "title": "Unauthorized", "status": 401, "detail": detail,
            "instance": path}  # fmt: skip


def basic(credentials: str) -> list[tuple[str, str]]:
    return [("authorization", "Basic " + base64.b64encode(credentials.encode()).decode())]


CASES = [
    # (name, path, headers, status, body, www-authenticate)
    ("valid token", "/jwt/me", [("authorization", f"Bearer {VALID}")], 200,
     {"user": {"sub": "alice", "roles": ["admin"], "exp": 4102444800}}, None),
    ("missing token", "/jwt/me", [], 401, problem("Missing authentication token", "/jwt/me"),
     "Bearer"),
    ("unknown path still needs a token", "/jwt/nowhere", [], 401,
     problem("Missing authentication token", "/jwt/nowhere"), "Bearer"),
    ("expired token", "/jwt/me", [("authorization", f"Bearer {EXPIRED}")], 401,
     problem("Token has expired", "/jwt/me"), BEARER),
    ("forged token", "/jwt/me", [("authorization", f"Bearer {FORGED}")], 401,
     problem("Invalid token signature", "/jwt/me"), BEARER),
    ("alg none", "/jwt/me", [("authorization", f"Bearer {NONE}")], 401,
     problem("Token algorithm not allowed", "/jwt/me"), BEARER),
    ("malformed token", "/jwt/me", [("authorization", "Bearer abc")], 401,
     problem("Malformed token", "/jwt/me"), BEARER),
    ("skipped path", "/jwt/login", [], 200, {"login": True}, None),
    ("api key", "/key/me", [("x-api-key", "conformance-key")], 200,
     {"user": {"name": "robot"}}, None),
    ("missing api key", "/key/me", [], 401, problem("Missing API key", "/key/me"),
     'ApiKey header="x-api-key"'),
    ("wrong api key", "/key/me", [("x-api-key", "conformance-kez")], 401,
     problem("Invalid API key", "/key/me"), 'ApiKey header="x-api-key"'),
    ("basic", "/basic/me", basic("ann:pw"), 200, {"user": {"username": "ann"}}, None),
    ("basic, wrong password", "/basic/me", basic("ann:px"), 401,
     problem("Invalid credentials", "/basic/me"), 'Basic realm="Restricted"'),
    ("basic, no colon", "/basic/me", basic("annpw"), 401,
     problem("Malformed credentials", "/basic/me"), 'Basic realm="Restricted"'),
    ("basic, missing", "/basic/me", [], 401, problem("Missing credentials", "/basic/me"),
     'Basic realm="Restricted"'),
]  # fmt: skip


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors, case):
    name, path, headers, status, expected, challenge = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send("GET", path, headers, None)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        assert json.loads(observed.body) == expected, door_name
        seen = [value for header, value in observed.headers if header == "www-authenticate"]
        assert seen == ([challenge] if challenge else []), door_name
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"
