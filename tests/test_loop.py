"""The event loop the native server runs inside (cello._loop), and the
handler behaviours that depend on it, through both doors."""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from cello import _loop
from cello._routes import can_suspend, is_async_handler
from cello.testing import TestClient
from tests.live import LiveServer

APP = "tests.apps.looping:app"


@pytest.fixture(scope="module")
def native() -> Iterator[httpx.Client]:
    with LiveServer(APP, "--env", "production") as live:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            yield client


@pytest.fixture
def client(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    if door == "native":
        yield request.getfixturevalue("native")
    else:
        from tests.apps.looping import app

        with TestClient(app) as c:
            yield c


# -- through the doors ------------------------------------------------------


@pytest.mark.parametrize("route", ["background", "background-from-sync"])
def test_a_task_started_by_a_handler_runs_without_another_request(client, route, door):
    tag = f"{route}-{door}-{time.monotonic_ns()}"
    assert client.post(f"/{route}/{tag}").json() == {"started": True}
    # The check request must not be what wakes the loop: give the task time
    # to run on its own first, then look once.
    time.sleep(0.3)
    assert tag in client.get("/background").json()["ran"]


def test_a_timer_set_by_a_handler_fires(client):
    waited = client.get("/timer").json()["waited"]
    assert 0.05 <= waited < 5


def test_an_executor_thread_wakes_the_loop(client):
    thread = client.get("/executor").json()["thread"]
    assert thread != "MainThread"


def test_call_soon_threadsafe_wakes_the_loop(client):
    assert client.get("/threadsafe").json() == {"result": "woken"}


def test_asyncio_timeout_works_in_a_handler(client):
    assert client.get("/timeout").json() == {"timed_out": True}


def test_an_awaiting_handler_runs_in_a_task_named_after_its_route(client):
    assert client.get("/current-task").json() == {"in_task": True, "name": "GET /current-task"}


def test_a_handler_task_shows_the_handlers_coroutine(client):
    # task.get_coro() is Cello's driver of the handler; what asyncio and
    # tracing integrations read off it is the handler coroutine's.
    body = client.get("/task-coro").json()
    assert body["qualname"] == "task_coro"
    assert body["handler_code"] is True
    assert "coro=<task_coro() running at " in body["repr"]
    assert body["stack"][-1] == "task_coro"  # newest last


def test_handler_tasks_are_made_by_the_loops_task_factory(client):
    assert client.get("/task-factory").json() == {"made": False, "name": "GET /task-factory"}
    assert client.post("/task-factory/on").json() == {"factory": True}
    try:
        for _ in range(2):  # and again: the factory stays in charge
            body = client.get("/task-factory").json()
            assert body == {"made": True, "name": "GET /task-factory"}
    finally:
        client.post("/task-factory/off")
    assert client.get("/task-factory").json()["made"] is False


@pytest.mark.parametrize("route", ["set", "set-sync", "set-awaiting"])
def test_context_variables_do_not_leak_between_requests(client, route):
    for value in ("a", "b", "c"):
        body = client.get(f"/context/{route}/{value}").json()
        assert body["before"] == "unset"
        if "after" in body:
            assert body["after"] == value


def test_sync_handlers_see_the_running_loop(client):
    assert client.get("/running-loop").json() == {"running": True}


@pytest.mark.parametrize("threads", ["1", "2"])
def test_handlers_on_io_threads_schedule_work_on_the_loop(threads):
    """With I/O threads of their own, sync handlers (and async ones that
    cannot suspend) run beside the loop's thread: create_task, call_soon and
    call_later there must reach the loop, wake it, and keep the handler's
    context."""
    with LiveServer(APP, "--env", "production", "--threads", threads) as live:
        with httpx.Client(base_url=live.url, timeout=10) as c:
            tags = [f"t{threads}-{i}" for i in range(3)]
            for tag in tags:
                assert c.post(f"/schedule/{tag}").json() == {"task": f"record {tag}"}
            async_tag = f"t{threads}-async"
            assert c.post(f"/schedule-async/{async_tag}").json() == {"task": True}
            expected = {
                f"{tag}-{kind}": f"MainThread {tag}"
                for tag in tags
                for kind in ("task", "loop-task", "soon", "later")
            }
            expected[f"{async_tag}-task"] = f"MainThread {async_tag}"
            for _ in range(200):  # no other request needed: the loop was woken
                if len(c.get("/scheduled").json()) >= len(expected):
                    break
                time.sleep(0.05)
            assert c.get("/scheduled").json() == expected
        assert "Traceback" not in live.stderr()


# -- which handlers can suspend ------------------------------------------------


async def _returns():
    return 1


async def _awaits():
    await asyncio.sleep(0)


async def _async_with(lock):
    async with lock:
        return 1


async def _async_for(source):
    return [item async for item in source]


class _CallableAsync:
    async def __call__(self, request):
        return 1


@pytest.mark.parametrize(
    ("handler", "expected"),
    [
        (_returns, False),
        (_awaits, True),
        (_async_with, True),
        (_async_for, True),
        (_CallableAsync(), False),
        (len, True),  # no code object to read: assume it can
        (functools.partial(_returns), True),  # its result is not seen: assume it can
    ],
)
def test_can_suspend(handler, expected):
    assert can_suspend(handler) is expected


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="inspect.markcoroutinefunction is new in Python 3.12"
)
def test_a_function_marked_as_a_coroutine_function_may_suspend():
    # Its own code has no await, but the coroutine it returns may have.
    marked = inspect.markcoroutinefunction(lambda request: _awaits())
    assert is_async_handler(marked)
    assert can_suspend(marked)


