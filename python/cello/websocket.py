"""WebSocket connections: ``@app.websocket(path)`` handlers and their ``ws``.

Every door reaches a WebSocket route the same way: the server (Cello's own,
uvicorn, hypercorn, the test client) calls the app with an ASGI ``websocket``
scope. The handshake runs through the HTTP pipeline under the pseudo-method
``WEBSOCKET``: middleware, routing (path parameters and their converters),
guards and ``Depends`` work as on HTTP routes, and a refusal there (404, 401,
403, 422...) becomes the handshake's denial. The handler then gets a
``WebSocket``.

A handler may be ``async def`` (``await ws.recv()``) or plain ``def``
(``ws.recv()``): sync handlers run in a bounded pool of worker threads
(``CELLO_WEBSOCKET_THREADS``, default 64, one thread per open sync
connection). Every ``WebSocket`` method looks at the calling thread: on the
connection's event loop it returns an awaitable; in any other thread it blocks
until done. So a sync handler may send to an async handler's socket and the
other way round. See docs/websocket.md.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Callable, Coroutine, Iterable
from types import SimpleNamespace
from typing import Any, Protocol

from cello import _cello

__all__ = [
    "BroadcastBackend",
    "LocalBackend",
    "Rooms",
    "WebSocket",
    "WebSocketDisconnect",
    "WebSocketMessage",
    "WebSocketState",
]

logger = logging.getLogger("cello.websocket")

_asyncio_running_loop = asyncio._get_running_loop

# The handshake of the connection being set up: the route endpoint (run by
# the HTTP pipeline) puts the resolved handler arguments in it.
_HANDSHAKE: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "cello_websocket_handshake", default=None
)
# The WebSocket whose handler runs in this context: a send to a closed socket
# raises only there; sends to other clients' closed sockets are dropped.
_CURRENT: contextvars.ContextVar[WebSocket | None] = contextvars.ContextVar(
    "cello_websocket_current", default=None
)


class WebSocketDisconnect(Exception):
    """The connection is closed: ``code`` and ``reason`` say how (Starlette's name).

    Raised by ``receive_text()``/``receive_bytes()``/``receive_json()`` when
    the client leaves and by a send on the handler's own closed socket. A
    handler that lets it escape ends normally.
    """

    def __init__(self, code: int = 1000, reason: str | None = None) -> None:
        self.code = code
        self.reason = reason or ""
        super().__init__(code, self.reason)

    def __repr__(self) -> str:
        return f"WebSocketDisconnect(code={self.code}, reason={self.reason!r})"


class WebSocketState:
    """Where a connection is: ``CONNECTING`` (not accepted yet), ``CONNECTED``,
    ``DISCONNECTED``."""

    CONNECTING = 0
    CONNECTED = 1
    DISCONNECTED = 2


# -- messages ------------------------------------------------------------------


class _TextOrFactory:
    """``WebSocketMessage.text``: the constructor on the class
    (``WebSocketMessage.text("hi")``), the text on an instance."""

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:
            return _text_message
        return obj._text

    def __set__(self, obj: Any, value: Any) -> None:
        obj._text = value


def _text_message(text: str) -> WebSocketMessage:
    if not isinstance(text, str):
        raise TypeError(f"WebSocketMessage.text() takes a str, not {type(text).__name__}")
    return WebSocketMessage("text", text, None)


class WebSocketMessage:
    """One message: ``msg_type`` is ``"text"``, ``"binary"``, ``"ping"``,
    ``"pong"`` or ``"close"``; ``text`` holds a text message's str,
    ``data`` a binary message's bytes (the other one is None). A close
    message carries ``code`` and ``reason``.

    Build one with ``WebSocketMessage.text(s)``, ``.binary(b)``, ``.ping()``,
    ``.close(code=1000, reason="")`` and send it with ``ws.send(msg)``.
    """

    __slots__ = ("_text", "code", "data", "msg_type", "reason")

    text = _TextOrFactory()

    def __init__(
        self,
        msg_type: str,
        text: str | None = None,
        data: bytes | None = None,
        code: int = 1000,
        reason: str = "",
    ) -> None:
        self.msg_type = msg_type
        self._text = text
        self.data = data
        self.code = code
        self.reason = reason

    @staticmethod
    def binary(data: bytes | bytearray | memoryview) -> WebSocketMessage:
        return WebSocketMessage("binary", None, bytes(data))

    @staticmethod
    def ping(data: bytes = b"") -> WebSocketMessage:
        return WebSocketMessage("ping", None, bytes(data))

    @staticmethod
    def pong(data: bytes = b"") -> WebSocketMessage:
        return WebSocketMessage("pong", None, bytes(data))

    @staticmethod
    def close(code: int = 1000, reason: str = "") -> WebSocketMessage:
        return WebSocketMessage("close", None, None, code, reason)

    def is_text(self) -> bool:
        return self.msg_type == "text"

    def is_binary(self) -> bool:
        return self.msg_type == "binary"

    def is_ping(self) -> bool:
        return self.msg_type == "ping"

    def is_pong(self) -> bool:
        return self.msg_type == "pong"

    def is_close(self) -> bool:
        return self.msg_type == "close"

    def json(self) -> Any:
        """The message's text (or bytes) parsed as JSON."""
        return _cello.loads(self.data if self._text is None else self._text.encode())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, WebSocketMessage):
            return NotImplemented
        return (self.msg_type, self._text, self.data) == (other.msg_type, other._text, other.data)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        if self.msg_type == "text":
            return f"WebSocketMessage.text({self._text!r})"
        if self.msg_type == "close":
            return f"WebSocketMessage.close({self.code}, {self.reason!r})"
        return f"WebSocketMessage({self.msg_type!r}, data={self.data!r})"


