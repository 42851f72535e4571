"""WebSocket through every door: the native server, uvicorn and the
in-process test client play the same conversation and the client sees the
same messages, close codes and reasons, subprotocol and denial responses.

A transcript is what a client observes: how the handshake ended (accepted
with a subprotocol, or denied with a status and body), every message
received, and the close code and reason. The in-process client has no
handshake on the wire: a close before accepting is the 403 a server sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cello.testing import WebSocketDenialResponse, WebSocketDisconnect
from conformance.doors import AsgiTransportDoor, Door, started_doors

APP = "conformance.websocket.app:app"


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


# A script is what the client does, in order: send a str or bytes message,
# read the next message (None), or close the connection itself (CLOSE).
# Without a CLOSE, the transcript reads until the server closes.
CLOSE = "<the client closes>"
Script = list[str | bytes | None]


def _live(door: Door, path: str, script: Script, subprotocols: list[str] | None) -> list[Any]:
    url = str(door.client.base_url).replace("http://", "ws://").rstrip("/") + path

    async def talk() -> list[Any]:
        seen: list[Any] = []
        try:
            ws = await websockets.connect(url, subprotocols=subprotocols, open_timeout=10)
        except InvalidStatus as denied:
            response = denied.response
            kind = response.headers.get("content-type", "")
            return [("denied", response.status_code, kind, response.body if kind else b"")]
        seen.append(("accepted", ws.subprotocol))
        try:
            for step in script:
                if step is None:
                    seen.append(("message", await asyncio.wait_for(ws.recv(), 10)))
                elif step == CLOSE:
                    await ws.close()
                else:
                    await ws.send(step)
            while True:
                seen.append(("message", await asyncio.wait_for(ws.recv(), 10)))
        except ConnectionClosed as closed:
            received = closed.rcvd
            seen.append(("closed", received.code, received.reason) if received else ("dropped",))
        finally:
            await ws.close()
        return seen

    return asyncio.run(talk())


def _in_process(door: Door, path: str, script: Script, subprotocols: list[str] | None) -> list[Any]:
    seen: list[Any] = []
    try:
        session = door.client.websocket_connect(path, subprotocols=subprotocols)
        with session as ws:
            seen.append(("accepted", ws.accepted_subprotocol))
            try:
                for step in script:
                    if step is None:
                        seen.append(("message", _receive(ws)))
                    elif step == CLOSE:
                        ws.close()
                        seen.append(("closed", 1000, ""))
                        return seen
                    elif isinstance(step, bytes):
                        ws.send_bytes(step)
                    else:
                        ws.send_text(step)
                while True:
                    seen.append(("message", _receive(ws)))
            except WebSocketDisconnect as closed:
                seen.append(("closed", closed.code, closed.reason))
    except WebSocketDenialResponse as denied:
        kind = denied.headers.get("content-type", "")
        return [("denied", denied.status_code, kind, denied.content)]
    except WebSocketDisconnect:
        return [("denied", 403, "", b"")]
    return seen


def _receive(ws: Any) -> str | bytes:
    message = ws.receive()
    if message["type"] == "websocket.close":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason") or "")
    return message["text"] if message.get("text") is not None else message["bytes"]


def transcript(door: Door, path: str, script: Script, subprotocols: list[str] | None = None):
    talk = _in_process if isinstance(door, AsgiTransportDoor) else _live
    return talk(door, path, script, subprotocols)


BIG_TEXT = "compress me, compress me not; " * 3000
BIG_BYTES = bytes(range(64)) * 2000

# (name, path, client script, subprotocols offered, expected transcript)
CASES = [
    ("text and bytes echo", "/echo", ["hello", None, b"\x00\xff", None, CLOSE], None,
     [("accepted", None), ("message", "hello"), ("message", b"\x00\xff"), ("closed", 1000, "")]),
    ("a sync handler", "/sync-echo", ["one", None, "two", None, CLOSE], None,
     [("accepted", None), ("message", "sync: one"), ("message", "sync: two"),
      ("closed", 1000, "")]),
    ("path and query parameters, a close with a code and reason", "/items/7?q=x", [], None,
     [("accepted", None), ("message", '{"item_id":7,"q":"x"}'), ("closed", 4000, "done")]),
    ("a converter that does not match is a 404", "/items/seven", [], None, None),
    ("an unknown path is a 404", "/nowhere", [], None, None),
    ("the subprotocol the handler picks", "/chat", [], ["chat.v1", "chat.v2"],
     [("accepted", "chat.v2"), ("message", "protocol: chat.v2"), ("closed", 1000, "")]),
    ("no subprotocol offered", "/chat", [], None,
     [("accepted", None), ("message", "protocol: None"), ("closed", 1000, "")]),
    ("a failing handler closes with 1011", "/fail", [], None,
     [("accepted", None), ("message", "about to fail"), ("closed", 1011, "Internal Error")]),
    ("a guard refuses the handshake with a 401 problem", "/private", [], None, None),
    ("a mounted Starlette endpoint", "/star/echo", ["hi", None, CLOSE], None,
     [("accepted", None), ("message", "mounted: hi"), ("closed", 1000, "")]),
    # The websockets client offers permessage-deflate: servers that agree
    # (native, uvicorn) compress both ways, and the messages are the same.
    ("large repetitive messages, compressed where negotiated", "/echo",
     [BIG_TEXT, None, BIG_BYTES, None, CLOSE], None,
     [("accepted", None), ("message", BIG_TEXT), ("message", BIG_BYTES),
      ("closed", 1000, "")]),
    ("a compressed message to a mounted Starlette endpoint", "/star/echo",
     [BIG_TEXT, None, CLOSE], None,
     [("accepted", None), ("message", "mounted: " + BIG_TEXT), ("closed", 1000, "")]),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_every_door_plays_the_same_conversation(doors, case):
    _, path, script, subprotocols, expected = case
    seen = {
        door_name: transcript(door, path, script, subprotocols) for door_name, door in doors.items()
    }
    if expected is not None:
        assert seen["native"] == expected
    for door_name, observed in seen.items():
        assert observed == seen["native"], f"{door_name} differs from native"


def test_denials_are_problems(doors):
    for door_name, door in doors.items():
        [(kind, status, content_type, body)] = transcript(door, "/private", [])
        assert (kind, status, content_type) == ("denied", 401, "application/problem+json"), (
            door_name
        )
        assert b'"status":401' in body, door_name
        [(kind, status, content_type, _)] = transcript(door, "/nowhere", [])
        assert (kind, status, content_type) == ("denied", 404, "application/problem+json"), (
            door_name
        )
