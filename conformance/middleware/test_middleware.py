"""The middleware chain through every door: native layers (request ID),
Python middleware, exception handlers for the framework's own refusals, a
blueprint's hooks, and a mounted FastAPI app. A request that sends its own
``X-Request-ID`` gets the same bytes from every door."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator

import pytest

from conformance.doors import Door, _LiveDoor, comparable, started_doors

APP = "conformance.middleware.app:app"
ID = [("x-request-id", "conformance-1")]


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


CASES = [
    # (name, method, path, headers, body, status, expected JSON body, expected headers)
    ("handler", "GET", "/", ID, None, 200, {"request_id": "conformance-1"},
     {"x-request-id": "conformance-1", "x-stamp": "GET 200"}),
    ("404 through its exception handler", "GET", "/nope", ID, None, 404,
     {"missing": "/nope", "request_id": "conformance-1"},
     {"x-request-id": "conformance-1", "x-stamp": "GET 404"}),
    ("405 through the HTTPException handler", "DELETE", "/", ID, None, 405,
     {"status": 405, "detail": "DELETE is not allowed on /"},
     {"allow": "GET, HEAD", "x-request-id": "conformance-1", "x-stamp": "DELETE 405"}),
    ("413 through the HTTPException handler", "POST", "/echo", ID, b"x" * 65, 413,
     {"status": 413, "detail": "request body exceeds the limit of 64 bytes"},
     {"x-request-id": "conformance-1", "x-stamp": "POST 413"}),
    ("body under the limit", "POST", "/echo", ID, b"x" * 64, 200, {"size": 64},
     {"x-stamp": "POST 200"}),
    ("a route's own limit above the app's", "POST", "/upload", ID, b"x" * 128, 200,
     {"size": 128}, {"x-stamp": "POST 200"}),
    ("over a route's own limit", "POST", "/upload", ID, b"x" * 129, 413,
     {"status": 413, "detail": "request body exceeds the limit of 128 bytes"},
     {"x-request-id": "conformance-1"}),
    ("over a route's own limit below the app's", "PUT", "/tiny", ID, b"x" * 9, 413,
     {"status": 413, "detail": "request body exceeds the limit of 8 bytes"},
     {"x-request-id": "conformance-1"}),
    ("handler's HTTPException", "GET", "/teapot", ID, None, 418,
     {"status": 418, "detail": "short and stout"}, {"x-request-id": "conformance-1"}),
    ("blueprint hook refuses", "GET", "/admin/panel", ID, None, 403,
     {"denied": "/admin/panel"}, {"x-stamp": "GET 403"}),
    ("blueprint hook admits", "GET", "/admin/panel", [*ID, ("x-token", "letmein")], None, 200,
     {"panel": True}, {"x-stamp": "GET 200"}),
    ("blueprint hook covers unknown paths below it", "GET", "/admin/nope", ID, None, 403,
     {"denied": "/admin/nope"}, {}),
    ("mounted FastAPI sees and answers with the ID", "GET", "/legacy/id", ID, None, 200,
     {"seen": "conformance-1"}, {"x-request-id": "conformance-1"}),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_answers_alike(doors, case):
    name, method, path, headers, body, status, expected, expected_headers = case
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, body)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        assert json.loads(observed.body) == expected, door_name
        seen = dict(observed.headers)
        for header, value in expected_headers.items():
            assert seen.get(header) == value, f"{door_name}: {header} {seen.get(header)!r}"
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


@pytest.mark.parametrize("path", ["/", "/nope", "/legacy/id"])
def test_without_an_incoming_id_each_door_makes_a_uuid4(doors, path):
    for door_name, door in doors.items():
        observed = door.send("GET", path, [], None)
        made = dict(observed.headers)["x-request-id"]
        assert uuid.UUID(made).version == 4, door_name
        body = json.loads(observed.body)
        # The handler, the 404's exception handler and the mounted app all
        # saw the ID the response carries.
        assert made in (body.get("request_id"), body.get("seen")), (door_name, body)


class ServeDoor(_LiveDoor):
    """``cello serve --request-id`` hosting the FastAPI app on its own."""

    name = "cello-serve"

    def command(self, port: int) -> list[str]:
        target = "conformance.middleware.app:legacy"
        return [sys.executable, "-m", "cello", "serve", target, "--port", str(port),
                "--no-logs", "--env", "production", "--request-id"]  # fmt: skip


def test_cello_serve_gives_a_hosted_app_request_ids():
    door = ServeDoor("")
    door.start()
    try:
        kept = door.send("GET", "/id", ID, None)
        assert kept.status == 200
        assert json.loads(kept.body) == {"seen": "conformance-1"}
        assert dict(kept.headers)["x-request-id"] == "conformance-1"
        made = door.send("GET", "/id", [], None)
        made_id = dict(made.headers)["x-request-id"]
        assert uuid.UUID(made_id).version == 4
        assert json.loads(made.body) == {"seen": made_id}
        # FastAPI's own 404 carries one too.
        assert "x-request-id" in dict(door.send("GET", "/nope", [], None).headers)
    finally:
        door.stop()


@pytest.mark.parametrize("path", ["/", "/legacy/id"])
def test_a_bad_host_is_refused_before_middleware_and_mounted_apps(doors, path):
    for door_name, door in doors.items():
        observed = door.send("GET", path, [("host", "bad host")], None)
        assert observed.status == 400, door_name
        body = json.loads(observed.body)
        assert body["status"] == 400 and body["instance"] == path, door_name
        headers = dict(observed.headers)
        assert headers["content-type"] == "application/problem+json", door_name
        # Middleware never saw it: no request ID, no stamp.
        assert "x-request-id" not in headers and "x-stamp" not in headers, door_name
