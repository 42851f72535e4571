"""Helpers the native module calls: small Python types and asyncio plumbing.

Not public API; the native pipeline imports this module once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine
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


#: Told of every exception that became a 500 (``cello._tracing`` records it
#: on the request's span); None until telemetry is enabled.
exception_observer: Callable[[BaseException], None] | None = None


def log_exception(exc: BaseException, request: Any) -> None:
    if exception_observer is not None:
        exception_observer(exc)
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
    worker thread so a slow generator cannot stall other requests. When the
    client leaves, the pump is cancelled wherever it waits (a generator idle
    between events included) and the source is closed, so its ``finally``
    runs now rather than at its next chunk.
    """
    heartbeat = getattr(source, "__cello_heartbeat__", None)
    if heartbeat is not None and not getattr(sink, "beats", False):
        source = with_heartbeat(source, *heartbeat)
    gone = _watch_client(sink)
    try:
        if hasattr(source, "__aiter__"):
            async for chunk in source:
                await _send(sink, chunk)
        elif isinstance(source, list | tuple):
            for chunk in source:
                await _send(sink, chunk)
        else:
            iterator = iter(source)
            while (chunk := await _next_in_thread(iterator)) is not _END:
                await _send(sink, chunk)
    except ClientDisconnected:
        await close_source(source)
    except asyncio.CancelledError:
        left = gone is not None and gone.done()
        if not left:
            sink.abort()  # cancelled by someone else: the client is still there
        await close_source(source)
        if not left:
            raise
        # The cancel was the pump's own doing: the task it ran in (door 2
        # awaits the pump inside the ASGI call) carries on uncancelled.
        task = asyncio.current_task()
        if task is not None:
            task.uncancel()
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


def _watch_client(sink: Any) -> asyncio.Future[bool] | None:
    """Cancels the running pump when the client leaves, if ``sink`` can tell.

    Returns the future the sink resolves then, or None.
    """
    watch = getattr(sink, "watch", None)
    task = asyncio.current_task()
    if watch is None or task is None:
        return None
    gone: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
    gone.add_done_callback(lambda _: task.cancel())
    watch(gone)
    return gone


async def _next_in_thread(iterator: Any) -> Any:
    """``next(iterator, _END)`` in a worker thread.

    A thread cannot be interrupted: cancelled mid-step, the iterator is
    closed once the step returns instead.
    """
    loop = asyncio.get_running_loop()
    step = loop.run_in_executor(None, next, iterator, _END)
    try:
        return await asyncio.shield(step)
    except asyncio.CancelledError:
        close = getattr(iterator, "close", None)
        if close is not None:
            step.add_done_callback(lambda _: loop.run_in_executor(None, close))
        raise


async def _send(sink: Any, chunk: Any) -> None:
    pending = sink.send(chunk)
    if pending is not None and not await pending:
        raise ClientDisconnected("client disconnected during a streamed response")


async def with_heartbeat(source: Any, every: float, beat: bytes) -> AsyncIterator[bytes]:
    """The chunks of ``source``, with ``beat`` added whenever ``every``
    seconds pass without one: a stream's keepalive where the server does not
    send it itself (the native server does: ``StreamSink.beats``).

    One task pulls the source into a one-slot queue and one timer per quiet
    period adds the beat: racing every chunk against a timer of its own cost
    twice the CPU per chunk.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
    last_sent = loop.time()

    async def pull() -> None:
        try:
            async for chunk in source:
                await queue.put(chunk)
            await queue.put(_END)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # handed to the stream, which fails
            await queue.put(_Failed(exc))

    def tick() -> None:
        nonlocal timer
        quiet = loop.time() - last_sent
        if quiet >= every and queue.empty():
            queue.put_nowait(beat)
            quiet = 0.0
        timer = loop.call_later(max(every - quiet, 0.0), tick)

    puller = asyncio.ensure_future(pull())
    timer = loop.call_later(every, tick)
    try:
        while True:
            chunk = await queue.get()
            if chunk is _END:
                return
            if isinstance(chunk, _Failed):
                raise chunk.error
            yield chunk
            last_sent = loop.time()
    finally:
        timer.cancel()
        # The client left (or the stream failed): the pull in flight is
        # cancelled, which closes the source at the await it is idle in.
        if not puller.done():
            puller.cancel()
            await asyncio.wait((puller,))
        await close_source(source)


class _Failed:
    """The source raised: the stream re-raises it where it reads the queue."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


async def close_source(source: Any) -> None:
    if getattr(source, "gi_running", False):
        return  # a step is still running in its thread: _next_in_thread closes it
    aclose = getattr(source, "aclose", None)
    if aclose is not None:
        # Shielded: the pump may be cancelled meanwhile (the client left
        # while it was closing), and the source's cleanup must still finish.
        await asyncio.shield(aclose())
        return
    close = getattr(source, "close", None)
    if close is not None:
        close()


def log_hosted_exception(exc: BaseException, method: str, path: str) -> None:
    # An app that answers its client leaving by raising (Starlette turns the
    # OSError from send() into its ClientDisconnect) reports no server error.
    departed = _raised_for(exc, ClientDisconnected)
    error_log.log(
        logging.DEBUG if departed else logging.ERROR,
        "Exception in ASGI application for %s %s",
        method,
        path,
        exc_info=(type(exc), exc, exc.__traceback__),
    )


def cookie_expires(value: object) -> str:
    """``set_cookie(expires=...)`` as an HTTP date: from a datetime (naive
    means UTC), from seconds from now (int or float, as ``http.cookies``
    reads them), or a string that already is one in the IMF-fixdate form.
    Anything else is a ``ValueError``: the value goes into a header, where
    a ``;`` would add cookie attributes."""
    # Imported here: email.utils brings in a dozen modules (random, urllib,
    # ipaddress...) that every worker would otherwise hold for cookies alone.
    from datetime import UTC, datetime
    from email.utils import format_datetime, formatdate

    try:
        if isinstance(value, datetime):
            if value.tzinfo is None:
                value = value.replace(tzinfo=UTC)
            return format_datetime(value.astimezone(UTC), usegmt=True)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise ValueError(f"expires must be a finite number of seconds, not {value}")
            return formatdate(time.time() + value, usegmt=True)
    except (OverflowError, OSError) as exc:
        raise ValueError(f"expires {value!r} is out of range") from exc
    if isinstance(value, str):
        if _is_http_date(value):
            return value
        raise ValueError(
            f"expires must be an HTTP date such as 'Thu, 01 Jan 1970 00:00:00 GMT', not {value!r}"
        )
    raise ValueError(
        "expires must be a datetime, a number of seconds or an HTTP date string, "
        f"not {type(value).__name__}"
    )


def _is_http_date(text: str) -> bool:
    """True for an IMF-fixdate with the right weekday: what Cello would write."""
    from datetime import UTC
    from email.utils import format_datetime, parsedate_to_datetime

    try:
        parsed = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return False
    if parsed.tzinfo is None:
        return False
    return format_datetime(parsed.astimezone(UTC), usegmt=True) == text


def _raised_for(exc: BaseException, cause: type[BaseException]) -> bool:
    """Whether ``exc`` is, or was raised while handling, a ``cause``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, cause):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
