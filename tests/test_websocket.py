"""WebSocket routes (``@app.websocket``), through every door.

The app is tests/apps/websocket.py. ``live`` serves it on an ephemeral port
under uvicorn and hypercorn (door 2, real sockets, the ``websockets``
client) and natively (door 1, once the native server speaks WebSocket:
``cello._server.supports_websocket()``); ``cello.testing`` drives it in
process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

import cello
from cello import App, WebSocket, WebSocketDisconnect, WebSocketMessage
from cello._server import supports_websocket
from cello.testing import TestClient, WebSocketDenialResponse
from cello.websocket import Rooms
from tests.apps.websocket import app as ws_app
from tests.live import LiveServer

ROOT = Path(__file__).resolve().parent.parent
TARGET = "tests.apps.websocket:app"

_URL = re.compile(r"(?:running on|Running on) (http://127\.0\.0\.1:\d+)", re.IGNORECASE)


class _AsgiServer:
    """``TARGET`` under an ASGI server in a subprocess, on an ephemeral port."""

    def __init__(self, command: list[str]) -> None:
        self.command = command
        self.url = ""
        self.log = tempfile.NamedTemporaryFile(prefix="cello-ws-", delete=False)
        self.process: subprocess.Popen[str] | None = None

    def __enter__(self) -> _AsgiServer:
        self.process = subprocess.Popen(
            self.command,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        found = threading.Event()

        def read() -> None:
            assert self.process is not None and self.process.stdout is not None
            for line in self.process.stdout:
                self.log.write(line.encode())
                self.log.flush()
                match = _URL.search(line)
                if match and not found.is_set():
                    self.url = match.group(1)
                    found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(30):
            self.__exit__()
            raise RuntimeError(f"{self.command[2]} did not start:\n{self.output()}")
        return self

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stdout is not None:
            self.process.stdout.close()
        self.log.close()
        os.unlink(self.log.name)


def _uvicorn() -> _AsgiServer:
    return _AsgiServer(
        [sys.executable, "-m", "uvicorn", TARGET, "--host", "127.0.0.1", "--port", "0",
         "--ws", "websockets", "--log-level", "info"]
    )  # fmt: skip


def _hypercorn() -> _AsgiServer:
    return _AsgiServer(
        [sys.executable, "-m", "hypercorn", TARGET, "--bind", "127.0.0.1:0",
         "--log-level", "info", "--access-logfile", "-"]
    )  # fmt: skip


# The server behind each live URL.
DOORS: dict[str, str] = {}

native_ready = pytest.mark.skipif(
    not supports_websocket(),
    reason="the native server does not speak WebSocket yet (cello._server.supports_websocket())",
)


@pytest.fixture(
    scope="module",
    params=["uvicorn", "hypercorn", pytest.param("native", marks=native_ready)],
)
def live(request: pytest.FixtureRequest) -> Iterator[str]:
    """The base ``http://`` URL of the test app served through one door."""
    if request.param == "native":
        with LiveServer(TARGET, "--env", "production") as server:
            DOORS[server.url] = "native"
            yield server.url
        return
    with _uvicorn() if request.param == "uvicorn" else _hypercorn() as server:
        DOORS[server.url] = request.param
        yield server.url


def ws_url(base: str, path: str) -> str:
    return base.replace("http://", "ws://", 1) + path


def open_ws(base: str, path: str, **kwargs: Any) -> ClientConnection:
    return connect(ws_url(base, path), open_timeout=10, close_timeout=5, **kwargs)


