"""``request._after_response(callback)`` through both doors: the callbacks
run after the response is sent, in order, in the handler's context, also
after a 500, a streamed body or a failing callback; the app's shutdown
waits for them, then cancels what outlives its timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer, door_client

TARGET = "tests.apps.after_response:app"


@pytest.fixture(scope="module", params=["native", "native-io-threads", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "native-io-threads":
        # Sync handlers (and the response bodies' ends) on I/O threads.
        yield from door_client("native", TARGET, "--threads", "2")
    else:
        yield from door_client(request.param, TARGET)


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "client" in request.fixturenames:
        request.getfixturevalue("client").post("/reset")


def wait_for(client: httpx.Client, expected: list[str], deadline: float = 30) -> list[str]:
    """The events once they are ``expected`` (a condition, not a timing:
    the deadline only stops a broken test from hanging)."""
    stop = time.monotonic() + deadline
    while True:
        seen = client.get("/events").json()["events"]
        if seen == expected or time.monotonic() > stop:
            return seen
        time.sleep(0.01)


def test_callbacks_run_after_the_response_in_registration_order(client: httpx.Client) -> None:
    assert client.get("/ordered").json() == {"ok": True}
    assert wait_for(client, ["handler", "first", "second", "third"]) == [
        "handler",
        "first",
        "second",
        "third",
    ]


def test_a_sync_handler_registers_them_too(client: httpx.Client) -> None:
    assert client.get("/sync").status_code == 200
    assert wait_for(client, ["after sync handler"]) == ["after sync handler"]


def test_a_failing_callback_is_logged_and_the_next_still_runs(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="cello.background"):
        assert client.get("/failing").status_code == 200
        assert wait_for(client, ["ran after the failures"]) == ["ran after the failures"]
    if client.base_url.host == "testserver":  # in process: the log is ours to read
        messages = [r.getMessage() for r in caplog.records if r.name == "cello.background"]
        assert any("broken failed" in m for m in messages), messages
        assert any("broken_async failed" in m for m in messages), messages
        failures = [r for r in caplog.records if r.exc_info]
        assert {type(r.exc_info[1]) for r in failures if r.exc_info} >= {ValueError, KeyError}


def test_they_run_after_a_500_too(client: httpx.Client) -> None:
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert wait_for(client, ["after a 500"]) == ["after a 500"]


def test_the_response_does_not_wait_for_them(client: httpx.Client) -> None:
    response = client.get("/blocked")
    # The whole body is here while the callback still waits on the gate.
    assert response.status_code == 200
    assert response.json() == {"body": "x" * 100_000}
    assert wait_for(client, ["blocked"]) == ["blocked"]
    client.post("/release")
    assert wait_for(client, ["blocked", "released"]) == ["blocked", "released"]


def test_a_streamed_response_runs_them_after_its_last_chunk(client: httpx.Client) -> None:
    response = client.get("/stream")
    assert response.text == "chunk 0\nchunk 1\nchunk 2\n"
    assert wait_for(client, ["stream ended", "after the stream"]) == [
        "stream ended",
        "after the stream",
    ]


def test_they_run_in_a_copy_of_the_handlers_context(client: httpx.Client) -> None:
    client.get("/context")
    assert wait_for(client, ["context: the handler"]) == ["context: the handler"]


def test_registering_once_the_response_is_sent_is_refused(client: httpx.Client) -> None:
    client.get("/late")
    expected = ["refused: _after_response(): the response to this request has already been sent"]
    assert wait_for(client, expected) == expected


def test_a_callback_must_be_callable(client: httpx.Client) -> None:
    assert client.get("/not-callable").json() == {
        "error": "_after_response() takes a callable, not int"
    }


def test_a_head_request_runs_them(client: httpx.Client) -> None:
    assert client.head("/sync").status_code == 200
    assert wait_for(client, ["after sync handler"]) == ["after sync handler"]


def test_a_client_that_leaves_mid_stream_still_gets_them_run() -> None:
    with LiveServer(TARGET) as live, httpx.Client(base_url=live.url, timeout=10) as c:
        with c.stream("GET", "/endless") as response:
            assert next(response.iter_lines()) == "tick"
        # Leaving the block closed the connection mid-body. The callback and
        # the generator's cleanup both follow, in no promised order.
        stop = time.monotonic() + 30
        while "after the abandoned stream" not in c.get("/events").json()["events"]:
            assert time.monotonic() < stop
            time.sleep(0.01)


# -- the native server's shutdown -----------------------------------------


def test_the_native_shutdown_waits_for_pending_callbacks(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    env = {"CELLO_TEST_FLAG": str(flag)}
    with LiveServer(TARGET, env=env) as live:
        with httpx.Client(base_url=live.url, timeout=10) as c:
            assert c.get("/until-flag").json() == {"ok": True}
            assert wait_for(c, ["waiting for the flag"]) == ["waiting for the flag"]
        live.signal(2)  # SIGINT
        _wait_for_text(live, "waiting up to 30s for 1 after-response task(s)")
        flag.write_text("go")
        assert live.wait() == 0
        log = live.stderr()
    assert log.index("background: finished") < log.index("shutdown hook ran"), log


def test_callbacks_past_the_shutdown_timeout_are_cancelled_and_logged() -> None:
    env = {"CELLO_TEST_SHUTDOWN_TIMEOUT": "0.2"}
    with LiveServer(TARGET, env=env) as live:
        with httpx.Client(base_url=live.url, timeout=10) as c:
            assert c.get("/forever").json() == {"ok": True}
            assert wait_for(c, ["never ends"]) == ["never ends"]
        assert live.stop() == 0
        log = live.stderr()
    assert "cancelling 1 after-response task(s) still running after the 0.2s" in log, log
    assert "after-response callbacks cancelled; 1 of 1 not finished" in log, log
    assert log.index("cancelling 1 after-response") < log.index("shutdown hook ran"), log


def test_without_a_graceful_shutdown_they_are_cancelled_at_once() -> None:
    env = {"CELLO_TEST_GRACEFUL": "0"}
    with LiveServer(TARGET, env=env) as live:
        with httpx.Client(base_url=live.url, timeout=10) as c:
            assert c.get("/forever").json() == {"ok": True}
            assert wait_for(c, ["never ends"]) == ["never ends"]
        assert live.stop() == 0
        log = live.stderr()
    assert "cancelling 1 after-response task(s) still running after the 0s" in log, log


def _wait_for_text(live: LiveServer, text: str, deadline: float = 30) -> None:
    stop = time.monotonic() + deadline
    while text not in live.stderr():
        assert time.monotonic() < stop, live.stderr()
        time.sleep(0.01)


# -- the ASGI lifespan shutdown ---------------------------------------------


def test_the_asgi_lifespan_shutdown_waits_for_pending_callbacks() -> None:
    from cello.testing import AsyncClient
    from tests.apps import after_response

    logger = logging.getLogger("cello.background")

    class OpenTheGateOnceShutdownWaits(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.getMessage().startswith("waiting up to 30s for 1 after-response"):
                after_response.EVENTS.append("shutdown waits")
                after_response._gate().set()

    async def scenario() -> None:
        async with AsyncClient(after_response.app) as c:
            await c.post("/reset")
            assert (await c.get("/blocked")).status_code == 200
            while (await c.get("/events")).json()["events"] != ["blocked"]:
                await asyncio.sleep(0)

    handler = OpenTheGateOnceShutdownWaits()
    logger.addHandler(handler)
    try:
        asyncio.run(scenario())
    finally:
        logger.removeHandler(handler)
    assert after_response.EVENTS == ["blocked", "shutdown waits", "released"]


# -- behind middleware ------------------------------------------------------------


@pytest.fixture(scope="module", params=["native", "asgi"])
def layered(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    yield from door_client(request.param, "tests.apps.after_response:layered")


def test_behind_python_middleware_and_compression_they_run_once_after_it(
    layered: httpx.Client,
) -> None:
    layered.post("/reset")
    response = layered.get("/hooked", headers={"accept-encoding": "gzip"})
    assert response.headers["x-tagged"] == "yes"
    assert response.headers["content-encoding"] == "gzip"
    assert response.json() == {"text": "y" * 2000}
    # The handler's callback and background, then the one the middleware set.
    expected = ["middleware done", "callback", "background", "middleware background"]
    assert wait_for(layered, expected) == expected


def test_a_handler_cancelled_by_its_asgi_server_still_runs_them() -> None:
    """Under an ASGI server a client that leaves cancels the request's task,
    and with it the handler: its callbacks still run."""
    from tests.apps import after_response

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
        "method": "GET", "scheme": "http", "path": "/slow", "raw_path": b"/slow",
        "query_string": b"", "root_path": "", "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
    }  # fmt: skip

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        raise AssertionError(f"nothing should be sent: {message}")

    async def scenario() -> list[str]:
        after_response.EVENTS.clear()
        request = asyncio.ensure_future(after_response.app(scope, receive, send))
        while "handler waiting" not in after_response.EVENTS:
            await asyncio.sleep(0)
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
        while "after the cancelled handler" not in after_response.EVENTS:
            await asyncio.sleep(0)
        return list(after_response.EVENTS)

    assert asyncio.run(asyncio.wait_for(scenario(), 30)) == [
        "handler waiting",
        "after the cancelled handler",
    ]
