"""Starts each door once per session for the conformance suite."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from conformance.doors import Door, started_doors

APP = "conformance.http.app:app"


@pytest.fixture(scope="session")
def doors() -> Iterator[dict[str, Door]]:
    with started_doors(APP) as started:
        yield started