def wait_for_event(base: str, predicate: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """The first event of ``GET /events`` that ``predicate`` accepts, once
    the handler has recorded it (polled, for at most ~10 s)."""
    for _ in range(200):
        events = httpx.get(base + "/events", timeout=5).json()
        for event in events:
            if predicate(event):
                return event  # type: ignore[no-any-return]
        time.sleep(0.05)
    raise AssertionError(f"no matching event in {events}")


# -- live servers --------------------------------------------------------------


def test_echo_text_and_bytes_async(live: str) -> None:
    with open_ws(live, "/echo") as ws:
        ws.send("hello")
        assert ws.recv() == "hello"
        ws.send(b"\x00\x01bin")
        assert ws.recv() == b"\x00\x01bin"
        ws.send("é ünïcode ✓")
        assert ws.recv() == "é ünïcode ✓"


def test_echo_sync_handler(live: str) -> None:
    with open_ws(live, "/echo-sync") as ws:
        for i in range(5):
            ws.send(f"m{i}")
            assert ws.recv() == f"m{i}"
        ws.send(b"bytes")
        assert ws.recv() == b"bytes"


def test_json_round_trip(live: str) -> None:
    with open_ws(live, "/json") as ws:
        ws.send(json.dumps({"a": [1, 2, {"b": None}]}))
        assert json.loads(ws.recv()) == {"got": {"a": [1, 2, {"b": None}]}}


def test_documented_chat_broadcasts_to_the_others(live: str) -> None:
    with open_ws(live, "/ws/chat") as alice, open_ws(live, "/ws/chat") as bob:
        assert alice.recv() == "Welcome!"
        assert bob.recv() == "Welcome!"
        alice.send("hi bob")
        assert bob.recv() == "User: hi bob"
        bob.send("hi alice")
        assert alice.recv() == "User: hi alice"
    # Clients that left are out of the set: the next ones chat unharmed.
    with open_ws(live, "/ws/chat") as carol:
        assert carol.recv() == "Welcome!"
        with open_ws(live, "/ws/chat") as dave:
            assert dave.recv() == "Welcome!"
            carol.send("now?")
            assert dave.recv() == "User: now?"


def test_path_params_query_and_request(live: str) -> None:
    with open_ws(live, "/items/42?q=find", additional_headers={"X-Hello": "there"}) as ws:
        data = json.loads(ws.recv())
        assert data == {
            "item_id": 42,
            "type": "int",
            "q": "find",
            "path": "/items/42",
            "params": {"item_id": "42"},
            "header": "there",
        }
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000


def test_path_converter_mismatch_is_404(live: str) -> None:
    with pytest.raises(InvalidStatus) as denied:
        open_ws(live, "/items/abc")
    assert denied.value.response.status_code == 404


def test_unknown_path_is_denied_with_a_404_problem(live: str) -> None:
    with pytest.raises(InvalidStatus) as denied:
        open_ws(live, "/nowhere")
    response = denied.value.response
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.body)["status"] == 404


def test_http_route_is_not_a_websocket_route(live: str) -> None:
    with pytest.raises(InvalidStatus) as denied:
        open_ws(live, "/plain")
    assert denied.value.response.status_code == 404
    # ...and a WebSocket route is not an HTTP route.
    assert httpx.get(live + "/echo", timeout=5).status_code == 404


def test_depends(live: str) -> None:
    with open_ws(live, "/deps?tag=x", additional_headers={"X-User": "ann"}) as ws:
        assert json.loads(ws.recv()) == {"db": {"name": "test-db"}, "user": "ann", "tag": "x"}


def test_guard_denials(live: str) -> None:
    with pytest.raises(InvalidStatus) as denied:
        open_ws(live, "/guarded")
    response = denied.value.response
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert json.loads(response.body)["detail"] == "a token is required"
    with pytest.raises(InvalidStatus) as denied:
        open_ws(live, "/guarded", additional_headers={"X-Token": "nope"})
    assert denied.value.response.status_code == 403
    assert json.loads(denied.value.response.body)["detail"] == "wrong token"
    with open_ws(live, "/guarded", additional_headers={"X-Token": "secret"}) as ws:
        assert ws.recv() == "welcome"


def test_subprotocol(live: str) -> None:
    with open_ws(live, "/proto", subprotocols=["chat.v1", "chat.v2"]) as ws:
        assert ws.subprotocol == "chat.v2"
        assert ws.recv() == "chat.v2"
    with open_ws(live, "/proto") as ws:
        assert ws.subprotocol is None
        assert ws.recv() == "none"


def test_server_close_code_and_reason(live: str) -> None:
    with open_ws(live, "/close") as ws:
        ws.send("ann")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye ann")


def test_client_close_surfaces_as_none_from_recv(live: str) -> None:
    with open_ws(live, "/observe-recv") as ws:
        assert ws.recv() == "ready"
        ws.close(code=4002, reason="leaving")
    event = wait_for_event(live, lambda e: e.get("route") == "recv")
    # hypercorn's websocket.disconnect carries neither the client's code
    # (always 1006 for a client close) nor a reason.
    hypercorn = DOORS[live] == "hypercorn"
    assert event == {
        "route": "recv",
        "message": None,
        "code": 1006 if hypercorn else 4002,
        "reason": "" if hypercorn else "leaving",
        "connected": False,
    }


