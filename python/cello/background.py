"""``BackgroundTasks``: work a handler leaves to run after its response.

```python
from cello import App, BackgroundTasks

@app.post("/signup")
def signup(request):
    tasks = BackgroundTasks()
    tasks.add_task(send_welcome_email, [request.json()["email"]])
    return {"ok": True}
```

A ``BackgroundTasks`` made while a handler runs belongs to its request;
``Response(..., background=tasks)`` hands one over explicitly.

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
import sys
from collections import deque
from collections.abc import Awaitable, Callable, Generator, Iterable
from types import FrameType
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


class _Run:
    """``run_all()``'s awaitable: the tasks run when it is awaited. Left
    unawaited (``tasks.run_all()`` in a sync handler) it does nothing and
    warns of nothing: the tasks stay pending, to run after the response."""

    __slots__ = ("_tasks",)

    def __init__(self, tasks: BackgroundTasks) -> None:
        self._tasks = tasks

    def __await__(self) -> Generator[Any, None, None]:
        return self._tasks._run_all().__await__()


class _Done:
    """An awaitable already complete: ``run_all()`` ran the tasks itself."""

    __slots__ = ()

    def __await__(self) -> Generator[Any, None, None]:
        return
        yield


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
    them as Starlette and FastAPI do. Made while a handler runs (in the
    handler or in code it calls), the tasks run after that request's
    response; a handler may also return ``Response(..., background=tasks)``
    (or set ``response.background``), or take a parameter annotated
    ``BackgroundTasks``.
    """

    def __init__(self, tasks: Iterable[BackgroundTask] | None = None) -> None:
        self._tasks: deque[BackgroundTask] = deque()
        # Made while a handler runs: the tasks belong to its request and run
        # after its response, handed over or not (the documented use).
        self._request: Any = _handled_request()
        for task in tasks or ():
            if not isinstance(task, BackgroundTask):
                raise TypeError(
                    f"BackgroundTasks() takes BackgroundTask objects, not {type(task).__name__}"
                )
            self._tasks.append(task)
        if self._tasks:
            self._attach()

    def _attach(self) -> None:
        """Registers ``run_all`` with the request's after-response callbacks,
        once, when there is something to run."""
        request, self._request = self._request, None
        if request is None:
            return
        try:
            request._after_response(self.run_all)
        except RuntimeError:
            log.warning(
                "background tasks added after the response to %s %s was sent; "
                "they run only if run_all() is awaited",
                request.method,
                request.path,
            )

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
        if len(args) == 1 and not kwargs and isinstance(args[0], (list, tuple)):
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
        if self._request is not None:
            self._attach()

    def pending_count(self) -> int:
        """How many tasks have not started yet."""
        return len(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def run_all(self) -> Awaitable[None]:
        """Runs every pending task in order (tasks they add included). A
        task that raises is logged and the rest still run; a cancellation
        stops the run and is logged with what was left undone.

        ``await tasks.run_all()`` in async code. Called where no event loop
        runs (a script, a plain test), it runs the tasks before returning.
        """
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run(self._run_all())
            return _Done()
        return _Run(self)

    async def _run_all(self) -> None:
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
        await self._run_all()

    def __repr__(self) -> str:
        return f"<BackgroundTasks pending={len(self._tasks)}>"


# How many frames up from BackgroundTasks() to look for the handled request.
_FRAMES_SEARCHED = 64


def _handled_request() -> Any:
    """The request whose handler (or dependency, or Python middleware) is
    running on this thread's stack, or None.

    Every handler is called with its request, so the request is a local of
    a frame below the caller: looked up here, only when a BackgroundTasks
    is made, it costs requests that make none nothing at all. Code running
    in a task or thread of its own has no such frame below it.
    """
    from cello._cello import Request

    frame: FrameType | None = sys._getframe(2)
    for _ in range(_FRAMES_SEARCHED):
        if frame is None:
            return None
        for value in frame.f_locals.values():
            if isinstance(value, Request):
                return value
        frame = frame.f_back
    return None


def _signature(func: Callable[..., Any]) -> inspect.Signature | None:
    try:
        return inspect.signature(func)
    except (TypeError, ValueError):  # a builtin without one
        return None


def _name(func: Callable[..., Any]) -> str:
    while isinstance(func, functools.partial):
        func = func.func
    return getattr(func, "__qualname__", None) or repr(func)


def _documented_or_single(
    signature: inspect.Signature | None, items: list[Any] | tuple[Any, ...]
) -> tuple[Any, ...]:
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
