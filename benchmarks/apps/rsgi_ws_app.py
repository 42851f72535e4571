"""A bare RSGI WebSocket echo app (granian's native protocol), no framework.

Serve it with ``granian --interface rsgi rsgi_ws_app:app`` from this
directory. Every WebSocket path echoes, text as text and bytes as bytes; a
plain HTTP request gets a 426, as in ``ws_echo_asgi.py``.
"""

UPGRADE_BODY = b"WebSocket only: connect with Upgrade: websocket\n"
# granian.rsgi.WebsocketMessageType, by value: close = 0, bytes = 1, string = 2.
CLOSE, BYTES, STRING = 0, 1, 2


async def app(scope, protocol):
    if scope.proto == "http":
        headers = [("content-type", "text/plain"), ("upgrade", "websocket")]
        protocol.response_bytes(426, headers, UPGRADE_BODY)
        return
    if scope.proto != "ws":
        return
    transport = await protocol.accept()
    while True:
        message = await transport.receive()
        if message.kind == STRING:
            await transport.send_str(message.data)
        elif message.kind == BYTES:
            await transport.send_bytes(message.data)
        else:
            break
    protocol.close(None)
