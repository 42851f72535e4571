"""The WebSocket test app (tests/test_websocket.py), served by every door.

What handlers observe on their side (a client's close, a disconnect) goes
to ``EVENTS``, which ``GET /events`` returns, so a test of a live server in
another process can check it.
"""

from __future__ import annotations

from typing import Any

from cello import App, Blueprint, Depends, Request, WebSocket, WebSocketDisconnect
from cello.guards import ForbiddenError, UnauthorizedError
from cello.websocket import Rooms

app = App()
EVENTS: list[dict[str, Any]] = []


@app.get("/events")
def events(request):
    return EVENTS


# The documented example ("WebSocket chat with broadcasting"), unchanged.
clients = set()


@app.websocket("/ws/chat")
def chat(ws):
    clients.add(ws)
    ws.send_text("Welcome!")
    try:
        while True:
            msg = ws.recv()
            if msg is None:
                break
            for client in clients:
                if client != ws:
                    client.send_text(f"User: {msg.text}")
    finally:
        clients.discard(ws)


@app.websocket("/echo")
async def echo(ws: WebSocket):
    async for msg in ws:
        if msg.is_text():
            await ws.send_text(msg.text)
        else:
            await ws.send_binary(msg.data)


@app.websocket("/echo-sync")
def echo_sync(ws):
    while (msg := ws.recv()) is not None:
        ws.send(msg)


@app.websocket("/json")
async def json_echo(ws):
    while True:
        data = await ws.receive_json()
        await ws.send_json({"got": data})


@app.websocket("/items/{item_id:int}")
async def item(ws, item_id: int, request: Request):
    await ws.send_json(
        {
            "item_id": item_id,
            "type": type(item_id).__name__,
            "q": request.query_params.get("q"),
            "path": ws.path,
            "params": ws.path_params,
            "header": ws.headers.get("x-hello"),
        }
    )
    await ws.close()


def get_db() -> dict[str, str]:
    return {"name": "test-db"}


def current_user(request) -> str:
    return request.headers.get("x-user", "anonymous")


@app.websocket("/deps")
def deps(ws, db: dict = Depends(get_db), user: str = Depends(current_user), tag: str = "none"):
    ws.send_json({"db": db, "user": user, "tag": tag})
    ws.close()


def needs_token(request) -> None:
    token = request.headers.get("x-token")
    if token is None:
        raise UnauthorizedError("a token is required")
    if token != "secret":
        raise ForbiddenError("wrong token")


@app.websocket("/guarded", guards=[needs_token])
async def guarded(ws):
    await ws.send_text("welcome")
    await ws.close()


@app.websocket("/proto")
async def proto(ws):
    chosen = "chat.v2" if "chat.v2" in ws.subprotocols else None
    await ws.accept(subprotocol=chosen)
    await ws.send_text(chosen or "none")
    await ws.close()


@app.websocket("/close")
async def close_custom(ws):
    name = await ws.receive_text()
    await ws.close(code=4001, reason=f"bye {name}")


@app.websocket("/observe-recv")
async def observe_recv(ws):
    await ws.send_text("ready")
    msg = await ws.recv()
    EVENTS.append(
        {
            "route": "recv",
            "message": None if msg is None else msg.text,
            "code": ws.close_code,
            "reason": ws.close_reason,
            "connected": ws.connected,
        }
    )


@app.websocket("/observe-receive-text")
def observe_receive_text(ws):
    ws.send_text("ready")
    try:
        ws.receive_text()
    except WebSocketDisconnect as exc:
        EVENTS.append({"route": "receive_text", "code": exc.code, "reason": exc.reason})
        raise


@app.websocket("/boom")
async def boom(ws):
    await ws.send_text("about to fail")
    raise RuntimeError("boom")


@app.websocket("/boom-sync")
def boom_sync(ws):
    ws.recv()
    raise RuntimeError("boom")


rooms = Rooms()


@app.websocket("/rooms/{name}")
async def room(ws, name: str):
    rooms.join(name, ws)
    await ws.send_text("joined")
    try:
        async for msg in ws:
            reached = await rooms.broadcast(name, msg.text, exclude=ws)
            await ws.send_json({"reached": reached})
    finally:
        rooms.leave(name, ws)


@app.websocket("/rooms-sync/{name}")
def room_sync(ws, name: str):
    rooms.join(name, ws)
    ws.send_text("joined")
    try:
        for msg in ws:
            reached = rooms.broadcast(name, {"from": "sync", "text": msg.text}, exclude=ws)
            ws.send_json({"reached": reached})
    finally:
        rooms.leave(name, ws)


@app.websocket("/rooms-sticky/{name}")
async def room_sticky(ws, name: str):
    """Joins and never leaves: its member stays in the room after it is gone."""
    rooms.join(name, ws)
    await ws.send_text("joined")
    await ws.recv()
    EVENTS.append({"route": "sticky", "room": name})


@app.get("/rooms/{name}/size")
def room_size(request, name: str):
    return {"members": len(rooms.members(name))}


bp = Blueprint("/bp")


@bp.websocket("/hello/{who}")
async def bp_hello(ws, who: str):
    await ws.send_text(f"hello {who}")
    await ws.close()


app.register_blueprint(bp)


@app.get("/plain")
def plain(request):
    return {"ok": True}


# A mounted Starlette app's WebSocket endpoint (door 3 inside door 2).
def _starlette_app() -> Any:
    from starlette.applications import Starlette
    from starlette.routing import WebSocketRoute

    async def shout(websocket: Any) -> None:
        await websocket.accept()
        text = await websocket.receive_text()
        await websocket.send_text(f"{text.upper()} at {websocket.scope['root_path']}")
        await websocket.close()

    return Starlette(routes=[WebSocketRoute("/shout", shout)])


app.mount("/legacy", _starlette_app())
