"""A bare ASGI WebSocket echo app, no framework: the floor for what an ASGI
server's WebSocket support costs (the WebSocket tables and Autobahn).

Every WebSocket path echoes: each text message comes back as text, each
binary message as binary. A plain HTTP request gets a 426 naming the
protocol, so the benchmark's readiness probe has something to read.

Serve it with ``uvicorn ws_echo_asgi:app``, ``granian --interface asgi
ws_echo_asgi:app``, ``hypercorn ws_echo_asgi:app`` or ``cello serve
ws_echo_asgi:app`` from this directory.
"""

UPGRADE_BODY = b"WebSocket only: connect with Upgrade: websocket\n"


async def _lifespan(receive, send):
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _echo(receive, send):
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.receive":
            text = message.get("text")
            if text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
        elif message["type"] == "websocket.disconnect":
            return


async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await _echo(receive, send)
    elif scope["type"] == "http":
        headers = [
            (b"content-type", b"text/plain"),
            (b"content-length", str(len(UPGRADE_BODY)).encode()),
            (b"upgrade", b"websocket"),
        ]
        await send({"type": "http.response.start", "status": 426, "headers": headers})
        await send({"type": "http.response.body", "body": UPGRADE_BODY})
    elif scope["type"] == "lifespan":
        await _lifespan(receive, send)
