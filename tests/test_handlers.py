"""Sync and async handlers, asyncio integration, exceptions and exception handlers."""

from __future__ import annotations

import sys
import threading

import httpx
import pytest

from conformance.doors import UvicornDoor


def test_async_handler_without_await(client):
    assert client.get("/async/no-await").json() == {"async": True}


def test_async_handler_that_sleeps(client):
    assert client.get("/async/sleep").json() == {"slept": True}


def test_async_handler_runs_inside_a_real_task(client):
    assert client.get("/async/current-task").json() == {"has_task": True, "same_task": True}


def test_asyncio_timeout_works(client):
    assert client.get("/async/timeout").json() == {"timed_out": True}


def test_async_handlers_run_concurrently(server):
    """One request waits on an event only a second request can set: this
    completes only if the first handler does not block the second."""
    result: dict[str, object] = {}

    def waiter() -> None:
        result["wait"] = httpx.get(f"{server.url}/async/wait/k1", timeout=10).json()

    thread = threading.Thread(target=waiter)
    thread.start()
    # The release may arrive before the waiter registers: the event is shared either way.
    assert httpx.get(f"{server.url}/async/release/k1", timeout=10).json() == {"released": True}
    thread.join(15)
    assert result["wait"] == {"released": True}


def test_asyncio_libraries_work_inside_handlers(server):
    # The handler calls the server over the network, so this is native only.
    assert httpx.get(server.url + "/async/httpx").json() == {
        "status": 200,
        "body": {"message": "Hello, World!"},
    }


@pytest.mark.parametrize("path", ["/error/sync", "/error/async", "/error/async-immediate"])
def test_exception_is_a_500_problem_without_traceback_in_production(
    client, door, request, caplog, path
):
    response = client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["title"] == "Internal Server Error"
    assert body["instance"] == path
    assert "boom" not in response.text
    assert "traceback" not in body
    assert client.get("/").status_code == 200
    # Logged with its traceback: in the server's stderr, or in-process.
    if door == "native":
        assert "RuntimeError" in request.getfixturevalue("server").stderr()
    else:
        logged = [r for r in caplog.records if r.name == "cello.error"]
        assert logged and logged[-1].exc_info[0] is RuntimeError


@pytest.mark.parametrize(
    ("path", "message"),
    [("/error/sync", "sync boom"), ("/error/async", "async boom")],
)
def test_debug_mode_shows_the_traceback(debug_server, path, message):
    body = httpx.get(debug_server.url + path).json()
    assert body["detail"] == f"RuntimeError: {message}"
    assert "Traceback (most recent call last)" in body["traceback"]
    assert message in body["traceback"]


def test_exception_handler_matches_subclasses(client):
    response = client.get("/error/teapot")
    assert response.status_code == 418
    assert response.json() == {"teapot": "short and stout", "type": "SubTeapotError"}


@pytest.mark.parametrize("handler", ["async-handled", "sync-async-handled"])
def test_async_exception_handler(client, handler):
    # A sync handler's exception reaching an async exception handler crosses
    # from the I/O thread to the event loop in door 1.
    response = client.get(f"/error/{handler}")
    assert response.status_code == 409
    assert response.json() == {"handled": "async"}
    assert client.get("/").status_code == 200


def test_failing_exception_handler_gives_500(client):
    assert client.get("/error/broken-handler").status_code == 500
    assert client.get("/").status_code == 200


def test_http_exception(client):
    response = client.get("/error/http")
    assert response.status_code == 403
    assert response.headers["x-reason"] == "policy"
    assert response.json() == {
        "type": "about:blank",
        "title": "Forbidden",
        "status": 403,
        "detail": "not for you",
        "instance": "/error/http",
    }


def test_unconvertible_return_value(client):
    assert client.get("/error/bad-return").status_code == 500


def test_many_errors_do_not_break_the_server(client):
    for _ in range(50):
        assert client.get("/error/async").status_code == 500
    assert client.get("/").json() == {"message": "Hello, World!"}


@pytest.mark.parametrize("kind", ["partial", "callable", "partial-callable"])
def test_callables_returning_a_coroutine_are_async_handlers(client, kind):
    assert client.get(f"/kinds/{kind}").json() == {"kind": kind}


@pytest.mark.skipif(
    sys.version_info < (3, 12), reason="inspect.markcoroutinefunction is new in Python 3.12"
)
@pytest.mark.parametrize("kind", ["marked", "marked-callable"])
def test_functions_marked_as_coroutine_functions_are_awaited(client, kind):
    # Their own code has no await, yet the coroutine they return suspends.
    assert client.get(f"/kinds/{kind}").json() == {"kind": kind}


# Handlers, and exception handlers, that raise SystemExit or KeyboardInterrupt.
EXITS = [
    "/error/exit-sync",
    "/error/exit-async",
    "/error/exit-async-immediate",
    "/error/interrupt-async",
    "/error/exit-in-handler",
    "/error/exit-in-async-handler",
]


@pytest.mark.parametrize("path", EXITS)
def test_system_exit_and_keyboard_interrupt_from_a_handler_are_a_500(client, door, request, path):
    # Raised by one request's code, they end that request, not the server.
    response = client.get(path)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/").status_code == 200
    if door == "native":
        assert request.getfixturevalue("server").process.poll() is None


def test_system_exit_from_a_handler_does_not_stop_uvicorn():
    pytest.importorskip("uvicorn")
    uvicorn = UvicornDoor("tests.apps.core:app")
    uvicorn.start()
    try:
        for path in EXITS:
            assert uvicorn.client.get(path).status_code == 500, path
        assert uvicorn.client.get("/").status_code == 200
        assert uvicorn.process.poll() is None
    finally:
        uvicorn.stop()
