"""Shared fixtures: a live native server per test module, and an httpx client."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

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


@pytest.fixture
def client(server: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as c:
        yield c
