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
import queue
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
    client: httpx.Client,
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


class WebSocketTestSession:
    """One in-process WebSocket connection to an app (see
    ``TestClient.websocket_connect``). Its methods block the test until the
    app answers; ``receive_*`` raise ``WebSocketDisconnect`` once the app
    has closed the connection."""

    __test__ = False

    #: The longest a receive waits for the app before failing the test.
    timeout = 30.0

    def __init__(self, app: Any, loop: _LoopThread, scope: dict[str, Any]) -> None:
        self._app = app
        self._loop = loop
        self.scope = scope
        self._to_app: asyncio.Queue[dict[str, Any]] | None = None
        self._from_app: queue.Queue[Any] = queue.Queue()
        self._task: Any = None
        self.accepted_subprotocol: str | None = None
        self.extra_headers: list[tuple[bytes, bytes]] = []
        self.close_code: int | None = None
        self.close_reason = ""
        self._closed = False

    def __enter__(self) -> WebSocketTestSession:
        async def start() -> None:
            self._to_app = asyncio.Queue()
            self._task = asyncio.ensure_future(self._serve())

        self._loop.run(start())
        self._put({"type": "websocket.connect"})
        message = self._get()
        kind = message["type"]
        if kind == "websocket.accept":
            self.accepted_subprotocol = message.get("subprotocol")
            self.extra_headers = list(message.get("headers") or [])
            return self
        self._finish()
        if kind == "websocket.close":
            raise WebSocketDisconnect(message.get("code", 1000), message.get("reason") or "")
        if kind == "websocket.http.response.start":
            body = b""
            while True:
                part = self._get()
                if part["type"] != "websocket.http.response.body":
                    break
                body += part.get("body", b"")
                if not part.get("more_body", False):
                    break
            raise WebSocketDenialResponse(message["status"], message.get("headers", []), body)
        raise RuntimeError(f"the app sent {kind!r} instead of accepting the WebSocket")

    def __exit__(self, *exc: object) -> None:
        if not self._closed:
            self._closed = True
            self._put({"type": "websocket.disconnect", "code": 1000, "reason": ""})
        self._finish()

    async def _serve(self) -> None:
        assert self._to_app is not None
        to_app = self._to_app

        async def receive() -> dict[str, Any]:
            return await to_app.get()

        async def send(message: dict[str, Any]) -> None:
            if self._closed and message["type"] == "websocket.send":
                raise OSError("the test client closed the WebSocket")
            self._from_app.put(message)

        try:
            await self._app(self.scope, receive, send)
        except BaseException as exc:
            self._from_app.put(exc)
            raise
        finally:
            self._from_app.put({"type": "cello.testing.app_done"})

    def _finish(self) -> None:
        async def wait() -> None:
            if self._task is None:
                return
            try:
                await asyncio.wait_for(asyncio.shield(self._task), self.timeout)
            except TimeoutError:
                self._task.cancel()
            except BaseException:
                pass

        self._loop.run(wait())

    def _put(self, message: dict[str, Any]) -> None:
        assert self._to_app is not None
        self._loop.loop.call_soon_threadsafe(self._to_app.put_nowait, message)

    def _get(self) -> dict[str, Any]:
        try:
            message = self._from_app.get(timeout=self.timeout)
        except queue.Empty:
            raise TimeoutError("the app sent nothing on the WebSocket") from None
        if isinstance(message, BaseException):
            raise message
        if message["type"] == "cello.testing.app_done":
            self._from_app.put(message)  # every later receive sees it too
            raise WebSocketDisconnect(self.close_code or 1006, self.close_reason)
        return message  # type: ignore[no-any-return]

    # -- sending -----------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        self._put(message)

    def send_text(self, data: str) -> None:
        self._put({"type": "websocket.receive", "text": data})

    def send_bytes(self, data: bytes) -> None:
        self._put({"type": "websocket.receive", "bytes": bytes(data)})

    def send_json(self, data: Any, mode: str = "text") -> None:
        text = json.dumps(data, separators=(",", ":"))
        if mode == "binary":
            self.send_bytes(text.encode())
        else:
            self.send_text(text)

    def close(self, code: int = 1000, reason: str | None = None) -> None:
        """Closes from the client side (the app's ``recv()`` gets None)."""
        if not self._closed:
            self._closed = True
            self._put({"type": "websocket.disconnect", "code": code, "reason": reason or ""})

    # -- receiving -----------------------------------------------------------

    def receive(self) -> dict[str, Any]:
        """The app's next ASGI message (``websocket.send`` or ``websocket.close``)."""
        return self._get()

    def _data(self) -> dict[str, Any]:
        message = self._get()
        if message["type"] == "websocket.close":
            self.close_code = message.get("code", 1000)
            self.close_reason = message.get("reason") or ""
            self._from_app.put({"type": "cello.testing.app_done"})
            raise WebSocketDisconnect(self.close_code, self.close_reason)
        return message

    def receive_text(self) -> str:
        message = self._data()
        text = message.get("text")
        if text is None:
            raise AssertionError(f"expected a text message, got {message!r}")
        return text  # type: ignore[no-any-return]

    def receive_bytes(self) -> bytes:
        message = self._data()
        data = message.get("bytes")
        if data is None:
            raise AssertionError(f"expected a binary message, got {message!r}")
        return data  # type: ignore[no-any-return]

    def receive_json(self, mode: str = "text") -> Any:
        message = self._data()
        payload = message.get("text") if mode == "text" else message.get("bytes")
        if payload is None:
            raise AssertionError(f"expected a {mode} message, got {message!r}")
        return json.loads(payload)
