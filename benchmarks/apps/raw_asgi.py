"""A bare ASGI 3 app with no framework: the floor for what an ASGI server costs.

Serve it with ``granian --interface asgi raw_asgi:app`` or ``uvicorn raw_asgi:app``
from this directory. Routing is a string comparison, so the numbers price the
server and the ASGI protocol, not a router.
"""

import json
from urllib.parse import parse_qsl

from payloads import BIG

JSON_HEADERS = [(b"content-type", b"application/json")]
INDEX_BODY = json.dumps({"message": "Hello, World!"}, separators=(",", ":")).encode()
NOT_FOUND_BODY = json.dumps({"detail": "Not Found"}, separators=(",", ":")).encode()
USERS_PREFIX = "/users/"


async def _lifespan(receive, send):
    # Servers that speak the lifespan protocol wait for these replies before
    # accepting connections; answering them keeps startup quiet and fast.
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _respond(send, status, body):
    headers = [*JSON_HEADERS, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _dumps(value):
    return json.dumps(value, separators=(",", ":")).encode()


async def _read_body(receive):
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/":
        await _respond(send, 200, INDEX_BODY)
        return
    if path == "/query":
        params = dict(parse_qsl(scope["query_string"].decode("latin-1")))
        await _respond(send, 200, _dumps({"a": params["a"], "b": params["b"]}))
        return
    if path == "/echo" and scope["method"] == "POST":
        await _respond(send, 200, _dumps(json.loads(await _read_body(receive))))
        return
    if path == "/big":
        await _respond(send, 200, _dumps(BIG))
        return
    if path.startswith(USERS_PREFIX):
        user_id = path[len(USERS_PREFIX) :]
        if user_id and "/" not in user_id:
            await _respond(send, 200, _dumps({"id": user_id}))
            return
    await _respond(send, 404, NOT_FOUND_BODY)
