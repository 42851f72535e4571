"""``BackgroundTasks``: both ``add_task`` forms, order, failures, threads,
and a response carrying them through both doors."""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from cello import BackgroundTask, BackgroundTasks, Response
from tests.live import door_client

TARGET = "tests.apps.background:app"


# -- the class on its own ------------------------------------------------------


def test_the_documented_form_takes_one_list_of_arguments() -> None:
    calls: list[tuple[object, ...]] = []

    def send(to: str, subject: str) -> None:
        calls.append((to, subject))

    tasks = BackgroundTasks()
    tasks.add_task(send, ["a@example.com", "Hi"])
    tasks.add_task(send, ("b@example.com", "Yo"))  # a tuple is read the same way
    tasks.run_all()
    assert calls == [("a@example.com", "Hi"), ("b@example.com", "Yo")]


def test_the_starlette_form_takes_arguments_as_given() -> None:
    calls: list[object] = []

    def send(to: str, subject: str = "") -> None:
        calls.append((to, subject))

    def store(items: list[int]) -> None:
        calls.append(items)

    tasks = BackgroundTasks()
    tasks.add_task(send, "a@example.com", subject="Hi")
    tasks.add_task(store, [1, 2, 3])  # three items cannot be store()'s one argument
    tasks.add_task(store, items=[5])  # a keyword is never spread
    tasks.run_all()
    assert calls == [("a@example.com", "Hi"), [1, 2, 3], [5]]


def test_a_one_item_list_follows_the_documented_form() -> None:
    calls: list[object] = []
    tasks = BackgroundTasks()
    tasks.add_task(calls.append, [5])  # a builtin: no signature to look at
    tasks.add_task(lambda value: calls.append(value), ["x"])
    tasks.run_all()
    assert calls == [5, "x"]


def test_arguments_the_function_cannot_take_are_refused_in_the_handler() -> None:
    def send(to: str, subject: str) -> None: ...

    tasks = BackgroundTasks()
    with pytest.raises(TypeError, match=r"add_task\(\): .*send\(\) cannot take these arguments"):
        tasks.add_task(send, "only one")
    with pytest.raises(TypeError, match="add_task\\(\\) takes a callable, not int"):
        tasks.add_task(3)  # type: ignore[arg-type]
    assert tasks.pending_count() == 0


def test_tasks_run_in_order_and_a_failure_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    async def first() -> None:
        ran.append("first")

    def broken() -> None:
        raise ValueError("boom")

    async def broken_async() -> None:
        raise KeyError("async boom")

    tasks = BackgroundTasks()
    tasks.add_task(first)
    tasks.add_task(broken)
    tasks.add_task(broken_async)
    tasks.add_task(functools.partial(ran.append, "last"))
    assert (tasks.pending_count(), len(tasks)) == (4, 4)
    with caplog.at_level(logging.ERROR, logger="cello.background"):
        asyncio.run(tasks())  # Starlette's spelling of run_all()
    assert ran == ["first", "last"]
    assert tasks.pending_count() == 0
    failed = [r for r in caplog.records if r.name == "cello.background"]
    assert [r.getMessage() for r in failed] == [
        "background task test_tasks_run_in_order_and_a_failure_is_logged.<locals>.broken failed",
        "background task test_tasks_run_in_order_and_a_failure_is_logged.<locals>.broken_async "
        "failed",
    ]
    assert all(r.exc_info for r in failed)


def test_sync_tasks_run_in_a_worker_thread_and_async_ones_on_the_loop() -> None:
    seen: dict[str, bool] = {}

    def sync_task() -> None:
        seen["sync on main"] = threading.current_thread() is threading.main_thread()

    async def async_task() -> None:
        seen["async on main"] = threading.current_thread() is threading.main_thread()

    tasks = BackgroundTasks()
    tasks.add_task(sync_task)
    tasks.add_task(async_task)
    tasks.run_all()
    assert seen == {"sync on main": False, "async on main": True}


def test_a_task_may_add_tasks_and_they_run_in_the_same_pass() -> None:
    ran: list[str] = []
    tasks = BackgroundTasks()

    def first() -> None:
        ran.append("first")
        tasks.add_task(ran.append, ["added by first"])

    tasks.add_task(first)
    tasks.run_all()
    assert ran == ["first", "added by first"]
    tasks.run_all()  # nothing left: nothing runs twice
    assert ran == ["first", "added by first"]


def test_cancellation_stops_the_run_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        started = asyncio.Event()

        async def blocks() -> None:
            started.set()
            await asyncio.Event().wait()

        tasks = BackgroundTasks()
        tasks.add_task(blocks)
        tasks.add_task(lambda: None)
        run = asyncio.ensure_future(tasks.run_all())
        await started.wait()
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        assert tasks.pending_count() == 1

    with caplog.at_level(logging.WARNING, logger="cello.background"):
        asyncio.run(scenario())
    assert "background tasks cancelled during" in caplog.text
    assert "1 not run" in caplog.text


def test_the_constructor_takes_background_task_objects() -> None:
    ran: list[int] = []
    tasks = BackgroundTasks([BackgroundTask(ran.append, 1), BackgroundTask(ran.append, 2)])
    tasks.run_all()
    assert ran == [1, 2]
    with pytest.raises(TypeError, match="BackgroundTasks\\(\\) takes BackgroundTask objects"):
        BackgroundTasks([print])  # type: ignore[list-item]
    assert repr(BackgroundTasks()) == "<BackgroundTasks pending=0>"


