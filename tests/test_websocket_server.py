"""WebSocket on the native server: hosted ASGI apps (door 3, a raw ASGI app
and a Starlette endpoint under ``app.mount``, and ``cello serve``) and the
hand-over of unclaimed upgrades to the ``App`` itself (door 1), checked
with the ``websockets`` client against a live server."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.live import LiveServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def live() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.websocket_hosted:app", "--env", "production") as server:
        yield server


def ws_url(live: LiveServer, path: str) -> str:
    return live.url.replace("http://", "ws://") + path


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 20))


def test_raw_asgi_echo_text_and_bytes(live: LiveServer) -> None:
    async def go() -> list[Any]:
        async with websockets.connect(ws_url(live, "/raw/echo")) as ws:
            await ws.send("héllo")
            text = await ws.recv()
            await ws.send(b"\x00\x01")
            data = await ws.recv()
            big = "x" * 200_000  # fragmented by the client, reassembled
            await ws.send([big[:100_000], big[100_000:]])
            whole = await ws.recv()
            return [text, data, len(whole)]

    assert run(go()) == ["héllo", b"\x00\x01", 200_000]


def test_starlette_websocket_endpoint_under_a_mount(live: LiveServer) -> None:
    async def go() -> list[Any]:
        async with websockets.connect(ws_url(live, "/star/echo")) as ws:
            out = []
            for i in range(50):
                await ws.send(f"m{i}")
                out.append(await ws.recv())
            return out

    assert run(go()) == [f"m{i}" for i in range(50)]


def test_scope_of_a_hosted_app(live: LiveServer) -> None:
    async def go() -> tuple[dict[str, Any], Any]:
        async with websockets.connect(
            ws_url(live, "/raw/scope?a=1"), subprotocols=["one", "two"]
        ) as ws:
            return json.loads(await ws.recv()), ws.subprotocol

    info, chosen = run(go())
    assert info == {
        "path": "/raw/scope",
        "root_path": "/raw",
        "scheme": "ws",
        "query": "a=1",
        "subprotocols": ["one", "two"],
        "extensions": ["websocket.http.response"],
        "spec": "2.5",
    }
    assert chosen == "two"


def test_accept_headers_reach_the_client(live: LiveServer) -> None:
    async def go() -> str | None:
        async with websockets.connect(ws_url(live, "/raw/echo")) as ws:
            assert ws.response is not None
            return ws.response.headers.get("x-hello")

    assert run(go()) == "there"


@pytest.mark.parametrize(("path", "status"), [("refuse", 403), ("ignore", 403), ("boom", 500)])
def test_a_connection_never_accepted_gets_an_http_error(
    live: LiveServer, path: str, status: int
) -> None:
    async def go() -> int:
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(ws_url(live, f"/raw/{path}")):
                pass
        return info.value.response.status_code

    assert run(go()) == status


def test_denial_response_extension(live: LiveServer) -> None:
    async def go() -> tuple[int, str | None, bytes]:
        with pytest.raises(InvalidStatus) as info:
            async with websockets.connect(ws_url(live, "/raw/deny")):
                pass
        response = info.value.response
        return response.status_code, response.headers.get("x-denied"), response.body

    assert run(go()) == (401, "yes", b"no entry")


def test_app_close_code_and_reason_reach_the_client(live: LiveServer) -> None:
    async def go() -> tuple[int, str]:
        async with websockets.connect(ws_url(live, "/raw/close")) as ws:
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            assert info.value.rcvd is not None
            return info.value.rcvd.code, info.value.rcvd.reason

    assert run(go()) == (4001, "bye now")


def test_client_close_reaches_the_app_with_its_code(live: LiveServer) -> None:
    async def go() -> str:
        async with websockets.connect(ws_url(live, "/raw/echo")) as ws:
            await ws.close(code=4321, reason="done")
        # The app saw it, a second receive saw it again, and a late send raised.
        for _ in range(50):
            async with websockets.connect(ws_url(live, "/raw/echo")) as ws:
                await ws.send("events")
                events = str(await ws.recv())
            if "disconnect 4321" in events and "send after disconnect" in events:
                return events
            await asyncio.sleep(0.05)
        return events

    events = run(go())
    assert "disconnect 4321" in events
    assert "again websocket.disconnect 4321" in events
    assert "send after disconnect: ClientDisconnected" in events


def test_client_dropping_the_connection_reports_1006(live: LiveServer) -> None:
    host, port = live.url.removeprefix("http://").split(":")
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            (
                "GET /raw/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = sock.recv(4096)
        assert head.startswith(b"HTTP/1.1 101")
        assert b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" in head
        # Half a masked text frame, then gone.
        sock.sendall(b"\x81\x85\x00\x00\x00\x00he")

    async def go() -> str:
        for _ in range(50):
            async with websockets.connect(ws_url(live, "/raw/echo")) as ws:
                await ws.send("events")
                events = str(await ws.recv())
            if "disconnect 1006" in events:
                return events
            await asyncio.sleep(0.05)
        return events

    assert "disconnect 1006" in run(go())


def test_a_message_over_the_limit_closes_with_1009(live: LiveServer) -> None:
    async def go() -> int | None:
        async with websockets.connect(ws_url(live, "/raw/echo"), max_size=None) as ws:
            await ws.send(b"x" * ((1 << 20) + 1))
            with pytest.raises(ConnectionClosed) as info:
                await ws.recv()
            return info.value.rcvd.code if info.value.rcvd else None

    assert run(go()) == 1009


def test_invalid_utf8_text_closes_with_1007(live: LiveServer) -> None:
    assert raw_frame_close(live, b"\x81\x82\x00\x00\x00\x00\xc3\x28") == 1007


def test_a_protocol_error_closes_with_1002(live: LiveServer) -> None:
    # Reserved bits set, no extension negotiated.
    assert raw_frame_close(live, b"\xf1\x80\x00\x00\x00\x00") == 1002


def raw_frame_close(live: LiveServer, frame: bytes) -> int:
    """Sends one raw frame after a handshake; the close code the server sends."""
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"GET /raw/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        data = data.split(b"\r\n\r\n", 1)[1]
        sock.sendall(frame)
        while len(data) < 4:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    assert data[0] == 0x88, data
    return int.from_bytes(data[2:4], "big")


def test_bad_handshakes_are_refused(live: LiveServer) -> None:
    base = {"Upgrade": "websocket", "Connection": "Upgrade"}
    with httpx.Client(base_url=live.url) as client:
        missing_key = client.get("/raw/echo", headers={**base, "Sec-WebSocket-Version": "13"})
        assert missing_key.status_code == 400
        old = client.get(
            "/raw/echo",
            headers={
                **base,
                "Sec-WebSocket-Version": "8",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            },
        )
        assert old.status_code == 426
        assert old.headers["sec-websocket-version"] == "13"
        # Plain HTTP still works on the same server.
        assert client.get("/").json() == {"ok": "yes"}


def test_an_unclaimed_upgrade_goes_to_the_app_itself(live: LiveServer) -> None:
    async def go() -> str:
        async with websockets.connect(ws_url(live, "/chat/room1")) as ws:
            return str(await ws.recv())

    assert run(go()) == "app saw /chat/room1"


def test_a_client_that_stops_answering_pings_is_dropped(live: LiveServer) -> None:
    # The app pings every 0.5 s and waits 1 s for the pong; a client that
    # never reads (so never answers) is dropped, and the app hears 1006.
    host, port = live.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"GET /raw/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        received = b""
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                break
            received += chunk
    body = received.split(b"\r\n\r\n", 1)[1]
    assert body.startswith(b"\x89\x00"), body  # a ping came first
    assert b"\x88" in body  # then the close, and the connection ended


def test_slow_client_back_pressure_bounds_what_is_buffered(live: LiveServer) -> None:
    """The app sends 64 KiB messages as fast as it may while the client
    reads nothing: the sends wait, so the server's memory stays bounded."""
    pid = server_pid(live)
    before = rss_kib(pid)
    host, port = live.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        sock.sendall(
            b"GET /raw/flood HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            b"Sec-WebSocket-Version: 13\r\n\r\n"
        )
        assert sock.recv(12).startswith(b"HTTP/1.1 101")
        # Give the app every chance to queue more than it should.
        run(asyncio.sleep(1.5))
        grown = rss_kib(pid) - before
    finally:
        sock.close()
    # Unbounded, 1.5 s of 64 KiB sends would be gigabytes; bounded, the
    # channel (16 messages) and socket buffers hold a few MiB.
    assert grown < 64 * 1024, f"server grew by {grown} KiB"


