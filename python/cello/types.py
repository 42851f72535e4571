"""The ASGI vocabulary, and the protocols Cello's runtime needs from an app.

Stated once here so the modules that serve an app (``asgi``, the server,
the worker supervisor) depend on these shapes, not on ``cello.app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

__all__ = ["ASGIApp", "Message", "Receive", "Scope", "Send", "ServedApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ServedApp(Protocol):
    """What the server, the workers and the ASGI adapter use of an ``App``."""

    _core: Any
    _mounts: list[Any]
    _body_limit: int | None

    @property
    def debug(self) -> bool: ...

    @debug.setter
    def debug(self, value: bool) -> None: ...

    async def _run_hooks(self, event: str, shutdown_timeout: float | None = None) -> None: ...

    def _logs_requests(self) -> bool: ...

    def enable_logging(
        self, *, format: str = "text", skip_paths: Iterable[str] = ("/health", "/metrics")
    ) -> None: ...