def test_a_handler_wrongly_judged_unable_to_suspend_fails_its_request_only(client):
    # Defensive: were the code check ever wrong, the one-step path must not
    # hang or crash; the request gets a 500 and the coroutine is closed.
    before = client.get("/wrongly-judged/closed").json()["closed"]
    assert client.get("/wrongly-judged").status_code == 500
    assert client.get("/wrongly-judged").status_code == 500  # and again: no state left
    assert client.get("/wrongly-judged/closed").json()["closed"] == before + 2


# -- the loop itself -------------------------------------------------------


@pytest.fixture
def loop() -> Iterator[_loop.EventLoop]:
    loop = _loop.EventLoop()
    try:
        yield loop
    finally:
        loop.close()


def test_timers_fire_in_order(loop):
    fired: list[int] = []
    for delay, tag in ((0.03, 3), (0.01, 1), (0.02, 2)):
        loop.call_later(delay, fired.append, tag)
    loop.run_until_complete(asyncio.sleep(0.05))
    assert fired == [1, 2, 3]


def test_a_wait_ends_when_another_thread_calls_in(loop):
    future = loop.create_future()
    threading.Timer(0.05, loop.call_soon_threadsafe, (future.set_result, 42)).start()
    assert loop.run_until_complete(asyncio.wait_for(future, 5)) == 42


def test_sockets_registered_with_the_loop(loop):
    async def exchange() -> bytes:
        left, right = socket.socketpair()
        left.setblocking(False)
        right.setblocking(False)
        with left, right:
            await loop.sock_sendall(left, b"ping")
            return await loop.sock_recv(right, 16)

    assert loop.run_until_complete(exchange()) == b"ping"


def test_a_descriptor_that_stays_ready_is_served_until_drained(loop):
    """A reader that takes one byte per callback must still get them all:
    descriptors are level-triggered, and a wait must not block while one is
    still ready."""
    left, right = socket.socketpair()
    right.setblocking(False)
    got = bytearray()
    done = loop.create_future()

    def read_one() -> None:
        got.extend(right.recv(1))
        if len(got) == 10:
            loop.remove_reader(right)
            done.set_result(None)

    with left, right:
        loop.add_reader(right, read_one)
        left.sendall(b"0123456789")
        loop.run_until_complete(asyncio.wait_for(done, 5))
    assert bytes(got) == b"0123456789"


def test_subprocesses_run_on_the_loop(loop):
    async def run() -> bytes:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-c", "print('hi')", stdout=asyncio.subprocess.PIPE
        )
        out, _ = await proc.communicate()
        return out

    assert loop.run_until_complete(run()).strip() == b"hi"


def test_signal_handlers_run_while_the_loop_waits(loop):
    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, got.set_result, "usr1")
    try:
        threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGUSR1)).start()
        assert loop.run_until_complete(asyncio.wait_for(got, 5)) == "usr1"
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)


def test_ctrl_c_interrupts_a_long_wait():
    """Without handlers of the loop's own, Python's KeyboardInterrupt must
    still end a wait at once, not when the wait would have ended."""
    script = (
        "import asyncio, os, signal, threading, time\n"
        "from cello._loop import EventLoop\n"
        # A shell may start background jobs with SIGINT ignored.
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "loop = EventLoop()\n"
        "threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    loop.run_until_complete(asyncio.sleep(30))\n"
        "except KeyboardInterrupt:\n"
        "    print(f'interrupted {time.monotonic() - started:.1f}')\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=20)
    assert out.stdout.startswith("interrupted"), out.stderr
    assert float(out.stdout.split()[1]) < 10


def test_waiting_from_inside_the_runtime_is_refused(loop):
    driver = loop.driver
    with pytest.raises(RuntimeError, match="thread that created it"):
        result: list[BaseException] = []

        def other_thread() -> None:
            try:
                driver.wait(0)
            except RuntimeError as exc:
                result.append(exc)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        raise result[0]


def test_call_soon_makes_asyncio_handles(loop):
    calls: list[tuple[str, str]] = []
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="outer")

    def record(tag: str) -> None:
        calls.append((tag, var.get()))

    inner = contextvars.copy_context()
    inner.run(var.set, "inner")
    plain = loop.call_soon(record, "plain")
    loop.call_soon(record, "in-context", context=inner)
    cancelled = loop.call_soon(record, "cancelled")
    cancelled.cancel()
    assert isinstance(plain, asyncio.Handle)
    # asyncio's own repr (which shows the arguments only before 3.13).
    assert repr(plain) == repr(asyncio.Handle(record, ("plain",), loop))
    assert "record(" in repr(plain)
    assert not plain.cancelled() and cancelled.cancelled()
    loop.run_until_complete(asyncio.sleep(0))
    assert calls == [("plain", "outer"), ("in-context", "inner")]


