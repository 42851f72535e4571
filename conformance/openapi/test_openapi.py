"""OpenAPI through every door: the native server, uvicorn and the
in-process ASGI transport serve the same document, the same Swagger UI and
ReDoc pages, the same offline assets with the same validators and 304s,
and the same refusals around them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.openapi.app:app"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


@pytest.fixture(scope="module")
def bundle_tag(doors) -> str:
    return dict(doors["native"].send("GET", "/docs/static/swagger-ui-bundle.js", [], None).headers)[
        "etag"
    ]


def cases(tag: str) -> list[tuple]:
    # (name, method, path, request headers, status, content type)
    return [
        ("the document", "GET", "/openapi.json", [], 200, "application/json"),
        ("Swagger UI", "GET", "/docs", [], 200, "text/html; charset=utf-8"),
        ("ReDoc", "GET", "/redoc", [], 200, "text/html; charset=utf-8"),
        ("HEAD of a page", "HEAD", "/docs", [], 200, "text/html; charset=utf-8"),
        ("the stylesheet", "GET", "/docs/static/swagger-ui.css", [], 200, CSS),
        ("the Swagger UI bundle", "GET", "/docs/static/swagger-ui-bundle.js", [], 200, JS),
        ("its starter", "GET", "/docs/static/swagger-ui-init.js", [], 200, JS),
        ("the ReDoc bundle", "GET", "/docs/static/redoc.standalone.js", [], 200, JS),
        ("its starter", "GET", "/docs/static/redoc-init.js", [], 200, JS),
        ("a cached bundle", "GET", "/docs/static/swagger-ui-bundle.js",
         [("if-none-match", tag)], 304, None),
        ("a stale bundle", "GET", "/docs/static/swagger-ui-bundle.js",
         [("if-none-match", '"stale"')], 200, JS),
        ("an asset that is not there", "GET", "/docs/static/swagger-ui.js", [], 404,
         "application/problem+json"),
        ("the document is not writable", "POST", "/openapi.json", [], 405,
         "application/problem+json"),
        ("the API still wants its token", "GET", "/notes", [], 401, "application/problem+json"),
    ]  # fmt: skip


NAMES = [c[0] for c in cases('"x"')]


@pytest.mark.parametrize("index", range(len(NAMES)), ids=NAMES)
def test_every_door_answers_alike(doors, bundle_tag, index):
    name, method, path, headers, status, content_type = cases(bundle_tag)[index]
    answers = {}
    for door_name, door in doors.items():
        observed = door.send(method, path, headers, None)
        assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
        seen = dict(observed.headers)
        assert seen.get("content-type") == content_type, door_name
        if path.startswith("/docs/static/") and status in (200, 304):
            assert seen["cache-control"] == IMMUTABLE, door_name
            assert seen["etag"] == bundle_tag or "swagger-ui-bundle" not in path, door_name
        answers[door_name] = comparable(observed, door_name)
    for door_name, observed in answers.items():
        assert observed == answers["native"], f"{door_name} differs from native for {name}"


def test_the_document_describes_the_api_in_every_door(doors):
    documents = {
        name: json.loads(door.send("GET", "/openapi.json", [], None).body)
        for name, door in doors.items()
    }
    document = documents["native"]
    assert all(d == document for d in documents.values())
    assert document["openapi"] == "3.1.0"
    assert list(document["paths"]) == ["/notes", "/notes/{note_id}", "/admin/notes/{note_id}"]
    assert document["components"]["securitySchemes"] == {
        "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert document["tags"] == [{"name": "notes"}, {"name": "admin"}]
