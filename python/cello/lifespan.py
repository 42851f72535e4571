"""The ASGI lifespan protocol from the server's side: start an app, later
stop it. One implementation, used for mounted apps (once per worker
process) and by ``cello.testing`` (around a test client)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from cello.types import ASGIApp, Message

__all__ = ["LifespanClient", "LifespanFailed"]

log = logging.getLogger("cello.error")


class LifespanFailed(RuntimeError):
    """The app answered ``lifespan.startup.failed`` or ``lifespan.shutdown.failed``,
    or, where lifespan support is required, ended without answering."""


class LifespanClient:
    """Runs one app's lifespan as a Task; ``state`` is the scope's ``state``."""

    def __init__(self, app: ASGIApp, state: dict[str, Any] | None = None) -> None:
        self.app = app
        self.state: dict[str, Any] = {} if state is None else state
        #: False once the app ended its lifespan call without answering:
        #: the spec's way of saying it does not support lifespan.
        self.supported = True
        self._to_app: asyncio.Queue[Message] = asyncio.Queue()
        self._from_app: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Future[None] | None = None

    async def startup(self, *, required: bool = False) -> None:
        """Sends ``lifespan.startup`` and waits for the answer. An app that
        does not support lifespan is tolerated unless ``required`` (then what
        it raised, or ``LifespanFailed``, is raised)."""
        scope = {"type": "lifespan", "asgi": {"version": "3.0", "spec_version": "2.0"},
                 "state": self.state}  # fmt: skip
        self._task = asyncio.ensure_future(self.app(scope, self._to_app.get, self._from_app.put))
        await self._step("startup", required)

    async def shutdown(self, timeout: float | None = None, *, required: bool = False) -> None:
        """Sends ``lifespan.shutdown`` and waits for the answer, at most
        ``timeout`` seconds (then the lifespan Task is cancelled and
        ``TimeoutError`` raised)."""
        if not self.supported or self._task is None:
            return
        try:
            await asyncio.wait_for(self._step("shutdown", required), timeout)
        except TimeoutError:
            self._task.cancel()
            raise
        if required and not self._task.done():
            await self._task

    async def _step(self, event: str, required: bool) -> None:
        await self._to_app.put({"type": f"lifespan.{event}"})
        message = await self._reply(required, event)
        if message is None:
            self.supported = False
            return
        if message["type"] == f"lifespan.{event}.failed":
            raise LifespanFailed(message.get("message") or f"lifespan {event} failed")

    async def _reply(self, required: bool, event: str) -> Message | None:
        """The app's next lifespan message, or None if its lifespan Task ended."""
        assert self._task is not None
        getter = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait({getter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            return getter.result()
        getter.cancel()
        if required:
            self._task.result()  # re-raises what the app raised
            raise LifespanFailed(f"the app returned during lifespan {event}")
        if not self._task.cancelled() and self._task.exception() is not None:
            log.debug("lifespan not supported by %r: %r", self.app, self._task.exception())
        return None
