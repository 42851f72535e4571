"""permessage-deflate (RFC 7692) on the native server's WebSockets: the
negotiation in the 101, compressed messages both ways, the limits on the
decompressed size, and the protocol errors compression adds. Checked
against Cello's own routes (door 1, tests/apps/websocket.py) and hosted
ASGI apps (door 3, tests/apps/websocket_hosted.py), with raw sockets where
the bytes on the wire matter and the ``websockets`` client otherwise."""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from cello import WebSocketConfig
from cello._settings import flags_from_argv, resolve
from tests.live import LiveServer


@pytest.fixture(scope="module")
def native() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.websocket:app", "--env", "production") as server:
        yield server


@pytest.fixture(scope="module")
def hosted() -> Iterator[LiveServer]:
    # max_message_size is 1 MiB there.
    with LiveServer("tests.apps.websocket_hosted:app", "--env", "production") as server:
        yield server


@pytest.fixture(scope="module")
def off() -> Iterator[LiveServer]:
    with LiveServer(
        "tests.apps.websocket:app", "--env", "production", "--no-ws-per-message-deflate"
    ) as server:
        yield server


class RawWs:
    """A WebSocket client on a plain socket: the handshake with a chosen
    ``Sec-WebSocket-Extensions`` offer, and frames as bytes."""

    def __init__(self, live: LiveServer, path: str, offer: str | None) -> None:
        host, port = live.url.removeprefix("http://").split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=10)
        extra = f"Sec-WebSocket-Extensions: {offer}\r\n" if offer is not None else ""
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = self.sock.recv(65536)
            assert chunk, data
            data += chunk
        head, self.buffer = data.split(b"\r\n\r\n", 1)
        lines = head.decode().split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {
            k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])
        }

    @property
    def extension(self) -> str | None:
        return self.headers.get("sec-websocket-extensions")

    def send(self, first: int, payload: bytes) -> None:
        """One masked frame; ``first`` is the FIN/RSV/opcode byte."""
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", first, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", first, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", first, 0x80 | 127, n)
        body = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + body)

    def _take(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        out, self.buffer = self.buffer[:n], self.buffer[n:]
        return out

    def recv(self) -> tuple[int, bytes]:
        """The next server frame: its first byte and its payload."""
        first, second = self._take(2)
        assert not second & 0x80, "a server frame is never masked"
        n = second & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8))
        return first, self._take(n)

    def close_code(self) -> int:
        """Reads until the server's close frame; its code."""
        while True:
            first, payload = self.recv()
            if first & 0x0F == 0x8:
                return int.from_bytes(payload[:2], "big")

    def close(self) -> None:
        self.sock.close()


