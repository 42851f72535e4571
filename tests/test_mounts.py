"""Mounted ASGI apps, through both doors: natively hosted (door 3) and
passed through when the Cello app itself runs under an ASGI server (door 2)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from cello import App
from cello.testing import TestClient
from conformance.doors import pipelined
from tests.live import ROOT, LiveServer


@pytest.fixture(params=["native", "asgi"])
def mounted(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "native":
        with LiveServer("tests.apps.mounted:app", "--env", "production") as live:
            with httpx.Client(base_url=live.url, headers={"host": "testserver"}) as client:
                yield client
    else:
        from tests.apps.mounted import app

        with TestClient(app) as client:
            yield client


def test_cello_routes_and_mounted_apps_side_by_side(mounted):
    assert mounted.get("/").json() == {"framework": "cello"}
    assert mounted.get("/legacy-sibling").json() == {"sibling": True}
    assert mounted.get("/legacy/").json() == {"framework": "fastapi"}
    assert mounted.get("/legacy/items/5?q=x").json() == {"item_id": 5, "q": "x", "limit": 10}


def test_mounted_app_sees_full_path_and_extended_root_path(mounted):
    response = mounted.get("/raw/a/b")
    assert response.text == "/raw/a/b"
    assert response.headers["x-root"] == "/raw"
    if not isinstance(mounted, TestClient):  # Cello's server runs the app in a Task of its own
        assert response.headers["x-task"] == "mount /raw"
    assert mounted.get("/legacy/url").json() == {
        "url_for": "http://testserver/legacy/items/3",
        "root_path": "/legacy",
        "path": "/legacy/url",
    }


def test_mounted_app_lifespan_ran_and_state_is_shared(mounted):
    assert mounted.get("/legacy/state").json() == {"db": "connected", "started": 1}


def test_mounted_fastapi_features(mounted):
    created = mounted.post("/legacy/items", json={"name": "a", "price": 2})
    assert created.json() == {"created": {"name": "a", "price": 2.0, "tags": []}}
    assert mounted.post("/legacy/items", json={"name": "a"}).status_code == 422
    assert mounted.get("/legacy/stream").text == "part0;part1;part2;"
    assert mounted.get("/legacy/teapot").status_code == 418
    assert "/legacy/openapi.json" in mounted.get("/legacy/docs").text


@pytest.fixture(scope="module")
def hosting() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.mounted:app", "--env", "production") as live:
        yield live


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("longer", "Response content longer than Content-Length"),
        ("longer-streamed", "Response content longer than Content-Length"),
        ("shorter", "Response content shorter than Content-Length"),
        ("shorter-streamed", "Response content shorter than Content-Length"),
    ],
)
def test_mounted_body_that_breaks_its_content_length_closes_the_connection(hosting, case, error):
    received, closed = pipelined(
        hosting.port,
        f"GET /protocol/length/{case} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    # One incomplete response, then the connection closes: neither the
    # surplus nor the next response is read as a response of its own.
    assert closed, received
    assert b"injected" not in received
    assert b"cello" not in received, "the next request was answered on this connection"
    assert httpx.get(hosting.url + "/protocol/record").json()[f"length-{case}"] == error


def test_an_app_raising_because_its_client_left_is_not_logged_as_an_error(hosting):
    with socket.create_connection(("127.0.0.1", hosting.port), timeout=10) as sock:
        sock.sendall(b"GET /protocol/raise-when-left HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"tick;" not in received:
            received += sock.recv(4096)
    for _ in range(250):
        if httpx.get(hosting.url + "/protocol/record").json().get("raised_when_left"):
            break
        time.sleep(0.02)
    assert httpx.get(hosting.url + "/protocol/record").json()["raised_when_left"] is True
    # A genuine failure is still logged, so the log is read after one.
    with pytest.raises(httpx.RemoteProtocolError):
        httpx.get(hosting.url + "/protocol/raise-after")
    for _ in range(250):
        if "/protocol/raise-after" in hosting.stderr():
            break
        time.sleep(0.02)
    assert "Exception in ASGI application for GET /protocol/raise-after" in hosting.stderr()
    assert "/protocol/raise-when-left" not in hosting.stderr()


def test_mount_validation():
    app = App()
    with pytest.raises(TypeError, match="ASGI application"):
        app.mount("/x", "not an app")
    with pytest.raises(ValueError, match="must start with '/'"):
        app.mount("x", lambda s, r, se: None)
    with pytest.raises(ValueError, match="cannot contain parameters"):
        app.mount("/{x}", lambda s, r, se: None)


def test_cello_serve_root_path():
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cello",
            "serve",
            "tests.apps.mounted:raw_asgi",
            "--port",
            "0",
            "--root-path",
            "/api",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split("running on ", 1)[1].split()[0]
            response = httpx.get(url + "/x/y")
            assert response.text == "/api/x/y"
            assert response.headers["x-root"] == "/api"
            assert response.headers["x-task"] == "mount /"
        finally:
            process.terminate()
            process.wait(30)


def test_system_exit_from_a_hosted_app_is_a_500_not_an_exit():
    # As under uvicorn: one call's exception is that call's, not the server's.
    with LiveServer("tests.apps.mounted:app", "--env", "production") as live:
        assert httpx.get(live.url + "/exits/now").status_code == 500
        assert httpx.get(live.url + "/").json() == {"framework": "cello"}
        assert "Exception in ASGI application" in live.stderr()
        assert live.process.poll() is None
