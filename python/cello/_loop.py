"""Cello's event loop: asyncio's own, with a selector that runs the server.

``asyncio.SelectorEventLoop`` asks its selector to wait for ready
descriptors once per iteration. This selector waits by running the tokio
runtime the native server lives on (``_cello.LoopDriver``), so the
connections, the handlers and the loop share one thread and a request never
changes threads. Everything else is stock asyncio: descriptors registered by
the loop (its self-pipe, sockets of database drivers, subprocess pipes) are
kept by the platform's selector, whose own descriptor the runtime watches.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import selectors
import signal
import threading
from asyncio.log import logger
from collections.abc import Callable
from typing import Any, TypeVar

from cello import _cello

T = TypeVar("T")


class RuntimeSelector(selectors.BaseSelector):
    """The platform's selector for bookkeeping; waits go to the runtime."""

    def __init__(self) -> None:
        self._inner = selectors.DefaultSelector()
        self.driver = _cello.LoopDriver(self._inner)
        # The loop calls select once per iteration: straight into Rust.
        self.select = self.driver.select  # type: ignore[method-assign]

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        return self.driver.select(timeout)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Any:
        return self._inner.get_map()

    def close(self) -> None:
        self.driver.close()
        self._inner.close()


def report_callback_error(handle: asyncio.Handle, exc: BaseException) -> None:
    """What ``asyncio.Handle._run`` does when a callback raises; the driver's
    ``_run_once`` runs plain Handles itself and calls this on an error."""
    from asyncio import format_helpers

    # A private helper of asyncio's: a Python without it still gets a report.
    describe = getattr(format_helpers, "_format_callback_source", None)
    callback = describe(handle._callback, handle._args) if describe else repr(handle)  # type: ignore[attr-defined]
    context: dict[str, Any] = {
        "message": f"Exception in callback {callback}",
        "exception": exc,
        "handle": handle,
    }
    if handle._source_traceback:  # type: ignore[attr-defined]
        context["source_traceback"] = handle._source_traceback  # type: ignore[attr-defined]
    handle._loop.call_exception_handler(context)  # type: ignore[attr-defined]


def report_slow_handler(name: str, seconds: float) -> None:
    """Debug mode: what ``asyncio``'s ``_run_once`` logs for a slow callback,
    for a handler the server ran inside the loop's wait, where no Handle
    times it. The driver calls this only in debug mode."""
    loop = asyncio.get_running_loop()
    if seconds >= loop.slow_callback_duration:
        logger.warning("Executing <handler %s> took %.3f seconds", name, seconds)


def supported() -> bool:
    """The platform selector has a descriptor the runtime can watch
    (epoll, kqueue); otherwise the server runs on a thread of its own."""
    return hasattr(selectors.DefaultSelector, "fileno")


class EventLoop(asyncio.SelectorEventLoop):
    """An asyncio event loop whose waits run Cello's native server."""

    def __init__(self) -> None:
        selector = RuntimeSelector()
        super().__init__(selector)
        self.driver: _cello.LoopDriver = selector.driver
        # Also installs the driver's call_soon and _run_once on this instance:
        # every Task step and future callback passes through call_soon, and
        # every awaiting request costs at least one loop iteration.
        self.driver.bind(self)
        self.driver.debug = self.get_debug()
        # While the runtime waits, Python's own signal handlers (Ctrl+C's
        # KeyboardInterrupt) only run once the wait ends: a signal must end it.
        self._wakes_on_signals = False
        if threading.current_thread() is threading.main_thread():
            previous = signal.set_wakeup_fd(self._csock.fileno(), warn_on_full_buffer=False)  # type: ignore[attr-defined]
            if previous == -1:
                self._wakes_on_signals = True
            else:
                signal.set_wakeup_fd(previous)

    def set_debug(self, enabled: bool) -> None:
        super().set_debug(enabled)
        driver = getattr(self, "driver", None)  # None while asyncio's __init__ runs
        if driver is not None:
            driver.debug = bool(enabled)
        # Every Future and Task asks its loop get_debug() when it is made: a
        # bound builtin answers without running a Python frame.
        self.get_debug = bool(enabled).__bool__  # type: ignore[method-assign]

    def stop(self) -> None:
        super().stop()
        # Called by a handler the server runs inside the wait, this must end
        # the wait, or the loop stops only once something else wakes it.
        # (asyncio's own loop never waits while code of its own runs.)
        self._write_to_self()  # type: ignore[attr-defined]

    def set_task_factory(self, factory: Any) -> None:
        super().set_task_factory(factory)
        # Handler Tasks are made through the factory when there is one; the
        # driver keeps whether there is, so asking costs nothing per Task.
        self.driver.task_factory_set = factory is not None

    def close(self) -> None:
        if self._wakes_on_signals and not self.is_closed():
            self._wakes_on_signals = False
            try:
                signal.set_wakeup_fd(-1)
            except ValueError:  # not the main thread any more
                pass
        super().close()


class IoThreadLoop:
    """What ``asyncio.get_running_loop()`` gives on Cello's own I/O threads
    (``threads=N``), where sync handlers, and async ones that cannot suspend,
    run beside the event loop's thread.

    asyncio's loops are not thread-safe: what would schedule work on the loop
    goes there through ``call_soon_threadsafe``, which also wakes it, and what
    returns a Task or a timer handle waits for the loop's thread to make it
    (in the handler's context, as if made here). Everything else is the
    loop's own attribute. Set once per I/O thread, so a handler that does
    not touch the loop pays nothing for it.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        return getattr(self._loop, name)

    def __repr__(self) -> str:
        return f"<IoThreadLoop of {self._loop!r}>"

    def create_task(
        self, coro: Any, *, name: str | None = None, context: contextvars.Context | None = None
    ) -> asyncio.Task[Any]:
        context = context if context is not None else contextvars.copy_context()
        return self._on_loop(lambda: self._loop.create_task(coro, name=name, context=context))

    def call_soon(
        self,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.Handle:
        return self._loop.call_soon_threadsafe(callback, *args, context=context)

    def call_later(
        self,
        delay: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        context = context if context is not None else contextvars.copy_context()
        return self._on_loop(lambda: self._loop.call_later(delay, callback, *args, context=context))

    def call_at(
        self,
        when: float,
        callback: Callable[..., object],
        *args: Any,
        context: contextvars.Context | None = None,
    ) -> asyncio.TimerHandle:
        context = context if context is not None else contextvars.copy_context()
        return self._on_loop(lambda: self._loop.call_at(when, callback, *args, context=context))

    def _on_loop(self, make: Callable[[], T]) -> T:
        """``make()``, called on the loop's thread; this one waits for it
        (the GIL released). The loop never waits for an I/O thread, so this
        cannot deadlock while it runs."""
        if asyncio._get_running_loop() is self._loop:
            return make()  # kept and used on the loop's own thread
        if not self._loop.is_running():
            raise RuntimeError("the event loop is not running")
        made: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            try:
                made.set_result(make())
            except BaseException as exc:
                made.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return made.result()
