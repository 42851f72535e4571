"""Background work through every door (the native server, uvicorn and the
in-process transport): identical responses, and the work done after them."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from conformance.doors import Door, comparable, started_doors

APP = "conformance.background.app:app"

CASES = [
    # (path, status, events once the work is done)
    ("/queued", 202, ["sync task", "async task"]),
    ("/hooked", 200, ["sync task", "async task", "callback"]),
    ("/failed", 500, ["sync task", "async task", "callback", "after the 500"]),
]


@pytest.fixture(scope="module")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started


def events(door: Door, expected: list[str], deadline: float = 30) -> list[str]:
    stop = time.monotonic() + deadline
    while True:
        seen = door.send("GET", "/events", [], None).json()["events"]  # type: ignore[index]
        if seen == expected or time.monotonic() > stop:
            return seen
        time.sleep(0.01)


def test_every_door_answers_alike_and_does_the_work_after(doors):
    # In order: each case's events add to the ones before.
    for path, status, expected in CASES:
        answers = {}
        for door_name, door in doors.items():
            observed = door.send("GET", path, [], None)
            assert observed.status == status, f"{door_name}: {observed.body[:200]!r}"
            answers[door_name] = comparable(observed, door_name)
            assert events(door, expected) == expected, (door_name, path)
        for door_name, observed in answers.items():
            assert observed == answers["native"], f"{door_name} differs from native for {path}"
