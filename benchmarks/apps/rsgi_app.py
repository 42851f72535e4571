"""A bare RSGI app (granian's native Rust-to-Python protocol), no framework.

Serve it with ``granian --interface rsgi rsgi_app:app`` from this directory.
It mirrors ``raw_asgi.py``: routing is a string comparison, so the rows price
granian and the RSGI protocol. RSGI hands the app a scope and a protocol
object; ``await protocol()`` reads the whole request body and
``protocol.response_bytes`` sends status, headers and body in one call.
"""

import json
from urllib.parse import parse_qsl

from payloads import BIG

JSON_HEADERS = [("content-type", "application/json")]
INDEX_BODY = json.dumps({"message": "Hello, World!"}, separators=(",", ":")).encode()
NOT_FOUND_BODY = json.dumps({"detail": "Not Found"}, separators=(",", ":")).encode()
USERS_PREFIX = "/users/"


def _dumps(value):
    return json.dumps(value, separators=(",", ":")).encode()


async def app(scope, protocol):
    if scope.proto != "http":
        return
    path = scope.path
    if path == "/":
        protocol.response_bytes(200, JSON_HEADERS, INDEX_BODY)
        return
    if path == "/query":
        params = dict(parse_qsl(scope.query_string))
        protocol.response_bytes(200, JSON_HEADERS, _dumps({"a": params["a"], "b": params["b"]}))
        return
    if path == "/echo" and scope.method == "POST":
        protocol.response_bytes(200, JSON_HEADERS, _dumps(json.loads(await protocol())))
        return
    if path == "/big":
        protocol.response_bytes(200, JSON_HEADERS, _dumps(BIG))
        return
    if path.startswith(USERS_PREFIX):
        user_id = path[len(USERS_PREFIX) :]
        if user_id and "/" not in user_id:
            protocol.response_bytes(200, JSON_HEADERS, _dumps({"id": user_id}))
            return
    protocol.response_bytes(404, JSON_HEADERS, NOT_FOUND_BODY)