def deflate(data: bytes) -> bytes:
    """A message compressed as a client does: raw deflate, sync flush, no tail."""
    c = zlib.compressobj(wbits=-15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


OFFERS = [
    ("permessage-deflate", "permessage-deflate"),
    ("permessage-deflate; client_max_window_bits", "permessage-deflate"),
    (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ),
    (
        'permessage-deflate; server_max_window_bits="10"; client_max_window_bits=12',
        "permessage-deflate; server_max_window_bits=10",
    ),
    # An invalid offer is skipped for the next one.
    (
        "permessage-deflate; server_max_window_bits=16, "
        "permessage-deflate; client_no_context_takeover",
        "permessage-deflate; client_no_context_takeover",
    ),
    ("permessage-deflate; server_max_window_bits", None),
    ("permessage-deflate; client_max_window_bits=7", None),
    ("permessage-deflate; bogus_param", None),
    ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", None),
    ("x-webkit-deflate-frame", None),
    (None, None),
]


@pytest.mark.parametrize(("offer", "answer"), OFFERS)
def test_negotiation_answers_the_first_acceptable_offer(
    native: LiveServer, hosted: LiveServer, offer: str | None, answer: str | None
) -> None:
    for live, path in ((native, "/echo"), (hosted, "/star/echo")):
        ws = RawWs(live, path, offer)
        try:
            assert ws.status == 101
            assert ws.extension == answer, (path, offer)
        finally:
            ws.close()


def test_turned_off_nothing_is_negotiated_and_rsv1_is_a_protocol_error(off: LiveServer) -> None:
    ws = RawWs(off, "/echo", "permessage-deflate")
    try:
        assert ws.status == 101
        assert ws.extension is None
        ws.send(0xC1, deflate(b"hello" * 50))
        assert ws.close_code() == 1002
    finally:
        ws.close()


def test_the_server_owns_the_extension_header_not_the_app(hosted: LiveServer) -> None:
    # /raw/ext accepts with its own Sec-WebSocket-Extensions header.
    plain = RawWs(hosted, "/raw/ext", None)
    offered = RawWs(hosted, "/raw/ext", "permessage-deflate")
    try:
        assert plain.status == offered.status == 101
        assert plain.extension is None
        assert offered.extension == "permessage-deflate"
    finally:
        plain.close()
        offered.close()


@pytest.mark.parametrize("where", ["native", "hosted"])
def test_compressed_messages_travel_compressed_both_ways(
    where: str, native: LiveServer, hosted: LiveServer
) -> None:
    live, path = (native, "/echo") if where == "native" else (hosted, "/star/echo")
    text = ("All work and no play makes Jack a dull boy. " * 5000).encode()
    ws = RawWs(live, path, "permessage-deflate")
    try:
        assert ws.extension == "permessage-deflate"
        wire = deflate(text)
        assert len(wire) < len(text) // 50
        ws.send(0xC1, wire)  # FIN, RSV1, text
        first, payload = ws.recv()
        assert first == 0xC1, hex(first)
        assert len(payload) < len(text) // 50
        # The server keeps its context: one decoder reads all its messages.
        decoder = zlib.decompressobj(wbits=-15)
        assert decoder.decompress(payload + b"\x00\x00\xff\xff") == text
        # An uncompressed message is still fine, and comes back compressed.
        ws.send(0x82, text)
        first, payload = ws.recv()
        assert first == 0xC2
        assert decoder.decompress(payload + b"\x00\x00\xff\xff") == text
    finally:
        ws.close()


def test_context_takeover_and_its_refusal(native: LiveServer) -> None:
    text = ("context takeover lets the second copy cost almost nothing " * 40).encode()

    def two_sizes(offer: str) -> tuple[int, int]:
        ws = RawWs(native, "/echo", offer)
        try:
            sizes = []
            decoder = zlib.decompressobj(wbits=-15)
            for _ in range(2):
                ws.send(0x81, text)
                first, payload = ws.recv()
                assert first == 0xC1
                if "server_no_context_takeover" in offer:
                    decoder = zlib.decompressobj(wbits=-15)
                assert decoder.decompress(payload + b"\x00\x00\xff\xff") == text
                sizes.append(len(payload))
            return sizes[0], sizes[1]
        finally:
            ws.close()

    kept_first, kept_second = two_sizes("permessage-deflate")
    assert kept_second < kept_first // 2
    fresh_first, fresh_second = two_sizes("permessage-deflate; server_no_context_takeover")
    assert fresh_first == fresh_second


def test_an_eight_bit_window_is_agreed_and_answered_uncompressed(native: LiveServer) -> None:
    ws = RawWs(native, "/echo", "permessage-deflate; server_max_window_bits=8")
    try:
        assert ws.extension == "permessage-deflate; server_max_window_bits=8"
        text = b"abc" * 1000
        ws.send(0xC1, deflate(text))
        first, payload = ws.recv()
        assert first == 0x81  # RSV1 clear: sent as it is
        assert payload == text
    finally:
        ws.close()


@pytest.mark.parametrize(("where", "size"), [("hosted", 4 << 20), ("native", 20 << 20)])
def test_a_deflate_bomb_closes_with_1009(
    where: str, size: int, native: LiveServer, hosted: LiveServer
) -> None:
    # A few KiB on the wire that expand past max_message_size (1 MiB
    # hosted, the default 16 MiB native).
    live, path = (native, "/echo") if where == "native" else (hosted, "/raw/echo")
    bomb = deflate(b"\x00" * size)
    assert len(bomb) < size // 500
    ws = RawWs(live, path, "permessage-deflate")
    try:
        ws.send(0xC2, bomb)
        assert ws.close_code() == 1009
    finally:
        ws.close()


@pytest.mark.parametrize(
    "frames",
    [
        [(0xC9, b"")],  # RSV1 on a ping
        [(0xC8, b"\x03\xe8")],  # RSV1 on a close
        [(0x41, b""), (0xC0, b"")],  # RSV1 on a continuation
        [(0xE1, b"")],  # RSV2, which deflate does not define
    ],
    ids=["ping", "close", "continuation", "rsv2"],
)
def test_reserved_bits_outside_a_first_data_frame_are_1002(
    native: LiveServer, frames: list[tuple[int, bytes]]
) -> None:
    ws = RawWs(native, "/echo", "permessage-deflate")
    try:
        assert ws.extension == "permessage-deflate"
        for first, payload in frames:
            ws.send(first, payload)
        assert ws.close_code() == 1002
    finally:
        ws.close()


def test_corrupt_compressed_data_is_1002(native: LiveServer) -> None:
    ws = RawWs(native, "/echo", "permessage-deflate")
    try:
        ws.send(0xC1, b"\xff" * 32)
        assert ws.close_code() == 1002
    finally:
        ws.close()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 30))


@pytest.mark.parametrize("where", ["native", "hosted"])
def test_a_websockets_client_with_compression(
    where: str, native: LiveServer, hosted: LiveServer
) -> None:
    live, path = (native, "/echo") if where == "native" else (hosted, "/star/echo")
    url = live.url.replace("http://", "ws://") + path
    text = "lorem ipsum dolor sit amet " * 20_000
    data = bytes(range(256)) * 2000

    async def go() -> tuple[str | None, list[Any]]:
        async with websockets.connect(url, max_size=None) as ws:
            out = []
            for message in (text, data, "short", text[:999]):
                await ws.send(message)
                out.append(await ws.recv())
            return ws.response.headers.get("Sec-WebSocket-Extensions"), out

    extension, echoed = run(go())
    assert extension is not None and extension.startswith("permessage-deflate")
    assert echoed == [text, data, "short", text[:999]]


def test_websocket_config_and_flag() -> None:
    assert WebSocketConfig().per_message_deflate is True
    assert "per_message_deflate=False" in repr(WebSocketConfig(per_message_deflate=False))
    with pytest.raises(ValueError, match="per_message_deflate"):
        WebSocketConfig(per_message_deflate="no")  # type: ignore[arg-type]
    off = resolve({}, flags_from_argv(["--no-ws-per-message-deflate"]), ".")
    assert off.websocket.per_message_deflate is False
    code_off = {"websocket": WebSocketConfig(per_message_deflate=False, max_frame_size=4096)}
    on = resolve(code_off, flags_from_argv(["--ws-per-message-deflate"]), ".")
    assert on.websocket.per_message_deflate is True
    assert on.websocket.max_frame_size == 4096
    assert resolve({}, {}, ".").websocket.per_message_deflate is True
