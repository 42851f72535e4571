"""Server-sent events: ``SseEvent``, ``SseStream`` and ``Response.sse``.

An event stream is an ordinary streamed response (``Response.stream``) whose
chunks are events in the ``text/event-stream`` format: this module only
turns events into their wire form, adds the headers an event stream needs
and, while the source is idle, sends keepalive comments. Sending, flushing,
back-pressure, compression and closing the source when the client leaves
are the streaming machinery's, the same in every door.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from typing import Any

from cello import _cello
from cello._support import _END, _next_in_thread, close_source

__all__ = ["SseEvent", "SseStream", "sse_response"]

CONTENT_TYPE = "text/event-stream; charset=utf-8"
HEADERS = (("cache-control", "no-cache"), ("x-accel-buffering", "no"))
KEEPALIVE = b": keepalive\n\n"

# The line ends of the event-stream format: CRLF, a lone CR or a lone LF.
_LINE_END = re.compile(r"\r\n|\r|\n")


def _text_of(value: Any) -> str:
    """The data of an event as text: str as is, bytes as UTF-8, dicts, lists
    and tuples as JSON (Cello's own encoder), anything else through str()."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode()
    if isinstance(value, dict | list | tuple):
        return _cello.dumps(value).decode()
    return str(value)


def _field(name: str, value: Any) -> str | None:
    """An ``id`` or ``event`` value, refused if it would end its line early."""
    if value is None:
        return None
    text = str(value)
    if "\r" in text or "\n" in text:
        raise ValueError(f"an SSE {name} cannot contain CR or LF (it would inject fields)")
    if name == "id" and "\0" in text:
        raise ValueError("an SSE id cannot contain NUL (clients ignore such an id)")
    return text


def _retry(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"SSE retry must be a non-negative int (milliseconds), not {value!r}")
    return value


class _DataAttribute:
    """``SseEvent.data``: on the class, the constructor ``SseEvent.data(s)``;
    on an event, its data (as given: a str, or the dict it was made from)."""

    def __get__(self, event: SseEvent | None, owner: type[SseEvent]) -> Any:
        if event is None:
            return owner._of_data
        return event._data

    def __set__(self, event: SseEvent, value: Any) -> None:
        event._text = None if value is None else _text_of(value)
        event._data = value


class SseEvent:
    """One server-sent event.

    ``data`` is text (one ``data:`` line per line of it), or a dict/list sent
    as JSON, or None for an event without data (only an ``id`` or a
    ``retry``). ``event`` and ``id`` are single lines: a CR or LF in them is a
    ``ValueError``. ``retry`` is the reconnection delay in milliseconds.
    """

    __slots__ = ("_comment", "_data", "_event", "_id", "_retry", "_text")

    data = _DataAttribute()

    def __init__(
        self,
        data: Any = None,
        event: str | None = None,
        id: str | int | None = None,  # the field's name in the format
        retry: int | None = None,
    ) -> None:
        self._comment: str | None = None
        self.data = data
        self.event = event
        self.id = id
        self.retry = retry

    @property
    def event(self) -> str | None:
        return self._event

    @event.setter
    def event(self, value: str | None) -> None:
        self._event = _field("event", value)

    @property
    def id(self) -> str | None:
        return self._id

    @id.setter
    def id(self, value: str | int | None) -> None:
        self._id = _field("id", value)

    @property
    def retry(self) -> int | None:
        return self._retry

    @retry.setter
    def retry(self, value: int | None) -> None:
        self._retry = _retry(value)

    @property
    def comment_text(self) -> str | None:
        """The text of a comment event (``SseEvent.comment``), else None."""
        return self._comment

    @classmethod
    def _of_data(cls, data: Any) -> SseEvent:
        return cls(data)

    @staticmethod
    def with_event(event: str, data: Any) -> SseEvent:
        """An event of a named type: clients listen with ``addEventListener(event, ...)``."""
        return SseEvent(data, event=event)

    @staticmethod
    def comment(text: str = "") -> SseEvent:
        """A comment: clients ignore it, proxies see traffic (a keepalive)."""
        ev = SseEvent()
        ev._comment = str(text)
        return ev

    def encode(self) -> bytes:
        """The event on the wire: comment lines, then ``id:``, ``event:``,
        ``retry:``, one ``data:`` line per line of data, and a blank line."""
        lines = []
        if self._comment is not None:
            lines += [f": {line}" if line else ":" for line in _LINE_END.split(self._comment)]
        if self._id is not None:
            lines.append(f"id: {self._id}")
        if self._event is not None:
            lines.append(f"event: {self._event}")
        if self._retry is not None:
            lines.append(f"retry: {self._retry}")
        if self._text is not None:
            lines += [f"data: {line}" for line in _LINE_END.split(self._text)]
        lines.append("\n")
        return "\n".join(lines).encode()

    def __bytes__(self) -> bytes:
        return self.encode()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SseEvent):
            return NotImplemented
        return self.encode() == other.encode()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        if self._comment is not None:
            return f"SseEvent.comment({self._comment!r})"
        fields = [repr(self._data)]
        fields += [
            f"{name}={value!r}"
            for name, value in (("event", self._event), ("id", self._id), ("retry", self._retry))
            if value is not None
        ]
        return f"SseEvent({', '.join(fields)})"


