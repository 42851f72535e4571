"""Regression guards for the per-request cost, without timing anything.

The benchmark (`make bench`) measures speed; these tests pin down *what runs*
per request, so a change that adds Python work to the hot path fails here
even on a noisy machine: the Python functions called per request are counted
with a profiler, and the process's allocated blocks must not grow with the
number of requests served.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from cello.testing import TestClient
from tests.live import ROOT, LiveServer

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


def calls_per_request(
    client: httpx.Client, path: str, suffix: str = "", ours: tuple[str, ...] = ("cello.", "tests.")
) -> dict[str, float]:
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


def test_a_guarded_route_adds_only_its_guard_and_the_check_around_it(native):
    # The app has a guarded route; its other routes still call only their
    # handler (the test above), because guards wrap at registration.
    assert calls_per_request(native, "/guarded") == {
        "cello.guards.guard_handler.<locals>.guarded": 1.0,
        "cello.guards._check": 1.0,
        "cello.guards._judge": 1.0,
        "tests.apps.counting.allow": 1.0,
        "tests.apps.counting.index_guarded": 1.0,
    }


def test_an_async_request_that_awaits_adds_only_the_resumed_step_natively(native):
    # The Task is started in Rust and finishes the pipeline in its last step
    # (no done callback), and the loop's call_soon is Rust too: one
    # suspension costs one more step of the coroutine and nothing else.
    assert calls_per_request(native, "/async-sleep", "-async") == {
        "tests.apps.counting.index_async_sleep": 2.0,
    }


def test_a_pending_timer_keeps_the_native_loop_iteration():
    """A worker always has a timer pending (its 1 s parent watch): loop
    iterations must stay native then too, or production would never run
    the path the benchmark measures."""
    with LiveServer(APP, "--env", "production") as live:
        with httpx.Client(base_url=live.url, timeout=10) as client:
            assert client.post("/arm-timer").json() == {"armed": 1}
            calls = calls_per_request(client, "/async-sleep", "-async", ours=("asyncio.", "tests."))
    assert "asyncio.base_events.BaseEventLoop._run_once" not in calls
    assert calls["tests.apps.counting.index_async_sleep"] == 2.0


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


# -- which fast paths each Python takes ------------------------------------

# The fast paths of cello._cello.fast_paths() (docs/handlers.md), as each
# supported Python takes them. An interpreter not listed here is only
# checked to serve correctly with whatever it found (see the fallback tests).
FAST_PATHS = {
    (3, 11): {"eager_start": False, "eager_step": True, "handle_slots": True, "run_once": True},
    (3, 12): {"eager_start": True, "eager_step": False, "handle_slots": True, "run_once": True},
    (3, 13): {"eager_start": True, "eager_step": False, "handle_slots": True, "run_once": True},
}
NO_FAST_PATHS = dict.fromkeys(FAST_PATHS[(3, 11)], False)


def test_each_supported_python_takes_its_fast_paths():
    from cello import _cello, _loop

    found = _cello.fast_paths()
    assert set(found) == set(NO_FAST_PATHS) and all(isinstance(v, bool) for v in found.values())
    expected = FAST_PATHS.get(sys.version_info[:2])
    if expected is None:
        pytest.skip(f"no table entry for Python {sys.version_info[:2]}")
    assert found == expected
    # The loop installs what was found, and nothing else.
    loop = _loop.EventLoop()
    try:
        assert ("call_soon" in vars(loop)) is expected["handle_slots"]
        assert (loop._run_once == loop.driver.run_once) is expected["run_once"]  # type: ignore[attr-defined]
    finally:
        loop.close()


FALLBACKS = {
    "switched-off": {"CELLO_NO_FAST_PATHS": "1"},
    "unfamiliar-asyncio": {"CELLO_TEST_UNFAMILIAR_ASYNCIO": "1"},
}

_THROUGH_ASGI = """
import json, sys, time
from cello.testing import TestClient
from tests.apps.fallbacks import app
with TestClient(app) as client:
    print(json.dumps([client.get(path).json() for path in sys.argv[1:]]))
"""


def _serve_fallback_requests(get) -> None:
    assert get("/fast-paths") == NO_FAST_PATHS
    assert get("/sync") == {"kind": "sync"}
    assert get("/async") == {"kind": "async"}
    assert get("/awaiting/a") == {"name": "GET /awaiting/{tag}"}
    assert get("/awaiting/b")["name"] == "GET /awaiting/{tag}"


@pytest.mark.parametrize("fallback", FALLBACKS)
def test_without_fast_paths_the_native_server_serves_as_usual(fallback):
    env = FALLBACKS[fallback]
    with LiveServer("tests.apps.fallbacks:app", "--env", "production", env=env) as live:
        with httpx.Client(base_url=live.url, timeout=10) as c:
            _serve_fallback_requests(lambda path: c.get(path).json())
            wait_for(lambda: sorted(c.get("/ran").json()["ran"]) == ["a", "b"])
        assert "Traceback" not in live.stderr()


@pytest.mark.parametrize("fallback", FALLBACKS)
def test_without_fast_paths_the_asgi_door_serves_as_usual(fallback):
    paths = ["/fast-paths", "/sync", "/async", "/awaiting/a", "/awaiting/b", "/ran"]
    out = subprocess.run(
        [sys.executable, "-c", _THROUGH_ASGI, *paths],
        env={**os.environ, **FALLBACKS[fallback]},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 0, out.stderr
    answers = dict(zip(paths, json.loads(out.stdout), strict=True))
    _serve_fallback_requests(answers.__getitem__)
    # TestClient's loop ran the background tasks before the last request.
    assert sorted(answers["/ran"]["ran"]) == ["a", "b"]


def wait_for(predicate, attempts: int = 200, pause: float = 0.05):
    for _ in range(attempts):
        value = predicate()
        if value:
            return value
        time.sleep(pause)
    raise AssertionError("gave up waiting")
