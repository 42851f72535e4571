"""Helpers the native module calls: small Python types and asyncio plumbing.

Not public API; the native pipeline imports this module once.
"""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from cello.exceptions import ClientDisconnected

T = TypeVar("T")

error_log = logging.getLogger("cello.error")


class CallableStr(str):
    """A str that can also be called, for attributes documented both as
    properties (``request.host``) and as methods (``request.host()``)."""

    __slots__ = ()

    def __call__(self) -> str:
        return str(self)


class Context(dict[str, Any]):
    """``request.context``: a dict, plus the ``set``/``has``/``delete``
    spelling used by Cello's documentation."""

    def set(self, key: str, value: Any) -> None:
        self[key] = value

    def has(self, key: str) -> bool:
        return key in self

    def delete(self, key: str) -> None:
        self.pop(key, None)


def log_exception(exc: BaseException, request: Any) -> None:
    error_log.error(
        "Exception in handler for %s %s",
        request.method,
        request.path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


def format_exception(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def eager_starter(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Coroutine[Any, Any, T]], asyncio.Task[T]]:
    """Returns ``start(coro) -> Task`` that runs the coroutine's first step now.

    A handler that never suspends then finishes inside ``start`` without a
    trip through the event loop, yet runs inside a real Task, so
    ``asyncio.current_task()``, ``asyncio.timeout()`` and anyio cancel scopes
    behave as they do anywhere else.
    """
    from cello import _cello

    if _cello.fast_paths()["eager_step"]:
        try:
            vars(loop)
        except TypeError:
            # Without asyncio's eager start (3.11), the Task is stepped by
            # shadowing loop.call_soon on the instance; a loop without
            # __dict__ gets plain tasks.
            return loop.create_task
    return _cello.EagerStart(loop)


_END = object()


async def pump(source: Any, sink: Any) -> None:
    """Feeds a streamed response body into ``sink`` chunk by chunk.

    Async iterables run on the event loop; sync iterators are advanced in a
    worker thread so a slow generator cannot stall other requests.
    """
    try:
        if hasattr(source, "__aiter__"):
            async for chunk in source:
                await _send(sink, chunk)
        elif isinstance(source, list | tuple):
            for chunk in source:
                await _send(sink, chunk)
        else:
            iterator = iter(source)
            loop = asyncio.get_running_loop()
            while (chunk := await loop.run_in_executor(None, next, iterator, _END)) is not _END:
                await _send(sink, chunk)
    except ClientDisconnected:
        await _close_source(source)
    except asyncio.CancelledError:
        sink.abort()
        raise
    except BaseException as exc:
        error_log.error(
            "Exception while streaming a response",
            exc_info=(type(exc), exc, exc.__traceback__),
        )
        sink.abort()
    else:
        closing = sink.close()
        if closing is not None:
            try:
                await closing
            except ClientDisconnected:
                pass


async def _send(sink: Any, chunk: Any) -> None:
    pending = sink.send(chunk)
    if pending is not None and not await pending:
        raise ClientDisconnected("client disconnected during a streamed response")


async def _close_source(source: Any) -> None:
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        await aclose()
        return
    close = getattr(source, "close", None)
    if close is not None:
        close()


def log_hosted_exception(exc: BaseException, method: str, path: str) -> None:
    error_log.error(
        "Exception in ASGI application for %s %s",
        method,
        path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )
