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
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

import httpx

from cello.lifespan import LifespanClient, LifespanFailed

__all__ = ["AsyncClient", "AsyncTestClient", "LifespanError", "TestClient", "lifespan"]

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
