"""Starts each door once per session for the conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.doors import DOORS, Door

APP = "conformance.http.app:app"


@pytest.fixture(scope="session")
def doors() -> Iterator[dict[str, Door]]:
    started: dict[str, Door] = {}
    try:
        for door_type in DOORS:
            door = door_type(APP)
            door.start()
            started[door.name] = door
        yield started
    finally:
        for door in started.values():
            door.stop()