def test_a_response_keeps_its_background() -> None:
    tasks = BackgroundTasks()
    response = Response.json({}, background=tasks)
    assert response.background is tasks
    response.background = None
    assert response.background is None
    assert Response("x", background=tasks).background is tasks
    with pytest.raises(TypeError, match="Response background must be a BackgroundTasks"):
        Response.text("x").background = 3  # type: ignore[assignment]


# -- through the doors -----------------------------------------------------------


@pytest.fixture(scope="module", params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, TARGET)


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "client" in request.fixturenames:
        request.getfixturevalue("client").post("/reset")


def wait_for(client: httpx.Client, expected: list[str], deadline: float = 30) -> list[str]:
    stop = time.monotonic() + deadline
    while True:
        seen = client.get("/events").json()["events"]
        if seen == expected or time.monotonic() > stop:
            return seen
        time.sleep(0.01)


def test_tasks_handed_to_a_response_run_after_it(client: httpx.Client) -> None:
    response = client.get("/documented")
    assert (response.status_code, response.json()) == (202, {"queued": 2})
    expected = ["pending 2", "record(a, b)", "record_async(c)"]
    assert wait_for(client, expected) == expected


def test_the_starlette_form_through_a_plain_response(client: httpx.Client) -> None:
    assert client.get("/starlette").text == "queued"
    expected = ["record_async(x!)", "record(y, z)"]
    assert wait_for(client, expected) == expected


def test_a_background_set_as_an_attribute(client: httpx.Client) -> None:
    assert client.get("/attribute").text == "queued"
    assert wait_for(client, ["record(from, attribute)"]) == ["record(from, attribute)"]


def test_a_response_in_a_status_tuple_keeps_its_background(client: httpx.Client) -> None:
    assert client.get("/tuple").status_code == 201
    assert wait_for(client, ["record(from, tuple)"]) == ["record(from, tuple)"]


def test_any_function_may_be_a_background(client: httpx.Client) -> None:
    assert client.get("/function").status_code == 200
    assert wait_for(client, ["a plain function"]) == ["a plain function"]


def test_a_failing_task_does_not_stop_the_next(client: httpx.Client) -> None:
    assert client.get("/failing").status_code == 200
    assert wait_for(client, ["record(after, failure)"]) == ["record(after, failure)"]


def test_sync_tasks_leave_the_event_loop_free(client: httpx.Client) -> None:
    client.get("/thread")
    assert wait_for(client, ["worker thread"]) == ["worker thread"]


def test_mistakes_are_precise_errors_in_the_handler(client: httpx.Client) -> None:
    assert (
        client.get("/bad-arguments")
        .json()["error"]
        .startswith("add_task(): record() cannot take these arguments: missing a required argument")
    )
    assert client.get("/bad-background").json() == {
        "error": "Response background must be a BackgroundTasks or a function taking no "
        "arguments, not str"
    }


# -- tasks made while the handler runs ------------------------------------------


def test_tasks_made_in_the_handler_run_without_being_handed_over(client: httpx.Client) -> None:
    response = client.post("/users", json={"name": "Ada", "email": "ada@example.com"})
    assert response.json() == {
        "created": True,
        "user": {"id": 1, "name": "Ada", "email": "ada@example.com"},
    }
    expected = ["record(ada@example.com, Ada)"]
    assert wait_for(client, expected) == expected


def test_tasks_made_in_code_the_handler_calls_belong_to_its_request(
    client: httpx.Client,
) -> None:
    client.get("/helper")
    assert wait_for(client, ["record_async(from a helper)"]) == ["record_async(from a helper)"]


def test_an_async_handler_without_the_request_keeps_its_tasks(client: httpx.Client) -> None:
    assert client.get("/no-request").json() == {"ok": True}
    expected = ["record_async(from a handler without the request)"]
    assert wait_for(client, expected) == expected


def test_tasks_also_handed_over_run_once(client: httpx.Client) -> None:
    client.get("/both")
    assert wait_for(client, ["record(handed, over)"]) == ["record(handed, over)"]
    # Give a second run the chance to show up: another request's tasks come after.
    client.post("/users", json={"name": "B", "email": "b@example.com"})
    expected = ["record(handed, over)", "record(b@example.com, B)"]
    assert wait_for(client, expected) == expected


def test_tasks_made_in_a_task_of_their_own_belong_to_no_request(client: httpx.Client) -> None:
    client.get("/spawned")
    expected = ["spawned task's tasks pending: 1"]
    assert wait_for(client, expected) == expected


def test_tasks_queued_before_the_handler_failed_still_run(client: httpx.Client) -> None:
    assert client.get("/guarded-error").status_code == 500
    assert wait_for(client, ["record(after, the error)"]) == ["record(after, the error)"]


def test_outside_a_request_nothing_is_attached() -> None:
    ran: list[str] = []
    tasks = BackgroundTasks()
    tasks.add_task(ran.append, ["only when awaited"])
    assert tasks.pending_count() == 1
    tasks.run_all()
    assert ran == ["only when awaited"]


def test_run_all_is_awaited_in_async_code_and_runs_at_once_elsewhere(
    recwarn: pytest.WarningsRecorder,
) -> None:
    ran: list[str] = []

    async def main() -> int:
        tasks = BackgroundTasks()
        tasks.add_task(ran.append, ["awaited"])
        tasks.run_all()  # not awaited: nothing runs, nothing warns
        left = tasks.pending_count()
        await tasks.run_all()
        return left

    assert asyncio.run(main()) == 1
    assert ran == ["awaited"]
    tasks = BackgroundTasks()
    tasks.add_task(ran.append, ["no loop"])
    tasks.run_all()  # no event loop here: it runs now
    assert ran == ["awaited", "no loop"]
    assert not [w for w in recwarn if "never awaited" in str(w.message)]