def test_client_close_surfaces_as_disconnect_from_receive_text(live: str) -> None:
    with open_ws(live, "/observe-receive-text") as ws:
        assert ws.recv() == "ready"
        ws.close(code=4003)
    event = wait_for_event(live, lambda e: e.get("route") == "receive_text")
    assert event["code"] == (1006 if DOORS[live] == "hypercorn" else 4003)


@pytest.mark.parametrize("path", ["/boom", "/boom-sync"])
def test_handler_exception_closes_with_1011(live: str, path: str) -> None:
    with open_ws(live, path) as ws:
        if path == "/boom":
            assert ws.recv() == "about to fail"
        else:
            ws.send("go")
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1011


def test_rooms_broadcast_across_sync_and_async_handlers(live: str) -> None:
    with (
        open_ws(live, "/rooms/lobby") as a,
        open_ws(live, "/rooms/lobby") as b,
        open_ws(live, "/rooms-sync/lobby") as s,
        open_ws(live, "/rooms/other") as other,
    ):
        for ws in (a, b, s, other):
            assert ws.recv() == "joined"
        a.send("from a")
        assert b.recv() == "from a"
        assert s.recv() == "from a"
        assert json.loads(a.recv()) == {"reached": 2}
        # A sync handler broadcasting (JSON) to async handlers' sockets.
        s.send("from s")
        assert json.loads(a.recv()) == {"from": "sync", "text": "from s"}
        assert json.loads(b.recv()) == {"from": "sync", "text": "from s"}
        assert json.loads(s.recv()) == {"reached": 2}
        other.send("alone")
        assert json.loads(other.recv()) == {"reached": 0}


def test_rooms_dead_member_does_not_break_the_broadcast(live: str) -> None:
    with open_ws(live, "/rooms-sticky/deadroom") as sticky:
        assert sticky.recv() == "joined"
    wait_for_event(live, lambda e: e.get("route") == "sticky" and e.get("room") == "deadroom")
    size = httpx.get(live + "/rooms/deadroom/size", timeout=5).json()
    assert size == {"members": 1}  # the departed member is still listed
    with open_ws(live, "/rooms/deadroom") as a, open_ws(live, "/rooms/deadroom") as b:
        assert a.recv() == "joined" and b.recv() == "joined"
        a.send("still here?")
        assert b.recv() == "still here?"
        assert json.loads(a.recv()) == {"reached": 1}
    assert httpx.get(live + "/rooms/deadroom/size", timeout=5).json() == {"members": 0}


def test_blueprint_prefix(live: str) -> None:
    with open_ws(live, "/bp/hello/world") as ws:
        assert ws.recv() == "hello world"


# -- cello.testing -------------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(ws_app) as c:
        yield c


def test_testclient_echo(client: TestClient) -> None:
    with client.websocket_connect("/echo") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "hi"
        ws.send_bytes(b"\x01")
        assert ws.receive_bytes() == b"\x01"
    with client.websocket_connect("/json") as ws:
        ws.send_json({"x": 1})
        assert ws.receive_json() == {"got": {"x": 1}}


def test_testclient_chat_example(client: TestClient) -> None:
    with client.websocket_connect("/ws/chat") as a, client.websocket_connect("/ws/chat") as b:
        assert a.receive_text() == "Welcome!" and b.receive_text() == "Welcome!"
        a.send_text("yo")
        assert b.receive_text() == "User: yo"