def server_pid(live: LiveServer) -> int:
    assert live.process is not None
    return live.process.pid


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


RAW_ECHO = """
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    assert scope["type"] == "websocket"
    await receive()
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        text, data = message.get("text"), message.get("bytes")
        await send({"type": "websocket.send", "text": text, "bytes": data})
"""


def test_cello_serve_hosts_a_raw_asgi_websocket_app_and_closes_it_on_shutdown() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "ws_echo_app.py").write_text(RAW_ECHO)
        process = subprocess.Popen(
            [sys.executable, "-m", "cello", "serve", "ws_echo_app:app", "--port", "0",
             "--ws-max-size", "1000"],
            cwd=tmp,
            env={**os.environ, "PYTHONPATH": f"{tmp}:{ROOT / 'python'}", "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )  # fmt: skip
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            url = line.split("running on ")[1].split()[0].replace("http://", "ws://")

            async def go() -> tuple[str, int | None, int | None]:
                async with websockets.connect(url + "/any") as ws:
                    await ws.send("ping me")
                    echoed = str(await ws.recv())
                async with websockets.connect(url + "/any") as ws:
                    await ws.send("x" * 1001)
                    with pytest.raises(ConnectionClosed) as too_big:
                        await ws.recv()
                async with websockets.connect(url + "/any") as ws:
                    await ws.send("hello")
                    await ws.recv()
                    process.send_signal(2)  # SIGINT: graceful stop
                    with pytest.raises(ConnectionClosed) as stopped:
                        await ws.recv()
                big = too_big.value.rcvd.code if too_big.value.rcvd else None
                gone = stopped.value.rcvd.code if stopped.value.rcvd else None
                return echoed, big, gone

            assert run(go()) == ("ping me", 1009, 1001)
            assert process.wait(15) == 0
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            assert process.stdout is not None
            process.stdout.close()


def test_websocket_config_validates_and_flags_override_it() -> None:
    from cello import WebSocketConfig
    from cello._settings import ConfigError, resolve

    with pytest.raises(ValueError):
        WebSocketConfig(ping_interval=-1)
    with pytest.raises(ValueError):
        WebSocketConfig(max_message_size=0)
    config = resolve(
        {"websocket": WebSocketConfig(max_frame_size=4096)},
        {"ws_max_size": 1000, "ws_ping_interval": 0},
        reload_dir=".",
    )
    assert config.websocket.max_message_size == 1000
    assert config.websocket.max_frame_size == 4096
    assert config.websocket.ping_interval is None
    assert config.websocket.ping_timeout == 20.0
    with pytest.raises(ConfigError):
        resolve({}, {"ws_max_size": -5}, reload_dir=".")


def test_websocket_with_io_threads_of_its_own() -> None:
    """With ``--threads 2`` the session runs on the server's own runtime."""
    with LiveServer("tests.apps.websocket_hosted:app", "--threads", "2") as server:

        async def go() -> list[str]:
            async with websockets.connect(ws_url(server, "/star/echo")) as ws:
                out = []
                for i in range(100):
                    await ws.send(f"t{i}")
                    out.append(str(await ws.recv()))
                return out

        assert run(go()) == [f"t{i}" for i in range(100)]
