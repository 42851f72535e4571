"""The benchmark runner's bookkeeping: how runs from separate passes become
a table row (the measuring itself needs wrk and minutes, so it is left to
`make bench`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench


def run(req_per_s: float, cpu_s: float, requests: int = 1000, rss: float = 20.0) -> dict:
    return {
        "requests": requests,
        "duration_s": requests / req_per_s,
        "req_per_s": req_per_s,
        "p50_ms": 1.0,
        "p90_ms": 2.0,
        "p99_ms": 3.0,
        "max_ms": 4.0,
        "cpu_s": cpu_s,
        "cpu_us_per_req": cpu_s * 1e6 / requests,
        "errors_total": 0,
        "peak_rss_mib": rss,
    }


def row(server: str = "cello", path: str = "/", error: str | None = None) -> dict:
    base = {"server": server, "path": path, "table": "/"}
    return base if error is None else {**base, "error": error}


def test_a_rows_runs_from_each_pass_are_combined():
    rows = bench.Rows()
    rows.record(row(), run(100_000, 0.010, rss=20.0))
    rows.record(row(), run(80_000, 0.014, rss=25.0))
    (combined,) = rows.result()
    assert combined["requests"] == 2000
    assert combined["req_per_s"] == pytest.approx(90_000)
    assert combined["spread_pct"] == pytest.approx(20_000 * 100 / 90_000)
    # CPU per request over all requests, not a mean of the runs' ratios.
    assert combined["cpu_us_per_req"] == pytest.approx(12.0)
    assert combined["peak_rss_mib"] == 25.0
    assert len(combined["runs"]) == 2


def test_a_failure_in_any_pass_fails_the_row():
    rows = bench.Rows()
    rows.record(row(), run(100_000, 0.010))
    rows.record(row(error="GET / returned 500"))
    rows.record(row(), run(100_000, 0.010))  # a later success does not undo it
    (failed,) = rows.result()
    assert failed["error"] == "GET / returned 500"


def test_rows_keep_their_first_seen_order():
    rows = bench.Rows()
    for server in ("cello", "hyper-ceiling", "granian-raw-asgi"):
        rows.record(row(server), run(1000, 0.01))
    rows.record(row("cello"), run(1000, 0.01))
    assert [r["server"] for r in rows.result()] == ["cello", "hyper-ceiling", "granian-raw-asgi"]
