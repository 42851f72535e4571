"""The benchmark tools' own logic: how runs from separate passes become a
table row, how the instruction counter drives a server and reports, and the
/proc readings (the measuring itself needs wrk, valgrind and minutes, so it
is left to `make bench`)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench
import instructions
import procs
import report


def run(
    req_per_s: float, cpu_s: float, requests: int = 1000, rss: float = 20.0, host: float = 90.0
) -> dict:
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
        "host_busy_pct": host,
    }


def row(server: str = "cello", path: str = "/", error: str | None = None) -> dict:
    base = {"server": server, "path": path, "table": "/"}
    return base if error is None else {**base, "error": error}


def test_a_rows_runs_from_each_pass_are_combined():
    rows = bench.Rows()
    rows.record(row(), run(100_000, 0.010, rss=20.0, host=80.0))
    rows.record(row(), run(80_000, 0.014, rss=25.0, host=100.0))
    (combined,) = rows.result()
    assert combined["requests"] == 2000
    assert combined["req_per_s"] == pytest.approx(90_000)
    assert combined["spread_pct"] == pytest.approx(20_000 * 100 / 90_000)
    assert combined["cpu_us_per_req"] == pytest.approx(12.0)
    assert combined["peak_rss_mib"] == 25.0
    assert combined["host_busy_pct"] == pytest.approx(90.0)
    assert len(combined["runs"]) == 2


def test_one_run_thrown_off_does_not_move_a_row_of_three():
    rows = bench.Rows()
    rows.record(row(), run(100_000, 0.010))  # 10 us/req
    rows.record(row(), run(60_000, 0.020, requests=600))  # the outlier: 33 us/req
    rows.record(row(), run(104_000, 0.011))  # 11 us/req
    (combined,) = rows.result()
    assert combined["req_per_s"] == pytest.approx(100_000)
    assert combined["cpu_us_per_req"] == pytest.approx(11.0)
    assert combined["requests"] == 2600
    # The spread still shows the outlier, so the row is read with care.
    assert combined["spread_pct"] == pytest.approx(44_000 * 100 / 100_000)


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


def test_the_tables_show_how_busy_the_machine_was():
    rows = bench.Rows()
    rows.record({**row(), "label": "cello"}, run(100_000, 0.010, host=97.0))
    table = report.markdown_tables(rows.result())
    assert "| host CPU % |" in table
    assert "| 97 |" in table


def test_the_server_command_is_what_follows_the_double_dash():
    argv = ["/", "--requests", "10", "--", "srv", "--port", "{port}"]
    assert instructions.split_command(argv) == (
        ["/", "--requests", "10"],
        ["srv", "--port", "{port}"],
    )
    assert instructions.split_command(["/users/42", "--keep", "out"]) == (
        ["/users/42", "--keep", "out"],
        [],
    )


def test_the_instruction_table_compares_with_cello():
    counted = {
        "table": "/",
        "requests": 3000,
        "warmup": 1000,
        "connections": 16,
        "rows": [
            {"server": "cello", "label": "cello", "path": "/", "instructions_per_request": 10000},
            {
                "server": "cello",
                "label": "cello `async def`",
                "path": "/async",
                "instructions_per_request": 15000,
            },
            {"server": "granian", "label": "granian", "path": "/", "error": "CountError: boom"},
        ],
    }
    table = report.instruction_table(counted)
    assert "| cello | 10,000 | 1.00x |" in table
    assert "| cello `async def` (`/async`) | 15,000 | 1.50x |" in table
    assert "| granian | failed: CountError: boom | — |" in table
    assert "Not counted in this run: valgrind not installed" in report.instruction_table(
        {"skipped": "valgrind not installed"}
    )


def test_the_instruction_pass_can_be_switched_off(monkeypatch):
    monkeypatch.setenv("BENCH_INSTRUCTIONS", "0")
    assert bench.instruction_pass(bench.SERVERS, set()) == {"skipped": "BENCH_INSTRUCTIONS=0"}
    monkeypatch.delenv("BENCH_INSTRUCTIONS")
    skipped = bench.instruction_pass(bench.SERVERS, {"/echo"})
    assert skipped == {"skipped": "the '/' table was not selected"}


def serve_closing_after(answers_per_connection: int) -> tuple[int, list[int], threading.Thread]:
    """A server that answers GET with 200 and closes each connection after
    `answers_per_connection` answers, announcing it as HTTP/1.1 requires."""
    listener = socket.create_server(("127.0.0.1", 0))
    served: list[int] = []

    def serve() -> None:
        with listener:
            listener.settimeout(10)
            while sum(served) < 5:
                conn, _ = listener.accept()
                with conn:
                    count = 0
                    buffer = b""
                    while count < answers_per_connection and sum(served) + count < 5:
                        while b"\r\n\r\n" not in buffer:
                            buffer += conn.recv(1024)
                        buffer = buffer.split(b"\r\n\r\n", 1)[1]
                        count += 1
                        last = count == answers_per_connection
                        conn.sendall(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n"
                            + (b"connection: close\r\n" if last else b"")
                            + b"\r\n{}"
                        )
                    served.append(count)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener.getsockname()[1], served, thread


def test_the_load_carries_on_over_a_new_connection_when_the_server_closes():
    port, served, thread = serve_closing_after(2)
    request = instructions.request_bytes("GET", "/", None)
    instructions.load(port, request, total=5, connections=1)
    thread.join(10)
    assert served == [2, 2, 1]


def test_a_wrong_answer_fails_the_count():
    listener = socket.create_server(("127.0.0.1", 0))

    def answer_404() -> None:
        conn, _ = listener.accept()
        with conn, listener:
            conn.recv(1024)
            conn.sendall(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n")

    threading.Thread(target=answer_404, daemon=True).start()
    request = instructions.request_bytes("GET", "/", None)
    with pytest.raises(instructions.CountError, match="unexpected answer"):
        instructions.load(listener.getsockname()[1], request, total=1, connections=1)


def test_the_process_tree_includes_children():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert procs.process_tree(os.getpid())[0] == os.getpid()
        assert child.pid in procs.process_tree(os.getpid())
    finally:
        child.kill()
        child.wait()


def test_host_cpu_ticks_count_busy_time_within_the_total():
    busy, total = procs.host_cpu_ticks()
    assert 0 <= busy <= total
    sum(i * i for i in range(200_000))  # some CPU time passes
    later_busy, later_total = procs.host_cpu_ticks()
    assert later_total >= total and later_busy >= busy