def test_call_soon_copies_the_callers_context(loop):
    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")
    seen: list[str] = []
    token = var.set("at call time")
    try:
        loop.call_soon(lambda: seen.append(var.get()))
    finally:
        var.reset(token)
    loop.run_until_complete(asyncio.sleep(0))
    assert seen == ["at call time"]


def test_call_soon_in_debug_mode_is_asyncios_own(loop):
    loop.set_debug(True)
    assert loop.driver.debug
    handle = loop.call_soon(lambda: None)
    assert handle._source_traceback  # kept only in debug mode
    with pytest.raises(TypeError, match="coroutines cannot be used"):
        loop.call_soon(asyncio.sleep)
    loop.set_debug(False)
    assert not loop.driver.debug
    assert loop.call_soon(lambda: None)._source_traceback is None
    loop.run_until_complete(asyncio.sleep(0))


def test_call_soon_on_a_closed_loop_is_refused():
    loop = _loop.EventLoop()
    loop.close()
    with pytest.raises(RuntimeError, match="Event loop is closed"):
        loop.call_soon(print)


def test_a_closed_loop_refuses_to_wait():
    loop = _loop.EventLoop()
    driver = loop.driver
    loop.close()
    with pytest.raises(RuntimeError, match="closed"):
        driver.wait(0)


# -- one loop iteration: the driver's _run_once against asyncio's -----------


def _iteration_trace(loop: asyncio.AbstractEventLoop, timer: bool) -> list:
    """Runs callbacks that chain, fail, get cancelled and set timers, and
    records what ran, in which loop iteration, and what the loop's exception
    handler was given."""
    trace: list = []
    iteration = [0]
    original = loop._run_once  # type: ignore[attr-defined]

    def counting_run_once() -> None:
        iteration[0] += 1
        original()

    loop._run_once = counting_run_once  # type: ignore[attr-defined]

    def record(tag: str) -> None:
        trace.append((tag, iteration[0]))

    def chains() -> None:
        record("first")
        loop.call_soon(record, "scheduled by first")  # runs one iteration later

    def fails() -> None:
        record("fails")
        raise ValueError("boom")

    def handler(loop_: asyncio.AbstractEventLoop, context: dict) -> None:
        trace.append(
            (
                "handler",
                context["message"].split(" at ")[0],
                type(context["exception"]).__name__,
                isinstance(context["handle"], asyncio.Handle),
            )
        )

    loop.set_exception_handler(handler)
    loop.call_soon(chains)
    loop.call_soon(fails)
    loop.call_soon(record, "cancelled").cancel()
    if timer:  # with a timer pending, an iteration is asyncio's own
        loop.call_later(0, record, "timer")
    loop.call_soon(record, "last")
    loop.run_until_complete(asyncio.sleep(0.01 if timer else 0))
    return trace


@pytest.mark.parametrize("timer", [False, True])
def test_the_driver_runs_loop_iterations_as_asyncio_does(loop, timer):
    assert loop._run_once == loop.driver.run_once  # type: ignore[attr-defined]
    stock = asyncio.SelectorEventLoop()
    try:
        expected = _iteration_trace(stock, timer)
    finally:
        stock.close()
    assert _iteration_trace(loop, timer) == expected
    message = "Exception in callback _iteration_trace.<locals>.fails()"
    assert ("handler", message, "ValueError", True) in expected
    assert expected.index(("scheduled by first", 2)) > expected.index(("last", 1))


