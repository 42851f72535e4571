"""``make conformance``: the corpus and the fuzzer through every door, with a
per-door summary table.

    python -m conformance
"""

from __future__ import annotations

import logging
import sys
import time

from conformance.doors import DOORS, Door, comparable
from conformance.http import test_fuzz
from conformance.http.corpus import CASES

APP = "conformance.http.app:app"


def main() -> int:
    # The corpus raises on purpose; the in-process door would log each one.
    logging.getLogger("cello.error").disabled = True
    doors: dict[str, Door] = {}
    for door_type in DOORS:
        door = door_type(APP)
        door.start()
        doors[door.name] = door
    expected_ok = dict.fromkeys(doors, 0)
    same_as_native = dict.fromkeys(doors, 0)
    failures: list[str] = []
    started = time.monotonic()
    try:
        for case in CASES:
            answers = {}
            for name, door in doors.items():
                observed = door.send(case.method, case.path, case.headers, case.body)
                headers: dict[str, list[str]] = {}
                for key, value in observed.headers:
                    headers.setdefault(key, []).append(value)
                try:
                    case.check(observed.status, headers, observed.body)
                    expected_ok[name] += 1
                except AssertionError as exc:
                    failures.append(f"[{name}] {exc}")
                answers[name] = comparable(observed, name)
            for name, observed in answers.items():
                if observed == answers["native"]:
                    same_as_native[name] += 1
                else:
                    failures.append(f"[{name}] differs from native: {case.name}")
        fuzz_error = None
        try:
            test_fuzz.test_doors_agree(doors=doors)
        except Exception as exc:
            fuzz_error = exc
    finally:
        for door in doors.values():
            door.stop()
    elapsed = time.monotonic() - started

    total = len(CASES)
    fuzzed = test_fuzz.generated
    print(f"Conformance: {total} corpus cases, {fuzzed} generated requests, {elapsed:.1f} s\n")
    print("| door | corpus: as expected | corpus: identical to native | fuzzer: identical |")
    print("|---|--:|--:|--:|")
    for name in doors:
        fuzz = "diverged" if fuzz_error else f"{fuzzed}/{fuzzed}"
        print(f"| {name} | {expected_ok[name]}/{total} | {same_as_native[name]}/{total} | {fuzz} |")
    differences = len(failures) + (1 if fuzz_error else 0)
    print(f"\nDifferences: {differences}")
    for failure in failures[:20]:
        print(f"  {failure}")
    if fuzz_error:
        print(f"  fuzzer: {fuzz_error}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
