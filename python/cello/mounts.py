"""Mounted ASGI applications (door 3): FastAPI, Starlette or any ASGI app
served by Cello under a path prefix.

Each mounted app gets its own lifespan, once per worker process (Starlette's
``Mount`` does not do this; Cello does): startup before the process serves,
shutdown after its last request, with the app's ``state`` shared into every
request scope as a shallow copy.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from cello.lifespan import LifespanClient, LifespanFailed

__all__ = ["LifespanFailed", "Mount"]

log = logging.getLogger("cello.error")


@dataclass
class Mount:
    prefix: str
    app: Any
    state: dict[str, Any] = field(default_factory=dict)
    _lifespan: LifespanClient | None = None

    @property
    def shown(self) -> str:
        return self.prefix or "/"

    async def startup(self) -> None:
        """Runs the app's lifespan startup; an app without lifespan support is tolerated."""
        self._lifespan = LifespanClient(self.app, self.state)
        try:
            await self._lifespan.startup()
        except LifespanFailed as exc:
            raise LifespanFailed(
                f"ASGI app mounted at {self.shown!r} failed to start: {exc}"
            ) from None

    async def shutdown(self, timeout: float | None) -> None:
        if self._lifespan is None:
            return
        try:
            await self._lifespan.shutdown(timeout)
        except TimeoutError:
            log.error("ASGI app mounted at %r did not finish shutting down", self.shown)
        except LifespanFailed as exc:
            log.error("ASGI app mounted at %r failed to shut down: %s", self.shown, exc)


async def start_all(mounts: list[Mount]) -> None:
    for mount in mounts:
        await mount.startup()


async def stop_all(mounts: list[Mount], timeout: float | None) -> None:
    for mount in reversed(mounts):
        await mount.shutdown(timeout)
