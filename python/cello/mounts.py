"""Mounted ASGI applications (door 3): FastAPI, Starlette or any ASGI app
served by Cello under a path prefix.

Each mounted app gets its own lifespan, once per worker process (Starlette's
``Mount`` does not do this; Cello does): startup before the process serves,
shutdown after its last request, with the app's ``state`` shared into every
request scope as a shallow copy.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

__all__ = ["LifespanFailed", "Mount"]

log = logging.getLogger("cello.error")


class LifespanFailed(RuntimeError):
    """A mounted app reported ``lifespan.startup.failed``."""


@dataclass
class Mount:
    prefix: str
    app: Any
    state: dict[str, Any] = field(default_factory=dict)
    _task: asyncio.Task[None] | None = None
    _to_app: asyncio.Queue[dict[str, Any]] | None = None
    _from_app: asyncio.Queue[dict[str, Any]] | None = None
    supported: bool = True

    async def startup(self) -> None:
        """Runs the app's lifespan startup; an app without lifespan support is tolerated."""
        self._to_app = asyncio.Queue()
        self._from_app = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}  # fmt: skip
        self._task = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._to_app.put({"type": "lifespan.startup"})
        message = await self._reply()
        if message is None:
            self.supported = False  # the app raised or returned: no lifespan support
            return
        if message["type"] == "lifespan.startup.failed":
            raise LifespanFailed(
                f"ASGI app mounted at {self.prefix or '/'!r} failed to start: "
                f"{message.get('message', '')}"
            )

    async def shutdown(self, timeout: float | None) -> None:
        if not self.supported or self._task is None or self._to_app is None:
            return
        await self._to_app.put({"type": "lifespan.shutdown"})
        try:
            message = await asyncio.wait_for(self._reply(), timeout)
        except TimeoutError:
            log.error("ASGI app mounted at %r did not finish shutting down", self.prefix or "/")
            self._task.cancel()
            return
        if message is not None and message["type"] == "lifespan.shutdown.failed":
            log.error("ASGI app mounted at %r failed to shut down: %s",
                      self.prefix or "/", message.get("message", ""))  # fmt: skip

    async def _reply(self) -> dict[str, Any] | None:
        """The app's next lifespan message, or None if its lifespan task ended."""
        assert self._task is not None and self._from_app is not None
        getter = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if not self._task.cancelled() and self._task.exception() is not None:
            exc = self._task.exception()
            log.debug("lifespan not supported by %r: %r", self.app, exc)
        return None


async def start_all(mounts: list[Mount]) -> None:
    for mount in mounts:
        await mount.startup()


async def stop_all(mounts: list[Mount], timeout: float | None) -> None:
    for mount in reversed(mounts):
        await mount.shutdown(timeout)
