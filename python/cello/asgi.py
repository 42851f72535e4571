"""Door 2: a Cello ``App`` as an ASGI 3 application.

``App.__call__`` lands here. This module only speaks ASGI: it opens an exchange
for the scope in Rust (middleware and routing, as on the native server), hands
the request to a mounted app or reads the body from ``receive`` (enforcing the
body limit as it goes) for the native pipeline, and sends what comes back as
``http.response.start`` and ``http.response.body`` messages.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from typing import Any

from cello import _cello
from cello._support import close_source, eager_starter, pump
from cello.exceptions import ClientDisconnected
from cello.types import Message, Receive, Scope, Send, ServedApp
from cello.websocket import _HANDSHAKE, WebSocket

__all__ = ["AsgiAdapter"]


class _Disconnected(Exception):
    """The client left before the request body was complete."""


class AsgiAdapter:
    """Serves ``http`` and ``lifespan`` scopes for one ``App``."""

    def __init__(self, app: ServedApp) -> None:
        self._app = app
        self._doors: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _cello.AsgiDoor] = (
            weakref.WeakKeyDictionary()
        )

    def forget_doors(self) -> None:
        """Drops the doors opened so far, so the next call sees new middleware."""
        self._doors.clear()

    def _door(self) -> _cello.AsgiDoor:
        loop = asyncio.get_running_loop()
        door = self._doors.get(loop)
        if door is None:
            door = _cello.AsgiDoor(self._app._core, loop, eager_starter(loop))
            self._doors[loop] = door
        return door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            raise ValueError(f"Cello cannot handle ASGI scope type {kind!r}")

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Middleware and routing run in Rust, as on the native server.
        exchange = self._door().begin(scope)
        mounted = exchange.mount(scope)
        if mounted is not None:
            app, mounted_scope = mounted
            await app(
                mounted_scope, receive, _LayeredSend(exchange, send) if exchange.layered else send
            )
            return
        body: bytes | _cello.BodySpool | None = b""
        if exchange.wants_body:
            try:
                if exchange.spools_body:
                    body = await _spool_body(scope, receive, exchange.body_limit)
                else:
                    body = await _read_body(scope, receive, exchange.body_limit)
            except _Disconnected:
                return
        future: asyncio.Future[
            tuple[int, list[tuple[bytes, bytes]], bytes, Any, _cello.AfterResponse | None]
        ] = asyncio.get_running_loop().create_future()
        # Cancelling this call cancels the future, and with it the handler's Task.
        exchange.run(body, future)
        status, headers, payload, stream, after = await future
        try:
            if exchange.layered:
                status, headers, whole = exchange.finish(
                    status, headers, payload if stream is None else None
                )
                if whole is not None:
                    if stream is not None:
                        await close_source(stream)  # a layer answered without it (a 304)
                    payload, stream = whole, None
            await send({"type": "http.response.start", "status": status, "headers": headers})
            if stream is None:
                await send({"type": "http.response.body", "body": payload})
                return
            sink = _AsgiSink(send, receive, exchange if exchange.encoding else None)
            await pump(stream, sink)
            if sink.aborted:
                # Raising after the response started makes the server drop the
                # connection, so the client sees the body is incomplete.
                raise RuntimeError("the streamed response failed; see the logged error")
        finally:
            # The request's after-response callbacks: the response is sent,
            # or failed to be, so the request is over either way.
            if after is not None:
                after.start()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake runs the HTTP pipeline under the method
        ``WEBSOCKET`` (middleware, routing, guards, ``Depends``); its route's
        endpoint hands the handler's arguments over, and the handler then
        serves the connection. Anything else the pipeline answers (404, 401,
        403...) denies the handshake."""
        connect = await receive()
        if connect["type"] != "websocket.connect":
            return  # the client left before the handshake
        http_scope = dict(scope)
        http_scope["type"] = "http"
        http_scope["method"] = "WEBSOCKET"
        http_scope["scheme"] = "https" if scope.get("scheme") == "wss" else "http"
        http_scope.setdefault("http_version", "1.1")
        exchange = self._door().begin(http_scope)
        mounted = exchange.mount(scope)
        if mounted is not None:
            app, mounted_scope = mounted
            await app(mounted_scope, _Replay(connect, receive), send)
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[
            tuple[int, list[tuple[bytes, bytes]], bytes, Any, _cello.AfterResponse | None]
        ] = loop.create_future()
        slot: list[Any] = []
        token = _HANDSHAKE.set(slot)
        try:
            exchange.run(b"", future)
            status, headers, payload, stream, after = await future
        finally:
            _HANDSHAKE.reset(token)
        try:
            if stream is not None:
                await close_source(stream)
                payload = b""
            if not slot:
                if exchange.layered:
                    status, headers, whole = exchange.finish(status, headers, payload)
                    if whole is not None:
                        payload = whole
                await _deny(scope, send, status, headers, payload)
                return
            route, request, arguments = slot[0]
            ws = WebSocket(scope, receive, send, request, loop)
            await route.serve(ws, arguments)
        finally:
            # Yield dependencies and after-response work end with the connection.
            if after is not None:
                after.start()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._app._run_hooks("startup")
                except BaseException as exc:
                    await send({"type": "lifespan.startup.failed", "message": _describe(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self._app._run_hooks("shutdown")
                except BaseException as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": _describe(exc)})
                    return
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _deny(
    scope: Scope, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    """Refuses a WebSocket handshake: with the ``websocket.http.response``
    extension, the HTTP response the pipeline made (a problem+json 404,
    401, 403...); without it, a close before accept (the server answers
    403), with 1008 (policy violation) for 401/403."""
    if "websocket.http.response" in (scope.get("extensions") or {}):
        await send({"type": "websocket.http.response.start", "status": status, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    code = 1008 if status in (401, 403) else 1000
    await send({"type": "websocket.close", "code": code})


class _Replay:
    """A ``receive`` that gives ``first`` again before the rest, for a
    mounted app that must see the ``websocket.connect`` Cello read."""

    def __init__(self, first: Message, receive: Receive) -> None:
        self._first: Message | None = first
        self._receive = receive

    async def __call__(self) -> Message:
        first, self._first = self._first, None
        if first is not None:
            return first
        return await self._receive()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it is known to exceed ``limit``."""
    declared = _declared_length(scope)
    if declared is not None and declared > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _spool_body(scope: Scope, receive: Receive, limit: int) -> _cello.BodySpool | None:
    """A multipart body, as door 1 keeps it: in memory up to a threshold,
    then in a temporary file, so an upload is never held whole in memory.
    None once it is known to exceed ``limit``."""
    declared = _declared_length(scope)
    if declared is not None and declared > limit:
        return None
    spool = _cello.BodySpool()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        if chunk:
            if len(spool) + len(chunk) > limit:
                return None
            spool.write(chunk)
        if not message.get("more_body", False):
            return spool


class _LayeredSend:
    """A mounted app's ``send``, passing its response through the middleware.

    The response start is held back until the first body message shows
    whether the body comes whole (the layers may then replace it, as
    compression does) or streams (its chunks then pass the layers' encoders).
    """

    def __init__(self, exchange: _cello.Exchange, send: Send) -> None:
        self._exchange = exchange
        self._send = send
        self._start: Message | None = None
        self._state = "head"  # then "streaming" or "done"

    async def __call__(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            self._start = message
            return
        if kind != "http.response.body":
            await self._send(message)
            return
        if self._state == "done":
            return  # the layers answered without the rest of this body
        more = bool(message.get("more_body", False))
        body = bytes(message.get("body", b""))
        if self._state == "head":
            start, self._start = self._start, None
            if start is None:
                raise RuntimeError("http.response.body sent before http.response.start")
            status, headers, whole = self._exchange.finish(
                start["status"], start.get("headers", []), None if more else body
            )
            await self._send({**start, "status": status, "headers": headers})
            if whole is not None:
                self._state = "done"
                await self._send({"type": "http.response.body", "body": whole})
                return
            self._state = "streaming"
        if self._exchange.encoding:
            body = self._exchange.encode(body)
            if not more:
                body += self._exchange.end()
        if body or not more:
            await self._send({"type": "http.response.body", "body": body, "more_body": more})


class _AsgiSink:
    """``pump``'s sink for door 2: each chunk becomes an ``http.response.body``."""

    def __init__(self, send: Send, receive: Receive, encoder: _cello.Exchange | None) -> None:
        self._send = send
        self._receive = receive
        self._encoder = encoder
        self._listener: asyncio.Task[None] | None = None
        self.aborted = False

    def watch(self, gone: asyncio.Future[bool]) -> None:
        """Resolves ``gone`` with False when the server reports the client
        gone before the body ends: a server on spec 2.3 (uvicorn) says so only
        through ``receive()``, its ``send()`` ignoring a departed client."""

        async def listen() -> None:
            while (await self._receive())["type"] != "http.disconnect":
                pass
            if not gone.done():
                gone.set_result(False)

        self._listener = asyncio.ensure_future(listen())

    def _unwatch(self) -> None:
        if self._listener is not None:
            self._listener.cancel()

    def send(self, chunk: Any) -> Awaitable[bool] | None:
        data = _cello.chunk_to_bytes(chunk)
        if data and self._encoder is not None:
            data = self._encoder.encode(data)
        if not data:
            return None
        return self._body(data, more=True)

    async def _body(self, data: bytes, more: bool) -> bool:
        try:
            await self._send({"type": "http.response.body", "body": data, "more_body": more})
        except OSError as exc:
            raise ClientDisconnected("client disconnected during a streamed response") from exc
        return True

    def close(self) -> Awaitable[bool]:
        self._unwatch()
        tail = self._encoder.end() if self._encoder is not None else b""
        return self._body(tail, more=False)

    def abort(self) -> None:
        self._unwatch()
        self.aborted = True