# -- the connection ------------------------------------------------------------


class WebSocket:
    """One WebSocket connection, as a handler sees it.

    Documented Cello API: ``recv()`` (a ``WebSocketMessage``, or None once
    the connection is closed), ``send_text``, ``send_binary``, ``send(msg)``,
    ``close(code=1000, reason="")``, ``connected``. Starlette's names work
    too: ``accept()``, ``receive_text/bytes/json()`` (which raise
    ``WebSocketDisconnect`` when the client leaves), ``send_bytes``,
    ``send_json``, ``iter_text/bytes/json()`` and ``async for``.

    The handshake is accepted on the first send or receive unless the
    handler called ``accept()`` itself (to choose a subprotocol or add
    headers).
    """

    def __init__(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Any],
        send: Callable[[Any], Any],
        request: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        self.scope = scope
        self._receive = receive
        self._send = send
        self.request = request
        self._loop = loop if loop is not None else asyncio.get_running_loop()
        self.client_state = WebSocketState.CONNECTING
        self.close_code: int | None = None
        self.close_reason = ""
        self.accepted_subprotocol: str | None = None
        self._state: SimpleNamespace | None = None

    # -- how a call is run: awaitable on the loop, blocking elsewhere --------

    def _run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        running = _asyncio_running_loop()
        if running is self._loop:
            return coro
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        if running is not None:
            # Another event loop (another thread's): await it from there.
            return asyncio.wrap_future(future)
        return future.result()

    # -- request-like attributes ---------------------------------------------

    @property
    def connected(self) -> bool:
        """True from the accept until either side closes."""
        return self.client_state == WebSocketState.CONNECTED

    @property
    def path(self) -> str:
        return str(self.scope.get("path", ""))

    @property
    def path_params(self) -> dict[str, str]:
        return dict(self.request.params) if self.request is not None else {}

    params = path_params

    @property
    def query_params(self) -> Any:
        return self.request.query_params if self.request is not None else _cello.QueryParams()

    @property
    def headers(self) -> Any:
        if self.request is not None:
            return self.request.headers
        return _cello.Headers(
            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self.scope.get("headers", ())]
        )

    @property
    def cookies(self) -> dict[str, str]:
        return dict(self.request.cookies) if self.request is not None else {}

    @property
    def client(self) -> tuple[str, int] | None:
        client = self.scope.get("client")
        return (client[0], client[1]) if client else None

    @property
    def subprotocols(self) -> list[str]:
        return list(self.scope.get("subprotocols", ()))

    @property
    def url(self) -> str:
        """``ws://host/path?query`` as the client asked for it."""
        scheme = self.scope.get("scheme", "ws")
        host = None
        for name, value in self.scope.get("headers", ()):
            if name == b"host":
                host = value.decode("latin-1")
                break
        if host is None:
            server = self.scope.get("server")
            host = f"{server[0]}:{server[1]}" if server else "localhost"
        query = self.scope.get("query_string", b"")
        path = self.path  # ASGI: the path includes root_path
        return f"{scheme}://{host}{path}" + (f"?{query.decode('latin-1')}" if query else "")

    @property
    def context(self) -> Any:
        """The handshake request's context (what middleware put there: JWT
        claims, the request ID...)."""
        return self.request.context if self.request is not None else {}

    @property
    def state(self) -> SimpleNamespace:
        """A namespace of this connection's own, for the handler's use."""
        if self._state is None:
            self._state = SimpleNamespace()
        return self._state

    # -- accepting and closing -----------------------------------------------

    def accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[str | bytes, str | bytes]] | None = None,
    ) -> Any:
        """Accepts the handshake, choosing ``subprotocol`` (one the client
        offered) and adding ``headers`` to the 101 response."""
        return self._run(self._accept(subprotocol, headers))

    async def _accept(
        self,
        subprotocol: str | None = None,
        headers: Iterable[tuple[str | bytes, str | bytes]] | None = None,
    ) -> None:
        if self.client_state != WebSocketState.CONNECTING:
            if self.client_state == WebSocketState.CONNECTED:
                return  # accepting twice is harmless
            raise WebSocketDisconnect(self.close_code or 1006, self.close_reason)
        message: dict[str, Any] = {"type": "websocket.accept", "subprotocol": subprotocol}
        if headers:
            message["headers"] = [(_latin1(k).lower(), _latin1(v)) for k, v in headers]
        self.client_state = WebSocketState.CONNECTED
        self.accepted_subprotocol = subprotocol
        await self._send(message)

    def close(self, code: int = 1000, reason: str = "") -> Any:
        """Closes the connection with ``code`` and ``reason``; closing a
        closed connection does nothing."""
        return self._run(self._close(code, reason))

    async def _close(self, code: int = 1000, reason: str = "") -> None:
        if self.client_state == WebSocketState.DISCONNECTED:
            return
        self.client_state = WebSocketState.DISCONNECTED
        self.close_code = code
        self.close_reason = reason or ""
        try:
            await self._send({"type": "websocket.close", "code": code, "reason": reason or ""})
        except OSError:
            pass  # the client is gone already

    # -- receiving -----------------------------------------------------------

    def recv(self) -> Any:
        """The next message, or None once the connection is closed."""
        return self._run(self._recv())

    receive_message = recv

    async def _next(self) -> dict[str, Any] | None:
        """The next ``websocket.receive`` message; None when disconnected."""
        state = self.client_state
        if state != WebSocketState.CONNECTED:
            if state == WebSocketState.DISCONNECTED:
                return None
            await self._accept()
        message = await self._receive()
        if message["type"] == "websocket.receive":
            return message  # type: ignore[no-any-return]
        return self._ended(message)

    def _ended(self, message: dict[str, Any]) -> None:
        """A message other than ``websocket.receive``: the disconnect."""
        kind = message["type"]
        if kind == "websocket.disconnect":
            self.client_state = WebSocketState.DISCONNECTED
            self.close_code = message.get("code", 1005)
            self.close_reason = message.get("reason") or ""
            return None
        raise RuntimeError(f"unexpected ASGI message {kind!r} on a WebSocket")

    async def _recv(self) -> WebSocketMessage | None:
        if self.client_state == WebSocketState.CONNECTED:
            # The per-message path: one await of the server's receive.
            message = await self._receive()
            if message["type"] != "websocket.receive":
                message = self._ended(message)
        else:
            message = await self._next()
        if message is None:
            return None
        text = message.get("text")
        if text is not None:
            return WebSocketMessage("text", text, None)
        return WebSocketMessage("binary", None, message.get("bytes") or b"")

    def _disconnect(self) -> WebSocketDisconnect:
        return WebSocketDisconnect(self.close_code or 1005, self.close_reason)

    def receive(self) -> Any:
        """The next raw ASGI message (``websocket.receive`` or
        ``websocket.disconnect``), as Starlette's ``receive()``."""
        return self._run(self._raw())

    async def _raw(self) -> dict[str, Any]:
        message = await self._next()
        if message is None:
            return {
                "type": "websocket.disconnect",
                "code": self.close_code or 1005,
                "reason": self.close_reason,
            }
        return message

    def receive_text(self) -> Any:
        """The next text message; ``WebSocketDisconnect`` once closed."""
        return self._run(self._receive_text())

    async def _receive_text(self) -> str:
        message = await self._next()
        if message is None:
            raise self._disconnect()
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            return data.decode()  # type: ignore[no-any-return]
        return text  # type: ignore[no-any-return]

    def receive_bytes(self) -> Any:
        """The next binary message; ``WebSocketDisconnect`` once closed."""
        return self._run(self._receive_bytes())

    async def _receive_bytes(self) -> bytes:
        message = await self._next()
        if message is None:
            raise self._disconnect()
        data = message.get("bytes")
        if data is None:
            return (message.get("text") or "").encode()  # type: ignore[no-any-return]
        return data  # type: ignore[no-any-return]

    def receive_json(self, mode: str = "text") -> Any:
        """The next message parsed as JSON; ``WebSocketDisconnect`` once closed."""
        if mode not in ("text", "binary"):
            raise ValueError('receive_json() mode must be "text" or "binary"')
        return self._run(self._receive_json())

    async def _receive_json(self) -> Any:
        message = await self._next()
        if message is None:
            raise self._disconnect()
        text = message.get("text")
        return _cello.loads(text.encode() if text is not None else message.get("bytes") or b"")

    # -- sending -------------------------------------------------------------

    def send_text(self, text: str) -> Any:
        return self._run(self._send_message({"type": "websocket.send", "text": text}))

    def send_binary(self, data: bytes) -> Any:
        return self._run(self._send_message({"type": "websocket.send", "bytes": bytes(data)}))

    send_bytes = send_binary

    def send_json(self, data: Any, mode: str = "text") -> Any:
        """Sends ``data`` as JSON, in a text message (``mode="binary"``: a binary one)."""
        payload = _cello.dumps(data)
        if mode == "binary":
            message = {"type": "websocket.send", "bytes": payload}
        else:
            message = {"type": "websocket.send", "text": payload.decode()}
        return self._run(self._send_message(message))

    def send(self, message: WebSocketMessage | dict[str, Any]) -> Any:
        """Sends a ``WebSocketMessage`` (text, binary or close), or a raw
        ASGI message dict."""
        if isinstance(message, dict):
            return self._run(self._send_message(message))
        kind = message.msg_type
        if kind == "text":
            return self.send_text(message._text or "")
        if kind == "binary":
            return self.send_binary(message.data or b"")
        if kind == "close":
            return self.close(message.code, message.reason)
        if kind in ("ping", "pong"):
            # Control frames are the server's job in ASGI: nothing to send.
            return self._run(_nothing())
        raise ValueError(f"cannot send a WebSocketMessage of type {kind!r}")

    async def _send_message(self, message: dict[str, Any]) -> bool:
        """Sends ``message``; False when the connection is closed (raising
        ``WebSocketDisconnect`` instead when it is the handler's own)."""
        state = self.client_state
        if state != WebSocketState.CONNECTED:
            if state == WebSocketState.DISCONNECTED:
                return self._gone()
            await self._accept()
        try:
            await self._send(message)
        except OSError:
            self.client_state = WebSocketState.DISCONNECTED
            self.close_code = self.close_code or 1006
            return self._gone()
        return True

    def _gone(self) -> bool:
        if _CURRENT.get() is self:
            raise self._disconnect()
        return False

    # -- iteration -----------------------------------------------------------

    def __aiter__(self) -> AsyncIterator[WebSocketMessage]:
        return self._messages()

    async def _messages(self) -> AsyncIterator[WebSocketMessage]:
        while True:
            message = await self._recv()
            if message is None:
                return
            yield message

    def __iter__(self) -> Any:
        """``for msg in ws`` in a sync handler: every message until closed."""
        while True:
            message = self.recv()
            if message is None:
                return
            yield message

    async def iter_text(self) -> AsyncIterator[str]:
        try:
            while True:
                yield await self._receive_text()
        except WebSocketDisconnect:
            return

    async def iter_bytes(self) -> AsyncIterator[bytes]:
        try:
            while True:
                yield await self._receive_bytes()
        except WebSocketDisconnect:
            return

    async def iter_json(self) -> AsyncIterator[Any]:
        try:
            while True:
                yield await self._receive_json()
        except WebSocketDisconnect:
            return

    def __repr__(self) -> str:
        states = ("connecting", "connected", "disconnected")
        return f"<WebSocket {self.path} {states[self.client_state]}>"


