"""Running what ``request._after_response(callback)`` registered.

The native module calls ``start`` once a response has been sent (or could
not be, the client having left): the request's callbacks then run in one
asyncio Task, in order, in a copy of the handler's context. The process
keeps every such Task until it ends, so the app's shutdown can wait for
them (``drain``).
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "drain", "pending", "start"]

log = logging.getLogger("cello.background")

# How long an ASGI lifespan shutdown waits for them, as ClusterConfig's default.
DEFAULT_SHUTDOWN_TIMEOUT = 30.0

# How long cancelled ones get to run their cleanup.
CANCEL_GRACE = 5.0

_tasks: set[asyncio.Task[None]] = set()


def start(
    loop: asyncio.AbstractEventLoop,
    callbacks: Sequence[Callable[[], Any]],
    context: contextvars.Context,
) -> None:
    """Starts ``callbacks`` as one Task on ``loop`` (called on its thread)."""
    try:
        task = loop.create_task(_run(callbacks), context=context)
    except RuntimeError:  # the loop is closed: the process is exiting
        log.error(
            "%d after-response callback(s) not run: the event loop is closed",
            len(callbacks),
        )
        return
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


async def _run(callbacks: Sequence[Callable[[], Any]]) -> None:
    for index, callback in enumerate(callbacks):
        try:
            result = callback()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            left = len(callbacks) - index
            log.warning(
                "after-response callbacks cancelled; %d of %d not finished (from %s)",
                left,
                len(callbacks),
                _name(callback),
            )
            raise
        except Exception:
            log.exception("after-response callback %s failed", _name(callback))


def _name(callback: Callable[[], Any]) -> str:
    owner = getattr(callback, "__self__", None)
    name = getattr(callback, "__qualname__", None) or repr(callback)
    if owner is not None and not isinstance(owner, type) and "." not in name:
        return f"{type(owner).__qualname__}.{name}"
    return name


def pending(loop: asyncio.AbstractEventLoop | None = None) -> list[asyncio.Task[None]]:
    """The after-response Tasks still running on ``loop`` (default: the running one)."""
    loop = loop or asyncio.get_running_loop()
    return [t for t in _tasks if not t.done() and t.get_loop() is loop]


async def drain(timeout: float | None) -> None:
    """Waits up to ``timeout`` seconds (None: DEFAULT_SHUTDOWN_TIMEOUT) for
    the after-response Tasks of the running loop, then cancels what is left
    and gives it CANCEL_GRACE seconds to unwind."""
    tasks = pending()
    if not tasks:
        return
    limit = max(0.0, DEFAULT_SHUTDOWN_TIMEOUT if timeout is None else timeout)
    log.info("waiting up to %gs for %d after-response task(s)", limit, len(tasks))
    _, late = await asyncio.wait(tasks, timeout=limit)
    if not late:
        return
    log.error(
        "cancelling %d after-response task(s) still running after the %gs shutdown timeout",
        len(late),
        limit,
    )
    for task in late:
        task.cancel()
    _, stuck = await asyncio.wait(late, timeout=CANCEL_GRACE)
    if stuck:
        log.error("%d after-response task(s) ignored cancellation; leaving them", len(stuck))
