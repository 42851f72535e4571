"""Request-body limits: the app's (``enable_body_limit``) and a route's own
(``body_limit=``), which replaces it up or down, in both doors, whether the
body declares its length or arrives in chunks."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cello import App, Blueprint
from cello.testing import TestClient
from tests.live import LiveServer


@pytest.fixture(scope="module")
def limits_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.limits:app", "--env", "production") as live:
        yield live


@pytest.fixture
def client(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    if door == "native":
        server: LiveServer = request.getfixturevalue("limits_server")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            yield c
    else:
        from tests.apps.limits import app

        with TestClient(app) as c:
            yield c


def chunks(size: int, piece: int = 100) -> Iterator[bytes]:
    """A body with no Content-Length: the limit applies while it is read."""
    while size > 0:
        yield b"x" * min(piece, size)
        size -= piece


CASES = [
    # (method, path, limit)
    ("POST", "/default", 32),
    ("POST", "/upload", 1024),
    ("POST", "/upload-async", 1024),
    ("POST", "/small", 4),
    ("PUT", "/small", 4),
    ("PUT", "/files/blob", 2048),
]


@pytest.mark.parametrize(("method", "path", "limit"), CASES)
@pytest.mark.parametrize("chunked", [False, True], ids=["declared", "chunked"])
def test_each_route_takes_up_to_its_limit_and_refuses_one_byte_more(
    client, method, path, limit, chunked
):
    def body(size: int) -> bytes | Iterator[bytes]:
        return chunks(size) if chunked else b"x" * size

    taken = client.request(method, path, content=body(limit))
    assert taken.status_code == 200, taken.text
    assert taken.json() == {"size": limit}

    refused = client.request(method, path, content=body(limit + 1))
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["detail"] == f"request body exceeds the limit of {limit} bytes"


def test_the_connection_is_still_usable_after_a_declared_oversize_body(limits_server):
    with httpx.Client(base_url=limits_server.url, timeout=10) as c:
        assert c.post("/small", content=b"x" * 5000).status_code == 413
        assert c.post("/small", content=b"xy").json() == {"size": 2}


@pytest.mark.parametrize("bad", [-1, 1.5, "10", True])
def test_a_bad_route_limit_is_a_value_error_naming_it(bad):
    app = App()
    with pytest.raises(ValueError, match="body_limit must be a non-negative number of bytes"):
        app.post("/x", body_limit=bad)
    with pytest.raises(ValueError, match="body_limit"):
        Blueprint("/b").put("/x", body_limit=bad)


@pytest.mark.parametrize("bad", [None, -5, "1mb"])
def test_a_bad_app_limit_is_a_value_error_naming_it(bad):
    with pytest.raises(ValueError, match="max_size must be a non-negative number of bytes"):
        App().enable_body_limit(bad)


def test_routes_list_their_limit():
    from tests.apps.limits import app

    limits = {(r.method, r.path): r.body_limit for r in app.routes}
    assert limits[("POST", "/upload")] == 1024
    assert limits[("POST", "/default")] is None
    assert limits[("PUT", "/files/blob")] == 2048
