"""Where session data lives between requests: the ``SessionStore``
interface, an in-process ``MemoryStore`` and a file-backed ``SqliteStore``
that forked worker processes share.

Every store keeps a session's data as a JSON document, so the data a
handler puts in ``request.session`` must be JSON-serialisable whichever
store is used, and the same session reads back the same way from each.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

__all__ = ["MemoryStore", "SessionStore", "SqliteStore"]

T = TypeVar("T")
Clock = Callable[[], float]


@runtime_checkable
class SessionStore(Protocol):
    """The storage the sessions middleware talks to; every method is async,
    so a store may wait on the network (Redis) without blocking others.

    ``load(id)`` returns the data saved under ``id``, or None when there is
    none or it has expired; ``save(id, data, ttl)`` replaces it and keeps it
    ``ttl`` seconds; ``delete(id)`` forgets it (an unknown id is no error).
    """

    async def load(self, session_id: str) -> dict[str, Any] | None: ...

    async def save(self, session_id: str, data: dict[str, Any], ttl: int) -> None: ...

    async def delete(self, session_id: str) -> None: ...


def _encode(data: dict[str, Any]) -> str:
    try:
        return json.dumps(data, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"session data must be JSON-serialisable: {exc}") from None


def _decode(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def _check_positive_int(option: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{option} must be a positive int, not {value!r}")
    return value


class MemoryStore:
    """Sessions in this process's memory: the default for one process.

    At most ``max_entries`` sessions are kept; past that, expired ones go
    first, then the least recently saved. Worker processes do not share it
    (each has its own), so ``run(workers=N)`` uses a ``SqliteStore`` instead
    unless the app chose a store. ``clock`` (seconds, ``time.time`` by
    default) is there for tests.
    """

    def __init__(self, max_entries: int = 10_000, clock: Clock = time.time) -> None:
        self.max_entries = _check_positive_int("MemoryStore max_entries", max_entries)
        self._clock = clock
        # id -> (expires at, JSON text), least recently saved first.
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    async def load(self, session_id: str) -> dict[str, Any] | None:
        entry = self._entries.get(session_id)
        if entry is None:
            return None
        expires_at, text = entry
        if expires_at <= self._clock():
            del self._entries[session_id]
            return None
        return _decode(text)

    async def save(self, session_id: str, data: dict[str, Any], ttl: int) -> None:
        text = _encode(data)
        self._entries[session_id] = (self._clock() + ttl, text)
        self._entries.move_to_end(session_id)
        if len(self._entries) > self.max_entries:
            self._evict()

    async def delete(self, session_id: str) -> None:
        self._entries.pop(session_id, None)

    def _evict(self) -> None:
        # The least recently saved come first, and with one TTL for all
        # sessions they are also the first to expire: trimming from the
        # front costs O(1) per save however full the store is.
        entries = self._entries
        now = self._clock()
        while entries and next(iter(entries.values()))[0] <= now:
            entries.popitem(last=False)
        while len(entries) > self.max_entries:
            entries.popitem(last=False)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS cello_sessions (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS cello_sessions_expiry ON cello_sessions (expires_at);
"""

# Expired rows are swept once every this many saves, not on every one.
_SWEEP_EVERY = 64


class SqliteStore:
    """Sessions in an SQLite file (standard library ``sqlite3``), which every
    process on the machine can open: ``run(workers=N)`` uses one in a
    temporary directory by default so all workers see the same sessions.

    Queries run on one thread per process, off the event loop. The file
    uses SQLite's write-ahead log, so readers do not wait for writers.
    ``clock`` (seconds, ``time.time`` by default) is there for tests.
    """

    def __init__(self, path: str | os.PathLike[str], clock: Clock = time.time) -> None:
        if not isinstance(path, str | os.PathLike) or not str(path):
            raise ValueError(f"SqliteStore path must be a file path, not {path!r}")
        self.path = Path(path)
        self._clock = clock
        self._lock = threading.Lock()
        self._owner = -1
        self._executor: ThreadPoolExecutor | None = None
        self._connection: sqlite3.Connection | None = None
        self._saves = 0
        self.prepare()

    def prepare(self) -> None:
        """Creates the file and its table now (the master process does this
        before forking workers, so they never race to create it)."""
        connection = self._connect()
        connection.close()

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.executescript(_SCHEMA)
        return connection

    def _thread(self) -> ThreadPoolExecutor:
        # A forked worker inherits the parent's objects but not its threads:
        # each process opens its own thread and connection on first use.
        with self._lock:
            if self._executor is None or self._owner != os.getpid():
                self._owner = os.getpid()
                self._connection = None
                self._executor = ThreadPoolExecutor(1, thread_name_prefix="cello-sessions")
            return self._executor

    async def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        def call() -> T:
            if self._connection is None:
                self._connection = self._connect()
            return work(self._connection)

        return await asyncio.get_running_loop().run_in_executor(self._thread(), call)

    async def load(self, session_id: str) -> dict[str, Any] | None:
        now = self._clock()

        def load(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT data FROM cello_sessions WHERE id = ? AND expires_at > ?",
                (session_id, now),
            ).fetchone()
            return None if row is None else str(row[0])

        text = await self._run(load)
        return None if text is None else _decode(text)

    async def save(self, session_id: str, data: dict[str, Any], ttl: int) -> None:
        text = _encode(data)
        now = self._clock()
        self._saves += 1
        sweep = self._saves % _SWEEP_EVERY == 0

        def save(db: sqlite3.Connection) -> None:
            db.execute(
                "INSERT OR REPLACE INTO cello_sessions (id, data, expires_at) VALUES (?, ?, ?)",
                (session_id, text, now + ttl),
            )
            if sweep:
                db.execute("DELETE FROM cello_sessions WHERE expires_at <= ?", (now,))

        await self._run(save)

    async def delete(self, session_id: str) -> None:
        def delete(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM cello_sessions WHERE id = ?", (session_id,))

        await self._run(delete)

    def close(self) -> None:
        """Closes this process's connection and its thread (the app's shutdown
        does it for the store it uses); the store opens them again if used."""
        with self._lock:
            executor, self._executor = self._executor, None
            if executor is None or self._owner != os.getpid():
                return

        def close_connection() -> None:
            # SQLite connections belong to the thread that opened them.
            if self._connection is not None:
                self._connection.close()
                self._connection = None

        executor.submit(close_connection).result()
        executor.shutdown(wait=True)
