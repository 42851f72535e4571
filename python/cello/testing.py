"""Testing Cello apps in-process, through the ASGI door, with httpx.

```python
from cello.testing import TestClient

def test_index():
    with TestClient(app) as client:          # runs startup/shutdown hooks
        assert client.get("/").json() == {"message": "Hello, World!"}
```

``AsyncTestClient`` is the same for ``async`` tests (``AsyncClient`` is
its older name, kept as an alias; ``cello.AsyncClient`` is the outgoing
HTTP client, a different thing). Both are ``httpx`` clients:
every httpx method and option works. Requests never touch a socket; the app
runs the same pipeline as under the native server.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Coroutine, Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import httpx

from cello.lifespan import LifespanClient, LifespanFailed
from cello.websocket import WebSocketDisconnect

__all__ = [
    "AsyncClient",
    "AsyncTestClient",
    "AsyncWebSocketTestSession",
    "LifespanError",
    "TestClient",
    "WebSocketDenialResponse",
    "WebSocketDisconnect",
    "WebSocketTestSession",
    "lifespan",
]

T = TypeVar("T")


#: The app's startup or shutdown hooks failed (``cello.lifespan.LifespanFailed``).
LifespanError = LifespanFailed


class lifespan:  # noqa: N801 - used like a function, as an async context manager
    """Runs an ASGI app's lifespan (startup on enter, shutdown on exit)."""

    def __init__(self, app: Any) -> None:
        self._client = LifespanClient(app)

    async def __aenter__(self) -> lifespan:
        await self._client.startup(required=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.shutdown(required=True)


class AsyncTestClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` wired to ``app`` through ``httpx.ASGITransport``.

    Used as ``async with``, it also runs the app's lifespan (startup and
    shutdown hooks), which ``ASGITransport`` alone does not.
    """

    def __init__(self, app: Any, base_url: str = "http://testserver", **kwargs: Any) -> None:
        super().__init__(transport=httpx.ASGITransport(app=app), base_url=base_url, **kwargs)
        self._app = app
        self._lifespan = lifespan(app)

    async def __aenter__(self) -> AsyncTestClient:
        await super().__aenter__()
        await self._lifespan.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            await self._lifespan.__aexit__(exc_type, exc, tb)
        finally:
            await super().__aexit__(exc_type, exc, tb)

    def websocket_connect(
        self,
        url: str,
        subprotocols: Iterable[str] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> AsyncWebSocketTestSession:
        """A WebSocket connection to the app, in process, on the test's own
        loop: ``async with client.websocket_connect("/ws") as ws``, then
        ``await ws.send_text(...)`` and ``await ws.receive_text()``.
        Entering raises as ``TestClient.websocket_connect``'s does."""
        return AsyncWebSocketTestSession(
            self._app, _websocket_scope(self, url, subprotocols, headers)
        )


#: The older name of ``AsyncTestClient``.
AsyncClient = AsyncTestClient


class _LoopThread:
    """An event loop in a daemon thread, for driving async code from sync tests."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join()
        self.loop.close()


class _SyncTransport(httpx.BaseTransport):
    def __init__(self, app: Any, loop: _LoopThread) -> None:
        self._inner = httpx.ASGITransport(app=app)
        self._loop = loop

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> httpx.Response:
            request.stream = httpx.ByteStream(request.read())
            response = await self._inner.handle_async_request(request)
            # The raw bytes: ``aread()`` would decode a Content-Encoding that
            # the outer client then decodes a second time.
            content = b"".join([chunk async for chunk in response.aiter_raw()])
            # A stream, not `content=`: httpx would add a Content-Length header.
            return httpx.Response(
                response.status_code, headers=response.headers,
                stream=httpx.ByteStream(content), extensions=response.extensions,
            )  # fmt: skip

        return self._loop.run(call())


class TestClient(httpx.Client):
    """A synchronous ``httpx.Client`` for ``app``, for plain ``def`` tests.

    The app runs on an event loop in a background thread; ``with
    TestClient(app)`` runs its lifespan too.
    """

    __test__ = False  # not a pytest test class

    def __init__(self, app: Any, base_url: str = "http://testserver", **kwargs: Any) -> None:
        self._loop = _LoopThread()
        self._app = app
        self._lifespan: lifespan | None = None
        super().__init__(transport=_SyncTransport(app, self._loop), base_url=base_url, **kwargs)

    def __enter__(self) -> TestClient:
        super().__enter__()

        async def start() -> lifespan:
            manager = lifespan(self._app)
            await manager.__aenter__()
            return manager

        self._lifespan = self._loop.run(start())
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        try:
            if self._lifespan is not None:
                self._loop.run(self._lifespan.__aexit__(exc_type, exc, tb))
        finally:
            super().__exit__(exc_type, exc, tb)
            self._loop.close()

    def websocket_connect(
        self,
        url: str,
        subprotocols: Iterable[str] | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        **kwargs: Any,
    ) -> WebSocketTestSession:
        """A WebSocket connection to the app, in process (Starlette's
        ``TestClient.websocket_connect``): use it as a context manager.
        Entering raises ``WebSocketDisconnect`` when the app closes instead
        of accepting, ``WebSocketDenialResponse`` when it denies the
        handshake with an HTTP response."""
        return WebSocketTestSession(
            self._app, self._loop, _websocket_scope(self, url, subprotocols, headers)
        )


def _websocket_scope(
    client: httpx.Client | httpx.AsyncClient,
    url: str,
    subprotocols: Iterable[str] | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
) -> dict[str, Any]:
    target = urlsplit(str(client.base_url.join(url)))
    scheme = "wss" if target.scheme in ("https", "wss") else "ws"
    port = target.port or (443 if scheme == "wss" else 80)
    host = target.hostname or "testserver"
    raw: list[tuple[bytes, bytes]] = [
        (b"host", (target.netloc or host).encode("latin-1")),
        (b"connection", b"upgrade"),
        (b"upgrade", b"websocket"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ]
    protocols = list(subprotocols or ())
    if protocols:
        raw.append((b"sec-websocket-protocol", ", ".join(protocols).encode("latin-1")))
    items = headers.items() if isinstance(headers, Mapping) else (headers or ())
    for name, value in items:
        raw.append((name.lower().encode("latin-1"), value.encode("latin-1")))
    cookies = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    if cookies:
        raw.append((b"cookie", cookies.encode("latin-1")))
    return {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "scheme": scheme,
        "server": (host, port),
        "client": ("testclient", 50000),
        "root_path": "",
        "path": unquote(target.path or "/"),
        "raw_path": (target.path or "/").encode("latin-1"),
        "query_string": target.query.encode("latin-1"),
        "headers": raw,
        "subprotocols": protocols,
        "extensions": {"websocket.http.response": {}},
        "state": {},
    }


class WebSocketDenialResponse(WebSocketDisconnect):
    """The app denied the handshake with an HTTP response (404, 401, 403...)."""

    def __init__(self, status_code: int, headers: list[tuple[bytes, bytes]], content: bytes):
        super().__init__(1008 if status_code in (401, 403) else 1000, f"HTTP {status_code}")
        self.status_code = status_code
        self.headers = httpx.Headers(headers)
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode()

    def json(self) -> Any:
        return json.loads(self.content)


class AsyncWebSocketTestSession:
    """One in-process WebSocket connection to an app, for ``async`` tests
    (see ``AsyncTestClient.websocket_connect``): ``async with`` it, then
    ``await`` its methods. Each receive waits for the app at most
    ``timeout`` seconds; ``receive_*`` raise ``WebSocketDisconnect`` once
    the app has closed the connection."""

    __test__ = False

    #: The longest a receive waits for the app before failing the test.
    timeout = 30.0

    def __init__(self, app: Any, scope: dict[str, Any]) -> None:
        self._app = app
        self.scope = scope
        self._to_app: asyncio.Queue[dict[str, Any]] | None = None
        self._from_app: asyncio.Queue[Any] | None = None
        self._task: asyncio.Future[None] | None = None
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._closed = False

    async def __aenter__(self) -> AsyncWebSocketTestSession:
        self._to_app = asyncio.Queue()
        self._from_app = asyncio.Queue()
        self._task = asyncio.ensure_future(self._serve(self._to_app, self._from_app))
        self._put({"type": "websocket.connect"})
        message = await self._get()
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = list(message.get("headers") or [])
            return self
        await self._finish()
        if kind == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason") or "")
        if kind == "websocket.http.response.start":
            body = b""
            while True:
                part = await self._get()
                if part["type"] != "websocket.http.response.body":
                    break
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            raise WebSocketDenialResponse(message["status"], message.get("headers", []), body)
        raise RuntimeError(f"the app sent {kind!r} instead of accepting the WebSocket")

    async def __aexit__(self, *exc: object) -> None:
        if not self._closed:
            self._closed = True
            self._put({"type": "websocket.disconnect", "code": 1000, "reason": ""})
        await self._finish()

    async def _serve(
        self, to_app: asyncio.Queue[dict[str, Any]], from_app: asyncio.Queue[Any]
    ) -> None:
        async def send(message: dict[str, Any]) -> None:
            if self._closed and message["type"] == "websocket.send":
                raise OSError("the test client closed the WebSocket")
            from_app.put_nowait(message)

        try:
            await self._app(self.scope, to_app.get, send)
        except BaseException as exc:
            from_app.put_nowait(exc)
            raise
        finally:
            from_app.put_nowait({"type": "cello.testing.app_done"})

    async def _finish(self) -> None:
        """Waits (bounded) for the app to return; what it raised was
        already handed to the receiving side."""
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.timeout)
        except TimeoutError:
            self._task.cancel()
        except BaseException:
            pass

    def _put(self, message: dict[str, Any]) -> None:
        if self._to_app is None:
            raise RuntimeError("use the session as a context manager first")
        self._to_app.put_nowait(message)

    async def _get(self) -> dict[str, Any]:
        if self._from_app is None:
            raise RuntimeError("use the session as a context manager first")
        try:
            message = await asyncio.wait_for(self._from_app.get(), self.timeout)
        except TimeoutError:
            raise TimeoutError("the app sent nothing on the WebSocket") from None
        if isinstance(message, BaseException):
            raise message
        if message["type"] == "cello.testing.app_done":
            self._from_app.put_nowait(message)  # every later receive sees it too
            raise WebSocketDisconnect(self.close_code or 1006, self.close_reason)
        return message  # type: ignore[no-any-return]

    # -- sending -----------------------------------------------------------

    async def send(self, message: dict[str, Any]) -> None:
        self._put(message)

    async def send_text(self, data: str) -> None:
        self._put({"type": "websocket.receive", "text": data})

    async def send_bytes(self, data: bytes) -> None:
        self._put({"type": "websocket.receive", "bytes": bytes(data)})

    async def send_json(self, data: Any, mode: str = "text") -> None:
        text = json.dumps(data, separators=(",", ":"))
        if mode == "binary":
            await self.send_bytes(text.encode())
        else:
            await self.send_text(text)

    async def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Closes from the client side (the app's ``recv()`` gets None)."""
        if not self._closed:
            self._closed = True
            self._put({"type": "websocket.disconnect", "code": code, "reason": reason or ""})

    # -- receiving -----------------------------------------------------------

    async def receive(self) -> dict[str, Any]:
        """The app's next ASGI message (``websocket.send`` or ``websocket.close``)."""
        return await self._get()

    async def _data(self) -> dict[str, Any]:
        message = await self._get()
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            self.close_reason = message.get("reason") or ""
            assert self._from_app is not None
            self._from_app.put_nowait({"type": "cello.testing.app_done"})
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        return message

    async def receive_text(self) -> str:
        message = await self._data()
        text = message.get("text")
        if text is None:
            raise AssertionError(f"expected a text message, got {message!r}")
        return text  # type: ignore[no-any-return]

    async def receive_bytes(self) -> bytes:
        message = await self._data()
        data = message.get("bytes")
        if data is None:
            raise AssertionError(f"expected a binary message, got {message!r}")
        return data  # type: ignore[no-any-return]

    async def receive_json(self, mode: str = "text") -> Any:
        message = await self._data()
        payload = message.get("text") if mode == "text" else message.get("bytes")
        if payload is None:
            raise AssertionError(f"expected a {mode} message, got {message!r}")
        return json.loads(payload)


class WebSocketTestSession:
    """One in-process WebSocket connection to an app (see
    ``TestClient.websocket_connect``): ``AsyncWebSocketTestSession`` run on
    the client's loop thread, so its methods block the test until the app
    answers; ``receive_*`` raise ``WebSocketDisconnect`` once the app has
    closed the connection."""

    __test__ = False

    def __init__(self, app: Any, loop: _LoopThread, scope: dict[str, Any]) -> None:
        self._loop = loop
        self._session = AsyncWebSocketTestSession(app, scope)

    @property
    def scope(self) -> dict[str, Any]:
        return self._session.scope

    @property
    def timeout(self) -> float:
        """The longest a receive waits for the app before failing the test."""
        return self._session.timeout

    @timeout.setter
    def timeout(self, seconds: float) -> None:
        self._session.timeout = seconds

    @property
    def accepted_subprotocol(self) -> str | None:
        return self._session.accepted_subprotocol

    @property
    def extra_headers(self) -> list[tuple[bytes, bytes]]:
        return self._session.extra_headers

    @property
    def close_code(self) -> int | None:
        return self._session.close_code

    @property
    def close_reason(self) -> str:
        return self._session.close_reason

    def __enter__(self) -> WebSocketTestSession:
        self._loop.run(self._session.__aenter__())
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.run(self._session.__aexit__(*exc))

    def send(self, message: dict[str, Any]) -> None:
        self._loop.run(self._session.send(message))

    def send_text(self, data: str) -> None:
        self._loop.run(self._session.send_text(data))

    def send_bytes(self, data: bytes) -> None:
        self._loop.run(self._session.send_bytes(data))

    def send_json(self, data: Any, mode: str = "text") -> None:
        self._loop.run(self._session.send_json(data, mode))

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Closes from the client side (the app's ``recv()`` gets None)."""
        self._loop.run(self._session.close(code, reason))

    def receive(self) -> dict[str, Any]:
        """The app's next ASGI message (``websocket.send`` or ``websocket.close``)."""
        return self._loop.run(self._session.receive())

    def receive_text(self) -> str:
        return self._loop.run(self._session.receive_text())

    def receive_bytes(self) -> bytes:
        return self._loop.run(self._session.receive_bytes())

    def receive_json(self, mode: str = "text") -> Any:
        return self._loop.run(self._session.receive_json(mode))
