"""``Depends`` through both doors: registered singletons by name, callables
taking the request, parameters and other dependencies, per-request caching,
scopes, sync and async generators whose cleanup runs after the response (and
sees the handler's exception), errors raised by dependencies, overrides."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cello import App, Depends, HTTPException
from cello.testing import TestClient
from tests.live import door_client

TARGET = "tests.apps.binding:app"


@pytest.fixture(scope="module", params=["native", "native-io-threads", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "native-io-threads":
        # Sync handlers and their dependencies on several I/O threads.
        yield from door_client("native", TARGET, "--threads", "2")
    else:
        yield from door_client(request.param, TARGET)


@pytest.fixture(autouse=True)
def _reset(request: pytest.FixtureRequest) -> None:
    if "client" in request.fixturenames:
        request.getfixturevalue("client").post("/reset")


def events(client: httpx.Client, expected: list[str], deadline: float = 30) -> list[str]:
    """The events once they are ``expected`` (a condition, not a timing: the
    deadline only stops a broken test from hanging)."""
    stop = time.monotonic() + deadline
    while True:
        seen = client.get("/events").json()["events"]
        if seen == expected or time.monotonic() > stop:
            return seen
        time.sleep(0.01)


def counts(client: httpx.Client) -> dict[str, int]:
    return client.get("/events").json()["counts"]


def test_a_singleton_by_name_registered_after_the_route(client: httpx.Client) -> None:
    assert client.get("/deps/singleton-name").json() == {"db": "primary"}


def test_an_unknown_singleton_name_is_a_500(client: httpx.Client) -> None:
    response = client.get("/deps/unknown-singleton")
    assert response.status_code == 500
    body = response.json()
    if "traceback" in body:  # the live server runs in debug mode
        assert body["detail"] == (
            "LookupError: Depends('cache'): no singleton is registered under that name "
            "(app.register_singleton('cache', value))"
        )


def test_nested_sync_and_async_dependencies(client: httpx.Client) -> None:
    got = client.get("/deps/user?page=3", headers={"X-User": "ada"}).json()
    assert got == {"user": "ada", "shout": "ADA", "page": {"page": 3, "size": 25}}
    assert client.get("/deps/sync-user", headers={"X-User": "bo"}).json() == {"user": "bo"}


def test_a_dependency_used_twice_runs_once_per_request(client: httpx.Client) -> None:
    # `settings` is asked for by current_user (twice: directly and through
    # async_user) and by pager.
    client.get("/deps/user", headers={"X-User": "ada"})
    client.get("/deps/user", headers={"X-User": "ada"})
    assert counts(client)["settings"] == 2


def test_scopes(client: httpx.Client) -> None:
    first = client.get("/deps/scopes").json()
    second = client.get("/deps/scopes").json()
    assert first["singleton"] == second["singleton"] == 1
    # Two uses per request, each a fresh call: 1 + 2, then 3 + 4.
    assert (first["transient"], second["transient"]) == (3, 7)
    assert (first["uncached"], second["uncached"]) == (3, 7)


def test_http_exception_from_a_dependency_keeps_its_status(client: httpx.Client) -> None:
    response = client.get("/deps/user")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Token"
    assert response.json()["detail"] == "who are you?"


def test_another_exception_from_a_dependency_is_a_500(client: httpx.Client) -> None:
    assert client.get("/deps/user", headers={"X-User": "crash"}).status_code == 500


def test_generator_cleanup_runs_once_after_the_response(client: httpx.Client) -> None:
    assert client.get("/deps/cleanup").json() == {"session": "session"}
    expected = ["session open", "handler", "session closed"]
    assert events(client, expected) == expected


def test_generator_cleanup_sees_the_handler_exception(client: httpx.Client) -> None:
    assert client.get("/deps/cleanup-fails").status_code == 500
    expected = [
        "session open",
        "handler",
        "session saw ValueError: handler broke",
        "session closed",
    ]
    assert events(client, expected) == expected


def test_cleanup_after_an_http_error(client: httpx.Client) -> None:
    assert client.get("/deps/cleanup-http-error").status_code == 409
    expected = ["session open", "session saw HTTPException: 409: conflict", "session closed"]
    assert events(client, expected) == expected


def test_async_generators_clean_up_last_entered_first(client: httpx.Client) -> None:
    got = client.get("/deps/async-cleanup").json()
    assert got == {"resource": "async resource", "session": "session"}
    expected = ["async open", "session open", "handler", "session closed", "async closed"]
    assert events(client, expected) == expected


def test_a_class_as_its_own_dependency(client: httpx.Client) -> None:
    assert client.get("/deps/class?offset=5").json() == {"offset": 5, "size": 10}


def test_a_dependency_parameter_error_is_a_422(client: httpx.Client) -> None:
    response = client.get("/deps/bad-query?page=x")
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "page"]


def test_background_tasks_run_before_the_dependency_cleanup(client: httpx.Client) -> None:
    assert client.post("/deps/tasks").json() == {"pending": 1}
    expected = ["session open", "handler", "task used the session", "session closed"]
    assert events(client, expected) == expected


def test_background_tasks_of_a_failed_handler_do_not_run(client: httpx.Client) -> None:
    assert client.post("/deps/tasks-fail").status_code == 400
    assert client.post("/deps/tasks").status_code == 200
    expected = ["session open", "handler", "task used the session", "session closed"]
    assert events(client, expected) == expected


# -- in process ------------------------------------------------------------------


def real_user() -> str:
    return "real"


def test_dependency_overrides() -> None:
    app = App()

    @app.get("/me")
    async def me(user: str = Depends(real_user)) -> dict[str, str]:
        return {"user": user}

    @app.get("/me-sync")
    def me_sync(user: str = Depends(real_user)) -> dict[str, str]:
        return {"user": user}

    with TestClient(app) as client:
        assert client.get("/me").json() == {"user": "real"}
        app.dependency_overrides[real_user] = lambda: "fake"
        assert client.get("/me").json() == {"user": "fake"}
        assert client.get("/me-sync").json() == {"user": "fake"}
        app.dependency_overrides.clear()
        assert client.get("/me-sync").json() == {"user": "real"}


def test_singleton_generator_cleanup_runs_at_shutdown() -> None:
    app = App()
    seen: list[str] = []

    def pool() -> Iterator[str]:
        seen.append("open")
        yield "pool"
        seen.append("closed")

    @app.get("/")
    def index(p: str = Depends(pool, scope="singleton")) -> dict[str, Any]:
        return {"pool": p}

    with TestClient(app) as client:
        assert client.get("/").json() == {"pool": "pool"}
        assert client.get("/").json() == {"pool": "pool"}
        assert seen == ["open"]
    assert seen == ["open", "closed"]


def test_cleanup_that_fails_is_logged_and_the_rest_still_run(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = App()
    seen: list[str] = []

    def outer() -> Iterator[str]:
        yield "outer"
        seen.append("outer closed")

    def inner() -> Iterator[str]:
        yield "inner"
        raise RuntimeError("cleanup broke")

    @app.get("/")
    def index(a: str = Depends(outer), b: str = Depends(inner)) -> list[str]:
        return [a, b]

    with TestClient(app) as client:
        assert client.get("/").json() == ["outer", "inner"]
    assert seen == ["outer closed"]
    assert "cleanup of dependency" in caplog.text and "cleanup broke" in caplog.text


def test_a_dependency_raising_http_exception_in_process() -> None:
    app = App()

    def forbid() -> None:
        raise HTTPException(403, "no")

    @app.get("/")
    def index(_: None = Depends(forbid)) -> dict[str, bool]:
        return {"ok": True}

    with TestClient(app) as client:
        response = client.get("/")
        assert response.status_code == 403 and response.json()["detail"] == "no"
