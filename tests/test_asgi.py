"""Cello as an ASGI application (door 2): under real ASGI servers, under
Starlette's TestClient, lifespan, root_path, body limits, disconnects and
streaming at the message level."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
import warnings

import httpx
import pytest

from cello import App, Response
from cello.testing import AsyncClient, LifespanError, TestClient
from examples.hello import app as hello_app
from tests.apps.core import app as core_app
from tests.live import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVERS = {
    "uvicorn": lambda port: [sys.executable, "-m", "uvicorn", "examples.hello:app",
                             "--port", str(port), "--log-level", "warning"],
    "hypercorn": lambda port: [sys.executable, "-m", "hypercorn", "examples.hello:app",
                               "--bind", f"127.0.0.1:{port}"],
    "granian": lambda port: [sys.executable, "-m", "granian", "--interface", "asgi",
                             "--port", str(port), "--log-level", "warning", "examples.hello:app"],
}  # fmt: skip


@pytest.mark.parametrize("server", sorted(SERVERS))
def test_runs_under_asgi_servers(server):
    port = free_port()
    with subprocess.Popen(
        SERVERS[server](port), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as process:
        try:
            for _ in range(300):
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                    break
                except httpx.TransportError:
                    assert process.poll() is None, f"{server} exited"
                    time.sleep(0.05)
            assert response.json() == {"message": "Hello, World!"}
            hello = httpx.get(f"http://127.0.0.1:{port}/hello/Ada").json()
            assert hello == {"message": "Hello, Ada!"}
            assert httpx.get(f"http://127.0.0.1:{port}/nope").status_code == 404
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_uvicorn_reports_failed_startup_hooks():
    result = subprocess.run(
        [sys.executable, "-m", "uvicorn", "tests.apps.badstart:app", "--port", str(free_port())],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "RuntimeError: database unreachable" in result.stderr


def test_starlette_test_client():
    with warnings.catch_warnings():
        # Newer Starlette prefers the httpx2 package and warns when using httpx.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient as StarletteClient

    with StarletteClient(core_app) as client:
        assert client.get("/users/7").json() == {"route": "user", "id": "7"}
        assert client.post("/json", json={"a": 1}).json() == {"received": {"a": 1}}


def test_lifespan_runs_hooks_once(tmp_path):
    from tests.apps import hooks

    hooks.events.clear()
    with TestClient(hooks.app) as client:
        assert client.get("/events").json() == ["startup-sync", "startup-async"]
    assert hooks.events == ["startup-sync", "startup-async"]


def test_lifespan_startup_failure_is_reported():
    from tests.apps.badstart import app

    with pytest.raises(LifespanError, match="RuntimeError: database unreachable"):
        with TestClient(app):
            pass


def test_async_client_helper():
    async def main() -> dict:
        async with AsyncClient(hello_app) as client:
            return (await client.get("/hello/Bob")).json()

    assert asyncio.run(main()) == {"message": "Hello, Bob!"}


def test_root_path_is_honoured():
    async def main() -> tuple[int, dict]:
        transport = httpx.ASGITransport(app=core_app, root_path="/prefix")
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            mounted = await client.get("/prefix/users/3")
            return mounted.status_code, mounted.json()

    assert asyncio.run(main()) == (200, {"route": "user", "id": "3"})


async def call(app, scope_overrides: dict, messages: list[dict]) -> list[dict]:
    """Drives one ASGI http call by hand; returns what the app sent."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"", "root_path": "",
        "headers": [(b"host", b"t")], "client": ("127.0.0.1", 1234), "server": ("127.0.0.1", 80),
    } | scope_overrides  # fmt: skip
    inbox = list(messages) or [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict] = []

    async def receive() -> dict:
        if inbox:
            return inbox.pop(0)
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    async def send(message: dict) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def test_body_is_read_across_messages():
    messages = [
        {"type": "http.request", "body": b'{"a":', "more_body": True},
        {"type": "http.request", "body": b" 1}", "more_body": False},
    ]
    sent = asyncio.run(call(core_app, {"method": "POST", "path": "/json"}, messages))
    assert sent[0]["status"] == 200
    assert sent[1]["body"] == b'{"received":{"a":1}}'


def test_body_over_the_limit_is_413_as_it_arrives():
    app = App()
    app._core.max_body_size = 10

    @app.post("/")
    def index(request):
        return {"never": True}

    messages = [{"type": "http.request", "body": b"x" * 8, "more_body": True}] * 2
    sent = asyncio.run(call(app, {"method": "POST"}, messages))
    assert sent[0]["status"] == 413
    assert (b"connection", b"close") in sent[0]["headers"]


def test_disconnect_while_reading_body_sends_nothing():
    messages = [
        {"type": "http.request", "body": b"{", "more_body": True},
        {"type": "http.disconnect"},
    ]
    assert asyncio.run(call(core_app, {"method": "POST", "path": "/json"}, messages)) == []


def test_streaming_sends_several_body_messages():
    sent = asyncio.run(call(core_app, {"path": "/resp/stream-async"}, []))
    bodies = [m for m in sent if m["type"] == "http.response.body"]
    assert [m["body"] for m in bodies] == [b"a0;", b"a1;", b"a2;", b""]
    assert [m["more_body"] for m in bodies] == [True, True, True, False]


def test_streaming_stops_when_the_client_is_gone():
    app = App()
    produced = []

    @app.get("/")
    def endless(request):
        async def chunks():
            for i in range(1000):
                produced.append(i)
                yield b"x"

        return Response.stream(chunks())

    async def main() -> None:
        scope = {"type": "http", "method": "GET", "path": "/", "headers": [(b"host", b"t")],
                 "query_string": b"", "root_path": ""}  # fmt: skip

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        sends = 0

        async def send(message: dict) -> None:
            nonlocal sends
            sends += 1
            if sends > 3:
                raise OSError("client went away")

        await app(scope, receive, send)

    asyncio.run(main())
    assert len(produced) < 10


def test_head_through_asgi_has_length_but_no_body():
    sent = asyncio.run(call(core_app, {"method": "HEAD", "path": "/"}, []))
    assert (b"content-length", b"27") in sent[0]["headers"]
    assert sent[1]["body"] == b""


def test_websocket_scopes_are_refused_and_unknown_scopes_raise():
    async def websocket() -> list[dict]:
        sent: list[dict] = []

        async def receive() -> dict:
            return {"type": "websocket.connect"}

        async def send(message: dict) -> None:
            sent.append(message)

        await core_app({"type": "websocket", "path": "/"}, receive, send)
        return sent

    assert asyncio.run(websocket()) == [{"type": "websocket.close", "code": 1000}]
    with pytest.raises(ValueError, match="cannot handle ASGI scope type 'ftp'"):
        asyncio.run(core_app({"type": "ftp"}, None, None))


def test_debug_flag_shows_tracebacks_in_asgi_too():
    app = App()

    @app.get("/")
    def boom(request):
        raise RuntimeError("kaboom")

    app.debug = True
    with TestClient(app) as client:
        body = client.get("/").json()
    assert body["detail"] == "RuntimeError: kaboom"
    assert "Traceback" in body["traceback"]
