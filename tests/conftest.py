"""Shared fixtures: a live native server per test module, and an httpx client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from cello.testing import TestClient
from tests.live import LiveServer


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    """The main test app (tests/apps/core.py) served natively, production mode."""
    with LiveServer("tests.apps.core:app", "--env", "production") as live:
        yield live


@pytest.fixture(scope="module")
def debug_server() -> Iterator[LiveServer]:
    """The same app in debug mode (tracebacks in 500 bodies)."""
    with LiveServer("tests.apps.core:app", "--debug") as live:
        yield live


@pytest.fixture(params=["native", "asgi"])
def door(request: pytest.FixtureRequest) -> str:
    """Which door a behaviour test goes through: the native server (door 1)
    or the app called as ASGI in-process (door 2)."""
    return str(request.param)


@pytest.fixture
def client(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    """An httpx client for tests/apps/core.py through the current door."""
    if door == "native":
        server: LiveServer = request.getfixturevalue("server")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            yield c
    else:
        from tests.apps.core import app

        with TestClient(app) as c:
            yield c
