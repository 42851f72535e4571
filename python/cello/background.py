"""``BackgroundTasks``: work a handler leaves to run after its response.

```python
from cello import App, BackgroundTasks, Response

@app.post("/signup")
def signup(request):
    tasks = BackgroundTasks()
    tasks.add_task(send_welcome_email, [request.json()["email"]])
    return Response.json({"ok": True}, status=201, background=tasks)
```

The tasks run in the order they were added, once the response has been
sent, on the event loop: coroutine functions are awaited there, plain
functions run in a worker thread (``asyncio.to_thread``) so a slow one does
not hold up other requests. A task that raises is logged on the
``cello.background`` logger, with its traceback, and the next one still
runs. See docs/background-tasks.md.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

__all__ = ["BackgroundTask", "BackgroundTasks"]

log = logging.getLogger("cello.background")


class BackgroundTask:
    """One function and its arguments, run once by ``await task()``."""

    __slots__ = ("args", "func", "is_async", "kwargs")

    def __init__(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if not callable(func):
            raise TypeError(f"a background task must be callable, not {type(func).__name__}")
        self.func = func
        self.args = args
        self.kwargs = kwargs
        self.is_async = _is_async(func)

    async def __call__(self) -> None:
        if self.is_async:
            await self.func(*self.args, **self.kwargs)
            return
        result = await asyncio.to_thread(self.func, *self.args, **self.kwargs)
        if inspect.isawaitable(result):
            await result

    @property
    def name(self) -> str:
        return _name(self.func)

    def __repr__(self) -> str:
        return f"<BackgroundTask {self.name}>"


def _is_async(func: Callable[..., Any]) -> bool:
    while isinstance(func, functools.partial):
        func = func.func
    if inspect.iscoroutinefunction(func):
        return True
    call = getattr(func, "__call__", None)  # noqa: B004 - an object's async __call__
    return not inspect.isfunction(func) and inspect.iscoroutinefunction(call)


class BackgroundTasks:
    """Tasks to run, in order, after the response is sent.

    ``add_task(func, args)`` takes the function's arguments as one list
    (Cello's documented form); ``add_task(func, *args, **kwargs)`` takes
    them as Starlette and FastAPI do. A handler hands the tasks over by
    returning ``Response(..., background=tasks)`` (or setting
    ``response.background``), or receives them as a parameter annotated
    ``BackgroundTasks``.
    """

    def __init__(self, tasks: Iterable[BackgroundTask] | None = None) -> None:
        self._tasks: deque[BackgroundTask] = deque()
        for task in tasks or ():
            if not isinstance(task, BackgroundTask):
                raise TypeError(
                    f"BackgroundTasks() takes BackgroundTask objects, not {type(task).__name__}"
                )
            self._tasks.append(task)

    def add_task(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Adds ``func`` to run after the response.

        ``add_task(send, ["a@example.com", "Hi"])`` calls
        ``send("a@example.com", "Hi")``: a single list after the function
        is its arguments, when the function accepts them spread out. Else
        the arguments pass as given: ``add_task(send, "a@example.com",
        subject="Hi")``, and ``add_task(store, [1, 2, 3])`` for ``def
        store(items)`` calls ``store([1, 2, 3])``. To pass one list to a
        function that would also take its items, name it:
        ``add_task(store, items=[5])``.
        """
        if not callable(func):
            raise TypeError(f"add_task() takes a callable, not {type(func).__name__}")
        signature = _signature(func)
        if len(args) == 1 and not kwargs and isinstance(args[0], list):
            args = _documented_or_single(signature, args[0])
        if signature is not None:
            try:
                signature.bind(*args, **kwargs)
            except TypeError as exc:
                # Now, in the handler, rather than in a log after the response.
                raise TypeError(
                    f"add_task(): {_name(func)}() cannot take these arguments: {exc}"
                ) from None
        self._tasks.append(BackgroundTask(func, *args, **kwargs))

    def pending_count(self) -> int:
        """How many tasks have not started yet."""
        return len(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    async def run_all(self) -> None:
        """Runs every pending task in order (tasks they add included). A
        task that raises is logged and the rest still run; a cancellation
        stops the run and is logged with what was left undone."""
        while self._tasks:
            task = self._tasks.popleft()
            try:
                await task()
            except asyncio.CancelledError:
                log.warning(
                    "background tasks cancelled during %s; %d not run",
                    task.name,
                    len(self._tasks),
                )
                raise
            except Exception:
                log.exception("background task %s failed", task.name)

    async def __call__(self) -> None:
        """``await tasks()``: the same as ``run_all()`` (Starlette's form)."""
        await self.run_all()

    def __repr__(self) -> str:
        return f"<BackgroundTasks pending={len(self._tasks)}>"


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without one
        return None


def _name(func: Callable[..., Any]) -> str:
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__qualname__", None) or repr(func)


def _documented_or_single(signature: inspect.Signature | None, items: list[Any]) -> tuple[Any, ...]:
    """The positional arguments ``add_task(func, items)`` means: ``items``
    spread out when ``func`` accepts that (the documented form), else
    ``items`` itself as the one argument."""
    if signature is None:
        return tuple(items)
    try:
        signature.bind(*items)
    except TypeError:
        try:
            signature.bind(items)
        except TypeError:
            return tuple(items)  # neither: the check after reports it as documented
        return (items,)
    return tuple(items)
