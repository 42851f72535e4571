"""A bare ASGI app that records what the server does, for the protocol
tests of door 3 (one endpoint per ASGI.md server point)."""

from __future__ import annotations

import asyncio
import json
import os

RECORD: dict[str, object] = {}
EVENTS: dict[str, asyncio.Event] = {}
FAIL_STARTUP = os.environ.get("PROTOCOL_FAIL_STARTUP") == "1"
NO_LIFESPAN = os.environ.get("PROTOCOL_NO_LIFESPAN") == "1"


def event(name: str) -> asyncio.Event:
    return EVENTS.setdefault(name, asyncio.Event())


async def respond(send, status: int, body: bytes, content_type: bytes = b"application/json"):
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type)]})  # fmt: skip
    await send({"type": "http.response.body", "body": body})


async def send_refused(send, headers: list) -> None:
    """Sends a start message the server must refuse, then answers with the error."""
    try:
        await send({"type": "http.response.start", "status": 200, "headers": headers})
    except ValueError as exc:
        await respond(send, 400, json.dumps({"refused": str(exc)}).encode())
    else:
        await send({"type": "http.response.body", "body": b"accepted"})


# A response a body longer than its Content-Length would smuggle onto a
# kept-alive connection, if the server sent the surplus.
INJECTED = b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected"

# Declared Content-Length, then the body messages (the last ends the body).
LENGTHS: dict[str, tuple[int, list[bytes]]] = {
    "longer": (5, [b"hello" + INJECTED]),
    "longer-streamed": (5, [b"hel", b"lo" + INJECTED, b""]),
    "shorter": (50, [b"short"]),
    "shorter-streamed": (50, [b"sho", b"rt"]),
    "exact-then-empty": (5, [b"hello", b""]),
    "head": (100, [b"abc"]),
}


async def send_with_length(send, case: str) -> None:
    """Sends a LENGTHS case, recording what ``send`` raised (or "sent")."""
    declared, chunks = LENGTHS[case]
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(declared).encode())]})  # fmt: skip
    try:
        for i, chunk in enumerate(chunks):
            more = i < len(chunks) - 1
            await send({"type": "http.response.body", "body": chunk, "more_body": more})
    except RuntimeError as exc:
        RECORD[f"length-{case}"] = str(exc)
        raise
    RECORD[f"length-{case}"] = "sent"