async def _nothing() -> None:
    return None


def _latin1(value: str | bytes) -> bytes:
    return value.encode("latin-1") if isinstance(value, str) else bytes(value)


# -- rooms ---------------------------------------------------------------------


class BroadcastBackend(Protocol):
    """Where ``Rooms.broadcast`` sends a message. The in-process
    ``LocalBackend`` delivers it to this process's members at once; a
    pub/sub backend (Redis...) would publish it and, in each process, call
    ``rooms.deliver(room, message, exclude)`` for what arrives."""

    async def publish(
        self, rooms: Rooms, room: str, message: WebSocketMessage, exclude: frozenset[int]
    ) -> int: ...


class LocalBackend:
    """Delivers broadcasts to the members in this process only."""

    async def publish(
        self, rooms: Rooms, room: str, message: WebSocketMessage, exclude: frozenset[int]
    ) -> int:
        return await rooms.deliver(room, message, exclude)


class Rooms:
    """Named groups of connections to broadcast to::

        rooms = Rooms()

        @app.websocket("/rooms/{name}")
        async def room(ws, name: str):
            rooms.join(name, ws)
            try:
                async for msg in ws:
                    await rooms.broadcast(name, msg.text, exclude=ws)
            finally:
                rooms.leave(name, ws)

    Rooms live in the process: with ``run(workers=N)`` each worker process
    has its own, so a broadcast reaches the members connected to the same
    process (a pub/sub ``backend`` lifts that). A member that is gone is
    dropped from the room; the others still get the message.
    """

    def __init__(self, backend: BroadcastBackend | None = None) -> None:
        self._rooms: dict[str, dict[int, WebSocket]] = {}
        self.backend: BroadcastBackend = backend if backend is not None else LocalBackend()

    def join(self, room: str, ws: WebSocket) -> None:
        self._rooms.setdefault(room, {})[id(ws)] = ws

    def leave(self, room: str, ws: WebSocket) -> None:
        members = self._rooms.get(room)
        if members is not None:
            members.pop(id(ws), None)
            if not members:
                del self._rooms[room]

    def leave_all(self, ws: WebSocket) -> None:
        for room in list(self._rooms):
            self.leave(room, ws)

    def members(self, room: str) -> list[WebSocket]:
        return list(self._rooms.get(room, {}).values())

    def rooms(self) -> list[str]:
        return list(self._rooms)

    def __contains__(self, room: object) -> bool:
        return room in self._rooms

    def broadcast(
        self,
        room: str,
        message: Any,
        exclude: WebSocket | Iterable[WebSocket] | None = None,
    ) -> Any:
        """Sends ``message`` (a str as text, bytes as binary, a
        ``WebSocketMessage`` as is, anything else as JSON text) to every
        member of ``room`` but ``exclude``. Awaitable on an event loop,
        blocking in a sync handler; gives the number of members reached
        (in this process)."""
        msg = _as_message(message)
        if exclude is None:
            skip: frozenset[int] = frozenset()
        elif isinstance(exclude, WebSocket):
            skip = frozenset((id(exclude),))
        else:
            skip = frozenset(id(ws) for ws in exclude)
        coro = self.backend.publish(self, room, msg, skip)
        if _asyncio_running_loop() is not None:
            return coro
        members = self.members(room)
        if not members:
            return asyncio.run(coro)  # type: ignore[arg-type]
        # A sync handler: run the delivery on the members' event loop.
        return asyncio.run_coroutine_threadsafe(coro, members[0]._loop).result()

    async def deliver(self, room: str, message: WebSocketMessage, exclude: frozenset[int]) -> int:
        """Sends ``message`` to this process's members of ``room``; drops
        the ones that are gone. Gives how many got it."""
        members = [ws for key, ws in self._rooms.get(room, {}).items() if key not in exclude]
        if not members:
            return 0
        results = await asyncio.gather(
            *(_deliver_one(ws, message) for ws in members), return_exceptions=True
        )
        reached = 0
        for ws, result in zip(members, results, strict=True):
            if result is True:
                reached += 1
            else:
                if isinstance(result, BaseException):
                    logger.debug("broadcast to %r failed", ws, exc_info=result)
                self.leave(room, ws)
        return reached


async def _deliver_one(ws: WebSocket, message: WebSocketMessage) -> bool:
    if ws.client_state == WebSocketState.DISCONNECTED:
        return False
    asgi: dict[str, Any]
    if message.msg_type == "text":
        asgi = {"type": "websocket.send", "text": message._text}
    elif message.msg_type == "binary":
        asgi = {"type": "websocket.send", "bytes": message.data}
    else:
        raise ValueError(f"cannot broadcast a {message.msg_type!r} message")
    token = _CURRENT.set(None)  # a dead member never raises into the sender
    try:
        if _asyncio_running_loop() is ws._loop:
            return await ws._send_message(asgi)
        future = asyncio.run_coroutine_threadsafe(ws._send_message(asgi), ws._loop)
        return await asyncio.wrap_future(future)
    finally:
        _CURRENT.reset(token)


def _as_message(message: Any) -> WebSocketMessage:
    if isinstance(message, WebSocketMessage):
        return message
    if isinstance(message, str):
        return WebSocketMessage("text", message, None)
    if isinstance(message, (bytes, bytearray, memoryview)):
        return WebSocketMessage("binary", None, bytes(message))
    return WebSocketMessage("text", _cello.dumps(message).decode(), None)
