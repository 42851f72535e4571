"""A Starlette WebSocket echo endpoint at ``/echo``: text comes back as
text, bytes as bytes. The Autobahn anchor (under uvicorn + websockets) and
the app Cello hosts in door 3 (``cello_mount_starlette_ws.py``, ``cello serve
starlette_ws_app:app``).
"""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            text = message.get("text")
            if text is not None:
                await websocket.send_text(text)
            else:
                await websocket.send_bytes(message.get("bytes") or b"")
    except WebSocketDisconnect:
        return


app = Starlette(routes=[WebSocketRoute("/echo", echo)])