def describe_scope(scope: dict) -> dict:
    return {
        "keys": sorted(scope),
        "asgi": scope["asgi"],
        "http_version": scope["http_version"],
        "method": scope["method"],
        "scheme": scope["scheme"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "raw_path_type": type(scope["raw_path"]).__name__,
        "query_string": scope["query_string"].decode("latin-1"),
        "root_path": scope["root_path"],
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "header_types": sorted({type(k).__name__ + type(v).__name__ for k, v in scope["headers"]}),
        "client": [type(scope["client"][0]).__name__, type(scope["client"][1]).__name__],
        "server": [type(scope["server"][0]).__name__, type(scope["server"][1]).__name__],
        "state": scope.get("state"),
    }


async def lifespan(scope, receive, send):
    if NO_LIFESPAN:
        raise RuntimeError("this app does not do lifespan")
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            if FAIL_STARTUP:
                await send({"type": "lifespan.startup.failed", "message": "no database"})
                return
            scope["state"]["token"] = "from-lifespan"
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            print("protocol app: shutdown complete", flush=True)
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
        return
    path = scope["path"].removeprefix(scope["root_path"])  # the same when mounted
    if path.startswith("/scope"):
        described = json.dumps(describe_scope(scope)).encode()
        scope["state"]["mutated"] = True  # a shallow copy: must not leak to the next request
        await respond(send, 200, described)
    elif path == "/body":
        messages = []
        while True:
            message = await receive()
            messages.append([message["type"], len(message.get("body", b"")),
                             message.get("more_body", False)])  # fmt: skip
            if not message.get("more_body", False):
                break
        await respond(send, 200, json.dumps(messages).encode())
        # The body is consumed and the response complete: receive() now says
        # http.disconnect (never a second http.request).
        after = await receive()
        RECORD["after_body"] = after["type"]
    elif path == "/blocked-receive":
        await receive()  # the (empty) body
        waiter = asyncio.ensure_future(receive())
        await asyncio.sleep(0.05)
        RECORD["blocked_before_response"] = not waiter.done()
        await respond(send, 200, b"{}")
        RECORD["blocked_result"] = (await waiter)["type"]
    elif path == "/after-body":
        await respond(send, 200, json.dumps(RECORD.get("after_body")).encode())
    elif path == "/wait-disconnect":
        await receive()  # the (empty) body
        RECORD["disconnect"] = "waiting"
        message = await receive()  # the client drops the connection meanwhile
        RECORD["disconnect"] = message["type"]
    elif path == "/stream-then-wait":
        await receive()  # the (empty) body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        RECORD["streaming_disconnect"] = "waiting"
        message = await receive()  # the client leaves mid-response meanwhile
        RECORD["streaming_disconnect"] = message["type"]
    elif path == "/record":
        await respond(send, 200, json.dumps(RECORD, default=str).encode())
    elif path == "/flush":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first;", "more_body": True})
        await event("flush").wait()
        await send({"type": "http.response.body", "body": b"second;"})
    elif path == "/release-flush":
        event("flush").set()
        await respond(send, 200, b"{}")
    elif path == "/flood":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        RECORD["flood_sent"] = 0
        for _ in range(2000):
            await send({"type": "http.response.body", "body": b"x" * 65536, "more_body": True})
            RECORD["flood_sent"] = int(RECORD["flood_sent"]) + 1
        await send({"type": "http.response.body", "body": b""})
    elif path.startswith("/length/"):
        await send_with_length(send, path.removeprefix("/length/"))
    elif path == "/pending-send":
        # The client reads nothing and then leaves while a send waits for room.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(2000):
                returned = await send({"type": "http.response.body", "body": b"x" * 65536,
                                       "more_body": True})  # fmt: skip
                if returned is not None:
                    RECORD["pending_send_returned"] = repr(returned)
        except OSError:
            RECORD["pending_send_raised"] = True
    elif path == "/raise-when-left":
        # As Starlette does: the OSError from send() becomes the app's own error.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            while True:
                await send({"type": "http.response.body", "body": b"tick;", "more_body": True})
                await asyncio.sleep(0.02)
        except OSError:
            RECORD["raised_when_left"] = True
            raise LookupError("the client went away") from None
    elif path == "/send-after-disconnect":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        try:
            for _ in range(100_000):
                await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
                await asyncio.sleep(0.001)
        except OSError as exc:
            RECORD["send_error_is_oserror"] = isinstance(exc, OSError)
    elif path == "/header-shapes":
        # Tuples, lists and bytearrays are all two-item iterables of bytes.
        headers = [(b"x-tuple", b"1"), [b"x-list", b"2"], (bytearray(b"x-bytearray"), b"3")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})
    elif path == "/header-bytes":
        # Header values are bytes: Latin-1 text and names in any case go out
        # as sent (names lower-cased, as HTTP/1.1 servers commonly do).
        headers = [(b"X-Latin", b"caf\xe9"), (b"x-dup", b"1"), (b"x-dup", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{}"})
    elif path == "/bad-header-pair":
        await send_refused(send, [(b"x-one",)])
    elif path == "/bad-header-name":
        await send_refused(send, [(b"bad name", b"1")])
    elif path == "/bad-header-value":
        await send_refused(send, [(b"x-bad", b"a\r\nb")])
    elif path == "/no-response":
        return
    elif path == "/raise-before":
        raise RuntimeError("before the response")
    elif path == "/raise-after":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise RuntimeError("after the response started")
    else:
        await respond(send, 404, b"{}")