def as_event(item: Any) -> SseEvent:
    """An item a source yielded, as an event: events as they are, anything
    else as the data of an unnamed event."""
    return item if isinstance(item, SseEvent) else SseEvent(item)


class SseStream:
    """A finite list of events, built up front and sent as one event stream.

    Return it from a handler, or pass it to ``Response.sse``.
    """

    __slots__ = ("_events",)

    def __init__(self, events: Iterable[Any] = ()) -> None:
        self._events: list[SseEvent] = [as_event(e) for e in events]

    def add(self, event: SseEvent | Any) -> SseStream:
        """Appends an event (other values become its data); returns the stream."""
        self._events.append(as_event(event))
        return self

    def add_data(self, data: Any) -> SseStream:
        return self.add(SseEvent(data))

    def add_event(self, event: str, data: Any) -> SseStream:
        return self.add(SseEvent(data, event=event))

    def len(self) -> int:
        return len(self._events)

    def is_empty(self) -> bool:
        return not self._events

    def encode(self) -> bytes:
        return b"".join(e.encode() for e in self._events)

    def __len__(self) -> int:
        return len(self._events)

    def __iter__(self) -> Iterator[SseEvent]:
        return iter(list(self._events))

    def __repr__(self) -> str:
        return f"SseStream({self._events!r})"

    def __cello_response__(self) -> _cello.Response:
        # A returned stream is sent as Response.sse(stream) would send it.
        return sse_response(self)


def sse_response(
    source: Any,
    *,
    keepalive: float | None = 15.0,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    status: int = 200,
) -> _cello.Response:
    """``Response.sse``: a streamed ``text/event-stream`` response of the
    events ``source`` yields (see docs/sse.md)."""
    if isinstance(source, str | bytes | bytearray | memoryview | Mapping | SseEvent):
        raise TypeError(
            f"Response.sse() needs an SseStream, a list or a (async) generator of events, "
            f"not a single {type(source).__name__}; wrap one event in a list"
        )
    if not hasattr(source, "__aiter__") and not hasattr(source, "__iter__"):
        raise TypeError(
            f"Response.sse() needs an SseStream, a list or a (async) generator of events, "
            f"not {type(source).__name__}"
        )
    if keepalive is not None and (isinstance(keepalive, bool) or keepalive < 0):
        raise ValueError(f"keepalive must be a number of seconds >= 0 or None, not {keepalive!r}")
    idle = keepalive or None
    chunks: Any
    if isinstance(source, SseStream | list | tuple):
        # Finite and ready: encoded now, so a bad item is the handler's error.
        chunks = [as_event(item).encode() for item in source]
    elif hasattr(source, "__aiter__"):
        chunks = _from_async(source) if idle is None else _Heartbeat(_from_async(source), idle)
    else:
        chunks = _from_sync(source, idle)
    response = _cello.Response.stream(chunks, content_type=CONTENT_TYPE, status=status)
    for name, value in HEADERS:
        response.set_header(name, value)
    if headers is not None:
        pairs = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in pairs:
            response.set_header(name, value)
    return response


async def _from_async(source: Any) -> AsyncIterator[bytes]:
    iterator = aiter(source)
    try:
        async for item in iterator:
            yield as_event(item).encode()
    finally:
        await close_source(iterator)


class _Heartbeat:
    """An async event stream with a keepalive the door sends: the native
    server from Rust (no Python timer per stream), ``pump`` for the others
    (``_support.with_heartbeat``)."""

    __slots__ = ("__cello_heartbeat__", "_chunks")

    def __init__(self, chunks: AsyncIterator[bytes], every: float) -> None:
        self._chunks = chunks
        self.__cello_heartbeat__ = (every, KEEPALIVE)

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._chunks

    async def aclose(self) -> None:
        await close_source(self._chunks)


async def _from_sync(source: Any, idle: float | None) -> AsyncIterator[bytes]:
    # Each step runs in a worker thread, as Response.stream runs a generator.
    iterator = iter(source)
    pending: asyncio.Future[Any] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(_next_in_thread(iterator))
            done, _ = await asyncio.wait((pending,), timeout=idle)
            if not done:
                yield KEEPALIVE
                continue
            step, pending = pending, None
            item = step.result()
            if item is _END:
                return
            yield as_event(item).encode()
    finally:
        if pending is not None:
            # A step still runs in its thread: the iterator is closed when it returns.
            pending.cancel()
            await asyncio.wait((pending,))
        else:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()
