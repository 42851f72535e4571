"""The app of the WebSocket conformance suite: echo routes (sync and async),
path parameters, a subprotocol, closes with a code and reason, a failing
handler, a guarded route, and a mounted Starlette WebSocket endpoint."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute

from cello import App
from cello.guards import Authenticated

app = App()


@app.websocket("/echo")
async def echo(ws):
    async for message in ws:
        if message.is_text():
            await ws.send_text(message.text)
        else:
            await ws.send_binary(message.data)


@app.websocket("/sync-echo")
def sync_echo(ws):
    while (message := ws.recv()) is not None:
        ws.send_text(f"sync: {message.text}")


@app.websocket("/items/{item_id:int}")
async def item(ws, item_id: int):
    await ws.send_json({"item_id": item_id, "q": ws.query_params.get("q")})
    await ws.close(4000, "done")


@app.websocket("/chat")
async def chat(ws):
    chosen = "chat.v2" if "chat.v2" in ws.subprotocols else None
    await ws.accept(subprotocol=chosen)
    await ws.send_text(f"protocol: {chosen}")
    await ws.close()


@app.websocket("/fail")
async def fail(ws):
    await ws.send_text("about to fail")
    raise RuntimeError("the handler broke")


@app.websocket("/private", guards=[Authenticated()])
async def private(ws):
    await ws.send_text("in")


async def starlette_echo(websocket):
    await websocket.accept()
    async for text in websocket.iter_text():
        await websocket.send_text(f"mounted: {text}")
    await websocket.close()


app.mount("/star", Starlette(routes=[WebSocketRoute("/echo", starlette_echo)]))