def _timer_trace(loop: asyncio.AbstractEventLoop) -> list:
    """Timers that fire, get cancelled at the head of the heap, and pile up
    cancelled (past asyncio's sweep threshold), with what the loop's timer
    bookkeeping says afterwards."""
    fired: list[str] = []
    trace: list = []
    loop.call_later(3600, fired.append, "far")  # always pending, as a worker's parent watch
    loop.call_later(0.001, fired.append, "cancelled at the head").cancel()
    for i in range(150):
        loop.call_later(60 + i, fired.append, "swept").cancel()
    loop.call_later(0.002, fired.append, "second")
    loop.call_later(0.001, fired.append, "first")
    loop.call_soon(fired.append, "soon")
    loop.run_until_complete(asyncio.sleep(0.02))
    trace.append(list(fired))
    trace.append((len(loop._scheduled), loop._timer_cancelled_count))  # type: ignore[attr-defined]
    for i in range(3):
        loop.call_later(0.001 * (3 - i), fired.append, f"again {i}")
    loop.call_later(0.001, fired.append, "cancelled again").cancel()
    loop.run_until_complete(asyncio.sleep(0.02))
    trace.append(list(fired))
    trace.append((len(loop._scheduled), loop._timer_cancelled_count))  # type: ignore[attr-defined]
    return trace


def test_the_driver_keeps_timers_as_asyncio_does(loop):
    stock = asyncio.SelectorEventLoop()
    try:
        expected = _timer_trace(stock)
    finally:
        stock.close()
    assert _timer_trace(loop) == expected
    assert expected[0] == ["soon", "first", "second"]


def test_a_pending_timer_keeps_the_driver_iteration(loop):
    """A worker process always has a timer pending (its parent watch): the
    loop's iterations must stay the driver's, not fall back to asyncio's."""
    loop.call_later(3600, lambda: None)
    called: set[str] = set()

    def profile(frame, event, arg):
        if event == "call":
            called.add(frame.f_code.co_qualname)

    async def awaits() -> str:
        await asyncio.sleep(0)
        await asyncio.sleep(0.005)  # a timer of its own, which must fire
        return "done"

    sys.setprofile(profile)
    try:
        result = loop.run_until_complete(awaits())
    finally:
        sys.setprofile(None)
    assert result == "done"
    assert any(name.endswith(".awaits") for name in called)
    assert "BaseEventLoop._run_once" not in called


def test_the_driver_iteration_runs_ready_callbacks_without_timers(loop):
    # No timer pending: the driver's own path, not asyncio's fallback.
    seen: list[str] = []
    loop.call_soon(seen.append, "a")
    loop.call_soon(lambda: loop.call_soon(seen.append, "c"))
    loop.call_soon(seen.append, "b")
    loop._run_once()  # type: ignore[attr-defined]
    assert seen == ["a", "b"]
    loop._run_once()  # type: ignore[attr-defined]
    assert seen == ["a", "b", "c"]


def test_keyboard_interrupt_from_a_callback_leaves_the_loop(loop):
    def interrupt() -> None:
        raise KeyboardInterrupt

    after: list[str] = []
    loop.call_soon(interrupt)
    loop.call_soon(after.append, "still queued")
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    assert after == []
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert after == ["still queued"]


def test_debug_mode_iterations_are_asyncios_own(loop, caplog):
    loop.set_debug(True)
    loop.slow_callback_duration = 0.0
    loop.call_soon(time.sleep, 0.001)
    with caplog.at_level("WARNING", logger="asyncio"):
        loop.run_until_complete(asyncio.sleep(0))
    assert any("Executing" in r.getMessage() for r in caplog.records)


def test_a_loop_class_with_its_own_iteration_keeps_it():
    class Counting(_loop.EventLoop):
        iterations = 0

        def _run_once(self) -> None:
            Counting.iterations += 1
            super()._run_once()

    loop = Counting()
    try:
        loop.run_until_complete(asyncio.sleep(0))
    finally:
        loop.close()
    assert Counting.iterations > 0


# -- the loop under the native server -----------------------------------------


def test_loop_stop_from_a_sync_handler_takes_effect_at_once():
    # The server runs the handler inside the loop's wait; nothing else (no
    # timer, no other request) comes along to end that wait.
    with LiveServer(APP) as live:
        try:
            httpx.post(live.url + "/stop-loop", timeout=10)
        except httpx.TransportError:
            pass  # the process may exit before the response is written
        assert live.wait(20) == 1
        assert "Event loop stopped before Future completed" in live.stderr()


@pytest.mark.parametrize("route", ["blocking-sync", "blocking-async"])
def test_debug_mode_reports_a_slow_handler_as_a_slow_callback(route):
    with LiveServer(APP, env={"PYTHONASYNCIODEBUG": "1"}) as live:
        assert httpx.get(f"{live.url}/{route}", timeout=10).json() == {"blocked": True}
        assert live.stop() == 0
        # asyncio's message for a callback over slow_callback_duration (0.1 s)
        message = rf"Executing <handler GET /{route}> took \d+\.\d{{3}} seconds"
        assert re.search(message, live.stderr())