def test_testclient_denials(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/nowhere"):
            pass
    assert denied.value.status_code == 404
    assert denied.value.json()["status"] == 404
    with pytest.raises(WebSocketDenialResponse) as denied:
        with client.websocket_connect("/guarded", headers={"X-Token": "bad"}):
            pass
    assert denied.value.status_code == 403
    with client.websocket_connect("/guarded", headers={"X-Token": "secret"}) as ws:
        assert ws.receive_text() == "welcome"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
        assert closed.value.code == 1000


def test_testclient_close_and_errors(client: TestClient) -> None:
    with client.websocket_connect("/close") as ws:
        ws.send_text("bo")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (closed.value.code, closed.value.reason) == (4001, "bye bo")
    with client.websocket_connect("/boom") as ws:
        assert ws.receive_text() == "about to fail"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert closed.value.code == 1011


def test_testclient_subprotocol_and_params(client: TestClient) -> None:
    with client.websocket_connect("/proto", subprotocols=["chat.v2"]) as ws:
        assert ws.accepted_subprotocol == "chat.v2"
        assert ws.receive_text() == "chat.v2"
    with client.websocket_connect("/items/7?q=z") as ws:
        data = ws.receive_json()
    assert (data["item_id"], data["q"]) == (7, "z")


def test_testclient_client_close_is_none_from_recv(client: TestClient) -> None:
    with client.websocket_connect("/observe-recv") as ws:
        assert ws.receive_text() == "ready"
        ws.close(4010, "done")
    event = next(e for e in reversed(client.get("/events").json()) if e["route"] == "recv")
    assert (event["message"], event["code"], event["reason"]) == (None, 4010, "done")


def _own_ws_app() -> Any:
    """A second copy of the WebSocket test app: the module's is in use by the
    ``client`` fixture, whose lifespan (with its mounted app's) must not be
    started again on another loop."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("ws_app_copy", ROOT / "tests/apps/websocket.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


def test_async_testclient_websocket_session() -> None:
    """``AsyncTestClient.websocket_connect`` drives the app on the test's own
    loop: echo, JSON, a broadcast between two sessions, denials, the app's
    close and the client's."""
    from cello.testing import AsyncTestClient

    async def scenario() -> dict[str, Any]:
        async with AsyncTestClient(_own_ws_app()) as client:
            async with client.websocket_connect("/echo") as ws:
                await ws.send_text("hi")
                assert await ws.receive_text() == "hi"
                await ws.send_bytes(b"\x01")
                assert await ws.receive_bytes() == b"\x01"
            async with client.websocket_connect("/json") as ws:
                await ws.send_json({"x": 1})
                assert await ws.receive_json() == {"got": {"x": 1}}
            async with (
                client.websocket_connect("/ws/chat") as a,
                client.websocket_connect("/ws/chat") as b,
            ):
                assert await a.receive_text() == await b.receive_text() == "Welcome!"
                await a.send_text("yo")
                assert await b.receive_text() == "User: yo"
            with pytest.raises(WebSocketDenialResponse) as denied:
                async with client.websocket_connect("/guarded", headers={"X-Token": "bad"}):
                    pass
            assert denied.value.status_code == 403
            async with client.websocket_connect("/proto", subprotocols=["chat.v2"]) as ws:
                assert ws.accepted_subprotocol == "chat.v2"
                assert await ws.receive_text() == "chat.v2"
            async with client.websocket_connect("/close") as ws:
                await ws.send_text("bo")
                with pytest.raises(WebSocketDisconnect) as closed:
                    await ws.receive_text()
            assert (closed.value.code, closed.value.reason) == (4001, "bye bo")
            async with client.websocket_connect("/boom") as ws:
                assert await ws.receive_text() == "about to fail"
                with pytest.raises(WebSocketDisconnect) as closed:
                    await ws.receive_text()
            assert closed.value.code == 1011
            async with client.websocket_connect("/observe-recv") as ws:
                assert await ws.receive_text() == "ready"
                await ws.close(4010, "done")
            events = (await client.get("/events")).json()
        return next(e for e in reversed(events) if e["route"] == "recv")  # type: ignore[no-any-return]

    event = asyncio.run(scenario())
    assert (event["message"], event["code"], event["reason"]) == (None, 4010, "done")


def test_async_session_waits_at_most_its_timeout() -> None:
    from cello.testing import AsyncTestClient

    async def scenario() -> None:
        async with AsyncTestClient(_own_ws_app()) as client:
            async with client.websocket_connect("/echo") as ws:
                ws.timeout = 0.2
                with pytest.raises(TimeoutError, match="sent nothing"):
                    await ws.receive_text()

    asyncio.run(scenario())


# -- units: the API a handler sees ---------------------------------------------


def test_exports() -> None:
    assert cello.WebSocket is WebSocket
    assert {"WebSocket", "WebSocketMessage", "WebSocketDisconnect"} <= set(cello.__all__)
    import cello.websocket as module

    assert {"WebSocket", "WebSocketMessage", "WebSocketDisconnect", "Rooms"} <= set(module.__all__)


def test_message_constructors_and_predicates() -> None:
    text = WebSocketMessage.text("hi")
    assert (text.msg_type, text.text, text.data) == ("text", "hi", None)
    assert text.is_text() and not text.is_binary() and not text.is_close()
    binary = WebSocketMessage.binary(b"\x00")
    assert (binary.msg_type, binary.text, binary.data) == ("binary", None, b"\x00")
    assert binary.is_binary()
    assert WebSocketMessage.ping().msg_type == "ping"
    close = WebSocketMessage.close()
    assert close.is_close() and close.code == 1000
    assert WebSocketMessage.text('{"a": 1}').json() == {"a": 1}
    with pytest.raises(TypeError):
        WebSocketMessage.text(b"bytes")  # type: ignore[arg-type]


def test_openapi_leaves_websocket_routes_out() -> None:
    spec = ws_app.openapi()
    assert "/events" in spec["paths"]
    assert not any(p.startswith(("/echo", "/ws/", "/rooms/{name}")) and p != "/rooms/{name}/size"
                   for p in spec["paths"])  # fmt: skip


def test_handler_without_a_parameter_is_refused_at_registration() -> None:
    app = App()
    with pytest.raises(TypeError, match="WebSocket"):

        @app.websocket("/x")
        def nothing() -> None: ...


def test_rooms_unit_with_a_dead_member() -> None:
    import asyncio

    sent: list[Any] = []

    async def main() -> int:
        async def receive() -> dict[str, Any]:
            return {"type": "websocket.disconnect", "code": 1000}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        async def broken_send(message: dict[str, Any]) -> None:
            raise OSError("gone")

        alive = WebSocket({"type": "websocket"}, receive, send)
        dead = WebSocket({"type": "websocket"}, receive, broken_send)
        await alive.accept()
        await dead.accept() if False else None
        dead.client_state = 1  # accepted earlier; its transport is now broken
        rooms = Rooms()
        rooms.join("r", alive)
        rooms.join("r", dead)
        reached = await rooms.broadcast("r", b"x")
        assert rooms.members("r") == [alive]
        return reached  # type: ignore[no-any-return]

    assert asyncio.run(main()) == 1
    assert sent[-1] == {"type": "websocket.send", "bytes": b"x"}


def test_root_path_is_honoured(client: TestClient) -> None:
    from cello.testing import WebSocketTestSession, _websocket_scope

    scope = _websocket_scope(client, "/api/bp/hello/root", None, None)
    scope["root_path"] = "/api"
    with WebSocketTestSession(ws_app, client._loop, scope) as ws:
        assert ws.receive_text() == "hello root"


def test_send_on_own_closed_socket_raises_but_not_on_others() -> None:
    import asyncio

    async def main() -> list[Any]:
        async def receive() -> dict[str, Any]:
            return {"type": "websocket.disconnect", "code": 1001, "reason": "away"}

        async def send(message: dict[str, Any]) -> None:
            pass

        own = WebSocket({"type": "websocket"}, receive, send)
        other = WebSocket({"type": "websocket"}, receive, send)
        assert await own.recv() is None  # accepts, then the client is gone
        assert await other.recv() is None
        outcome: list[Any] = [await own.send_text("to someone else's closed socket")]
        from cello.websocket import _CURRENT

        _CURRENT.set(other)
        try:
            await other.send_text("to my own closed socket")
        except WebSocketDisconnect as exc:
            outcome.append((exc.code, exc.reason))
        return outcome

    assert asyncio.run(main()) == [False, (1001, "away")]


def test_mounted_starlette_websocket(live: str) -> None:
    with open_ws(live, "/legacy/shout") as ws:
        ws.send("hey")
        assert ws.recv() == "HEY at /legacy"


def test_testclient_mounted_starlette_websocket(client: TestClient) -> None:
    with client.websocket_connect("/legacy/shout") as ws:
        ws.send_text("hi")
        assert ws.receive_text() == "HI at /legacy"


@pytest.mark.parametrize("door", ["uvicorn", pytest.param("native", marks=native_ready)])
def test_a_handshake_passes_the_middleware_chain_once(door: str) -> None:
    # Four requests a client: four handshakes get in and the fifth is a 429.
    # The native server once ran the chain before handing the upgrade to
    # the App, which runs it again, so only two got in.
    target = "tests.apps.websocket_limited:app"
    if door == "native":
        server: Any = LiveServer(target, "--env", "production")
    else:
        server = _AsgiServer(
            [sys.executable, "-m", "uvicorn", target, "--host", "127.0.0.1", "--port", "0",
             "--ws", "websockets", "--log-level", "info"]
        )  # fmt: skip
    with server:
        for _ in range(4):
            with open_ws(server.url, "/ws") as ws:
                assert ws.recv() == "hi"
        with pytest.raises(InvalidStatus) as refused:
            open_ws(server.url, "/ws")
        assert refused.value.response.status_code == 429
