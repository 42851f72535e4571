"""WebSocket apps hosted by the native server (door 3): a raw ASGI app and
a Starlette app mounted in a Cello app, plus a Cello App whose own
``__call__`` is checked to receive unclaimed upgrades (door 1)."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from cello import App, WebSocketConfig


async def raw(scope: Any, receive: Any, send: Any) -> None:
    """A raw ASGI app; its path picks the behaviour."""
    assert scope["type"] == "websocket"
    path = scope["path"].rsplit("/", 1)[-1]
    first = await receive()
    assert first["type"] == "websocket.connect"
    if path == "deny":
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"text/plain"), (b"x-denied", b"yes")],
            }
        )
        await send({"type": "websocket.http.response.body", "body": b"no ", "more_body": True})
        await send({"type": "websocket.http.response.body", "body": b"entry"})
        return
    if path == "refuse":
        await send({"type": "websocket.close"})
        return
    if path == "ignore":
        return
    if path == "boom":
        raise RuntimeError("boom before accept")
    accept: dict[str, Any] = {"type": "websocket.accept", "headers": [(b"x-hello", b"there")]}
    if path == "ext":
        # The server owns Sec-WebSocket-Extensions: this one is dropped.
        accept["headers"].append((b"sec-websocket-extensions", b"permessage-deflate"))
    if scope["subprotocols"]:
        accept["subprotocol"] = scope["subprotocols"][-1]
    await send(accept)
    if path == "scope":
        info = {
            "path": scope["path"],
            "root_path": scope["root_path"],
            "scheme": scope["scheme"],
            "query": scope["query_string"].decode(),
            "subprotocols": scope["subprotocols"],
            "extensions": sorted(scope["extensions"]),
            "spec": scope["asgi"]["spec_version"],
        }
        import json

        await send({"type": "websocket.send", "text": json.dumps(info)})
    if path == "close":
        await send({"type": "websocket.close", "code": 4001, "reason": "bye now"})
        return
    if path == "flood":
        # Sends until the client is gone; with a client that does not read,
        # back-pressure keeps each send waiting.
        chunk = b"x" * 65536
        sent = 0
        try:
            while True:
                await send({"type": "websocket.send", "bytes": chunk})
                sent += 1
        except OSError:
            EVENTS.append(f"flood stopped after {sent}")
        return
    # echo until disconnect, then record how it ended
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            EVENTS.append(f"disconnect {message['code']}")
            again = await receive()
            EVENTS.append(f"again {again['type']} {again['code']}")
            try:
                await send({"type": "websocket.send", "text": "late"})
            except OSError as exc:
                EVENTS.append(f"send after disconnect: {type(exc).__name__}")
            return
        if message.get("text") == "events":
            await send({"type": "websocket.send", "text": "|".join(EVENTS)})
        elif message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message["bytes"]})


EVENTS: list[str] = []


async def starlette_echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            if message.get("text") is not None:
                await websocket.send_text(message["text"])
            else:
                await websocket.send_bytes(message["bytes"])
    except Exception:
        return


starlette_app = Starlette(routes=[WebSocketRoute("/echo", starlette_echo)])


class RecordingApp(App):
    """A Cello App whose ``__call__`` answers websocket scopes itself, to
    show the native server hands it unclaimed upgrades."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            await super().__call__(scope, receive, send)
            return
        await receive()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": f"app saw {scope['path']}"})
        await send({"type": "websocket.close", "code": 1000})


app = RecordingApp()


@app.get("/")
def index() -> dict[str, str]:
    return {"ok": "yes"}


app.mount("/raw", raw)
app.mount("/star", starlette_app)

RUN_OPTIONS = {
    "websocket": WebSocketConfig(ping_interval=0.5, ping_timeout=1.0, max_message_size=1 << 20),
}
