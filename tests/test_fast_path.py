"""Regression guards for the per-request cost, without timing anything.

The benchmark (`make bench`) measures speed; these tests pin down *what runs*
per request, so a change that adds Python work to the hot path fails here
even on a noisy machine: the Python functions called per request are counted
with a profiler, and the process's allocated blocks must not grow with the
number of requests served.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cello.testing import TestClient
from tests.live import LiveServer

REQUESTS = 200
APP = "tests.apps.counting:app"


@pytest.fixture(scope="module")
def native() -> Iterator[httpx.Client]:
    with LiveServer(APP, "--env", "production") as live:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            yield client


@pytest.fixture(params=["native", "asgi"])
def client(request: pytest.FixtureRequest) -> Iterator[httpx.Client]:
    if request.param == "native":
        yield request.getfixturevalue("native")
    else:
        from tests.apps.counting import app

        with TestClient(app) as c:
            yield c


def calls_per_request(client: httpx.Client, path: str, suffix: str = "") -> dict[str, float]:
    """The Python functions of Cello and of the app called per request to
    `path`, on the thread that runs its handler: what a window with no
    requests costs (the start/stop requests themselves) is subtracted."""

    def window(requests: int) -> dict[str, int]:
        assert client.get(f"/profile/start{suffix}").status_code == 200
        for _ in range(requests):
            assert client.get(path).status_code == 200
        counts: dict[str, int] = client.get(f"/profile/stop{suffix}").json()
        return counts

    baseline = window(0)
    counts = window(REQUESTS)
    ours = ("cello.", "tests.")
    return {
        name: (n - baseline.get(name, 0)) / REQUESTS
        for name, n in counts.items()
        if name.startswith(ours)
        and not name.startswith("cello.testing.")  # the test client, not the app
        and n != baseline.get(name, 0)
    }


def test_a_sync_request_calls_only_its_handler_natively(native):
    # Routing, the Request, the JSON body and the response are all Rust.
    assert calls_per_request(native, "/") == {"tests.apps.counting.index": 1.0}


def test_an_async_handler_without_await_runs_like_a_sync_one_natively(native):
    # It cannot suspend, so no Task is made for it: one step runs it through.
    assert calls_per_request(native, "/async", "-async") == {
        "tests.apps.counting.index_async": 1.0,
    }


def test_an_async_request_that_awaits_adds_only_the_resumed_step_natively(native):
    # The Task is started in Rust and finishes the pipeline in its last step
    # (no done callback), and the loop's call_soon is Rust too: one
    # suspension costs one more step of the coroutine and nothing else.
    assert calls_per_request(native, "/async-sleep", "-async") == {
        "tests.apps.counting.index_async_sleep": 2.0,
    }


# Door 2: the ASGI adapter's Python layer, once per request.
ASGI_DOOR_CALLS = {
    "cello.app.App.__call__": 1.0,
    "cello.asgi.AsgiAdapter.__call__": 1.0,
    "cello.asgi.AsgiAdapter._http": 1.0,
    "cello.asgi.AsgiAdapter._door": 1.0,
    "cello.asgi._declared_length": 1.0,
    "cello.asgi._read_body": 1.0,
}


def test_asgi_door_calls_per_request():
    from tests.apps.counting import app

    with TestClient(app) as client:
        sync = calls_per_request(client, "/")
        async_ = calls_per_request(client, "/async", "-async")
        awaiting = calls_per_request(client, "/async-sleep", "-async")
    assert sync == {"tests.apps.counting.index": 1.0, **ASGI_DOOR_CALLS}
    assert async_ == {"tests.apps.counting.index_async": 1.0, **ASGI_DOOR_CALLS}
    # The adapter's coroutines suspend with the handler and resume once more.
    resumed = (
        "cello.app.App.__call__",
        "cello.asgi.AsgiAdapter.__call__",
        "cello.asgi.AsgiAdapter._http",
    )
    assert awaiting == {
        "tests.apps.counting.index_async_sleep": 2.0,
        **ASGI_DOOR_CALLS,
        **{name: 2.0 for name in resumed},
    }


@pytest.mark.parametrize("path", ["/", "/async-sleep"])
def test_serving_does_not_grow_memory(client, path):
    """Python-allocated blocks stay flat over many requests (a leak of one
    object per request would add thousands). The awaiting path covers the
    Handles the loop's call_soon fills in place."""
    for _ in range(500):
        assert client.get(path).status_code == 200
    before = client.get("/blocks").json()["blocks"]
    for _ in range(3000):
        assert client.get(path).status_code == 200
    after = client.get("/blocks").json()["blocks"]
    assert after - before < 300, (before, after)
