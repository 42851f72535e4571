"""The SSE fan-out table's event source, shared by every server's app: one
ticker per process publishes ``SSE_RATE`` events a second, and every
connected client's stream waits for the next one (stdlib only)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

RATE = float(os.environ.get("SSE_RATE", "20"))


class Hub:
    def __init__(self) -> None:
        self.seq = 0
        self._next: asyncio.Event | None = None
        self._ticker: asyncio.Task[None] | None = None

    def _start(self) -> asyncio.Event:
        # Made on the first request, on the server's own event loop.
        if self._next is None:
            self._next = asyncio.Event()
            self._ticker = asyncio.ensure_future(self._tick())
        return self._next

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1 / RATE)
            self.seq += 1
            current, self._next = self._next, asyncio.Event()
            assert current is not None
            current.set()

    async def follow(self) -> AsyncIterator[int]:
        """Each event's number from now on (a slow client skips some)."""
        while True:
            await self._start().wait()
            yield self.seq


hub = Hub()
