"""Every corpus case through every door: each answer must be the expected
one, and all doors must answer identically (status, headers except
``date``/``server``, and body bytes)."""

from __future__ import annotations

import pytest

from conformance.doors import comparable
from conformance.http.corpus import CASES, Case


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case(doors, case: Case):
    answers = {}
    for name, door in doors.items():
        observed = door.send(case.method, case.path, case.headers, case.body)
        headers: dict[str, list[str]] = {}
        for key, value in observed.headers:
            headers.setdefault(key, []).append(value)
        case.check(observed.status, headers, observed.body)
        answers[name] = comparable(observed, name)
    native = answers["native"]
    for name, observed in answers.items():
        assert observed == native, f"{name} differs from native for {case.name}"
