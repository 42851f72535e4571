"""A Starlette WebSocket endpoint hosted by Cello's server (docs/asgi-server.md).

    python examples/websocket_hosted.py

Then connect to ws://127.0.0.1:8000/live/echo (any WebSocket client): each
text message comes back upper-cased. Plain HTTP still answers at /.
"""

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from cello import App, WebSocketConfig


async def shout(websocket: WebSocket) -> None:
    await websocket.accept()
    try:
        async for text in websocket.iter_text():
            await websocket.send_text(text.upper())
    except WebSocketDisconnect:
        pass


app = App()


@app.get("/")
def index() -> dict[str, str]:
    return {"websocket": "/live/echo"}


app.mount("/live", Starlette(routes=[WebSocketRoute("/echo", shout)]))

RUN_OPTIONS = {"websocket": WebSocketConfig(max_message_size=64 * 1024)}

if __name__ == "__main__":
    app.run(**RUN_OPTIONS)
