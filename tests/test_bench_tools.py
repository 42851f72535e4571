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


# --------------------------------------------------------------------------
# The middleware tables: declarations, answer checks and report, no load.


def test_rows_of_one_server_in_two_tables_on_one_path_stay_apart():
    rows = bench.Rows()
    rows.record(row(), run(100_000, 0.010))
    rows.record({**row(), "table": "3 middleware"}, run(90_000, 0.011))
    assert [r["table"] for r in rows.result()] == ["/", "3 middleware"]


def test_every_server_row_belongs_to_a_declared_table():
    for server in bench.SERVERS:
        for probe in server.probes():
            assert probe.table in bench.SCENARIOS, (server.name, probe.table)


def test_the_middleware_tables_have_their_rows():
    def table(key: str) -> list[str]:
        return [s.name for s in bench.SERVERS if any(p.table == key for p in s.probes())]

    assert table("3 middleware") == [
        "cello",
        "granian-starlette",
        "uvicorn-starlette",
        "cello-3mw",
        "granian-starlette-3mw",
        "uvicorn-starlette-3mw",
    ]
    assert table("static") == [
        "cello-static",
        "granian-starlette-static",
        "uvicorn-starlette-static",
    ]
    assert table("gzip") == ["cello-gzip", "granian-starlette-gzip", "uvicorn-starlette-gzip"]
    # Every target names rows that the table has.
    for key in ("3 middleware", "static", "gzip"):
        for target in bench.SCENARIOS[key].targets:
            assert {target.row, target.other} <= set(table(key))
    # The baseline of the three is the plain Cello app: same file, same handler.
    servers = {s.name: s for s in bench.SERVERS}
    assert servers["cello-3mw"].command(1) == servers["cello"].command(1)
    assert servers["cello-3mw"].env["BENCH_CELLO_MIDDLEWARE"] == "cors,request_id,security_headers"
    assert servers["cello"].env["BENCH_CELLO_MIDDLEWARE"] == ""


def test_the_load_sends_each_tables_headers(monkeypatch):
    argvs = []

    def fake_run(argv, **kwargs):
        argvs.append(argv)
        report = '{"requests": 1, "duration_us": 1, "errors": {}, "latency_us": {}}'
        return subprocess.CompletedProcess(argv, 0, stdout=f"WRK_JSON {report}\n", stderr="")

    monkeypatch.setattr(bench.subprocess, "run", fake_run)
    bench.run_wrk(1, bench.SCENARIOS["3 middleware"], "/", 1)
    bench.run_wrk(1, bench.SCENARIOS["gzip"], "/big", 1)
    bench.run_wrk(1, bench.SCENARIOS["/"], "/", 1)
    assert "-HOrigin: http://client.example" in argvs[0]
    assert "-HAccept-Encoding: gzip" in argvs[1]
    assert not [arg for arg in argvs[2] if arg.startswith("-H")]


def answer(body: bytes, status: int = 200, **headers: str) -> bench.Answer:
    return bench.Answer(status, body, {k.replace("_", "-"): v for k, v in headers.items()})


def test_a_gzip_answer_must_be_gzip_and_decode_to_the_json():
    import gzip
    import json

    scenario = bench.SCENARIOS["gzip"]
    body = json.dumps(scenario.expected).encode()
    good = answer(gzip.compress(body), content_encoding="gzip")
    assert bench.answer_error(scenario, (), good) is None
    plain = bench.answer_error(scenario, (), answer(body))
    assert plain == "GET /big answered with Content-Encoding None, not gzip"
    garbled = bench.answer_error(scenario, (), answer(body, content_encoding="gzip"))
    assert garbled is not None and "not gzip" in garbled
    wrong = answer(gzip.compress(b"[]"), content_encoding="gzip")
    assert bench.answer_error(scenario, (), wrong) == "GET /big answered b'[]'"


def test_a_static_answer_must_be_the_files_bytes():
    scenario = bench.SCENARIOS["static"]
    assert len(scenario.expected) == 1 << 20
    assert bench.answer_error(scenario, (), answer(scenario.expected)) is None
    short = bench.answer_error(scenario, (), answer(scenario.expected[:-1]))
    assert short == "GET /static/big.bin answered 1,048,575 bytes, not the expected 1,048,576"
    other = bench.answer_error(scenario, (), answer(bytes(1 << 20)))
    assert other == "GET /static/big.bin answered other bytes than the file's"


def test_a_middleware_row_must_show_its_headers():
    scenario = bench.SCENARIOS["3 middleware"]
    expected = bench.THREE_MIDDLEWARE_HEADERS
    body = b'{"message":"Hello, World!"}'
    full = answer(
        body,
        access_control_allow_origin="*",
        x_request_id="abc",
        x_content_type_options="nosniff",
    )
    assert bench.answer_error(scenario, expected, full) is None
    assert bench.answer_error(scenario, (), answer(body)) is None  # the baseline rows
    missing = bench.answer_error(scenario, expected, answer(body, x_request_id="abc"))
    assert missing == ("GET / answered without access-control-allow-origin, x-content-type-options")


def test_a_server_without_the_feature_is_not_available_not_failed(tmp_path, monkeypatch):
    """A Cello build without a middleware makes the app exit with the agreed
    code; the runner records every row of that server as not available."""
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        "print('not available: this build of Cello has no App.enable_cors()')\n"
        f"sys.exit({bench.UNAVAILABLE_EXIT_CODE})\n"
    )
    monkeypatch.setattr(bench, "LOGS_DIR", tmp_path / "logs")
    server = bench.Server(
        name="cello-missing",
        description="",
        command=lambda port: [sys.executable, str(script)],
        scenarios=("3 middleware",),
    )
    rows = bench.Rows()
    bench.bench_pass(server, 1, set(), rows)
    bench.bench_pass(server, 1, set(), rows)  # a second pass changes nothing
    (result,) = rows.result()
    assert result["unavailable"] == "this build of Cello has no App.enable_cors()"
    assert "error" not in result
    table = report.markdown_tables([{**result, "label": "cello-missing"}])
    assert "| cello-missing | not available | — |" in table
    assert "Not available in this build" in table
    assert "Failed rows" not in table


def test_the_cello_app_reports_a_missing_middleware_as_not_available(tmp_path):
    """The real app, imported the way the runner starts it, against an App
    with no `enable_*` methods: exit code, not a traceback."""
    fake = tmp_path / "cello"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "class App:\n    def get(self, path):\n        return lambda f: f\n    post = get\n"
    )
    apps = Path(bench.APPS_DIR)
    env = {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{apps}",
        "BENCH_CELLO_MIDDLEWARE": "cors,request_id",
    }
    completed = subprocess.run(
        [sys.executable, "-c", "import cello_app"],
        capture_output=True,
        text=True,
        env=env,
        cwd=apps,
        timeout=30,
        check=False,
    )
    assert completed.returncode == bench.UNAVAILABLE_EXIT_CODE, completed.stderr
    assert completed.stdout.strip() == (
        "not available: this build of Cello has no App.enable_cors(), App.enable_request_id()"
    )


def table_row(label: str, cpu_us: float, table: str, size: int | None = None) -> dict:
    rows = bench.Rows()
    path = bench.SCENARIOS[table].path
    base = {"server": label, "label": label, "table": table, "path": path}
    if size is not None:
        base["check_body_bytes"] = size
    rows.record(base, run(10_000, cpu_us * 1000 / 1e6))
    (combined,) = rows.result()
    return combined


def test_the_report_states_the_three_middleware_ratio():
    rows = [
        table_row("cello", 5.0, "3 middleware"),
        table_row("granian-starlette", 27.0, "3 middleware"),
        table_row("cello-3mw", 5.5, "3 middleware"),
        table_row("granian-starlette-3mw", 40.5, "3 middleware"),
        {
            "server": "uvicorn-starlette-3mw",
            "label": "uvicorn-starlette-3mw",
            "table": "3 middleware",
            "path": "/",
            "error": "GET / returned 500",
        },
    ]
    table = report.markdown_tables(rows)
    assert "### `GET /` with CORS + request ID + security headers" in table
    assert "| cello-3mw | 10,000 | 0% |" in table
    assert "| 1.10x |" in table  # CPU/req vs cello
    assert (
        "- Cello with the three vs without, target ≤ 1.15x: "
        "CPU µs/req of cello-3mw / cello = **1.10x** (met)"
    ) in table
    assert "granian-starlette-3mw / granian-starlette = **1.50x**\n" in table
    assert "uvicorn-starlette-3mw / uvicorn-starlette = not measured (" in table
    rows[2] = table_row("cello-3mw", 6.0, "3 middleware")
    assert "= **1.20x** (**not met**)" in report.markdown_tables(rows)


def test_the_report_compares_cello_with_each_peer_on_static_and_gzip():
    rows = [
        table_row("cello-gzip", 200.0, "gzip", size=12_000),
        table_row("granian-starlette-gzip", 900.0, "gzip", size=10_240),
        table_row("uvicorn-starlette-gzip", 150.0, "gzip", size=10_240),
        {
            "server": "cello-static",
            "label": "cello-static",
            "table": "static",
            "path": "/static/big.bin",
            "unavailable": "this build of Cello has no App.enable_static_files()",
        },
        table_row("granian-starlette-static", 300.0, "static", size=1 << 20),
    ]
    table = report.markdown_tables(rows)
    assert "| host CPU % | body KiB | req/s vs cello-gzip | CPU/req vs cello-gzip |" in table
    assert "| 10.0 | 1.00x | 4.50x |" in table  # granian: 10 KiB, 4.5x Cello's CPU
    assert "cello-gzip / granian-starlette-gzip = **0.22x** (met)" in table
    assert "cello-gzip / uvicorn-starlette-gzip = **1.33x** (**not met**)" in table
    assert "| cello-static | not available | — | — | — | — | — | — | — | — | — | — |" in table
    assert "| 1,024.0 | — | — |" in table  # no Cello figure to divide by
    assert "cello-static / granian-starlette-static = not measured (cello-static: " in table
    assert "- **cello-static**: this build of Cello has no App.enable_static_files()" in table
    # A target whose rows were both left out of the run is not stated.
    (line,) = report.target_lines(bench.SCENARIOS["static"], rows[4:])
    assert "cello-static / granian-starlette-static = not measured (cello-static: " in line


def test_the_static_file_is_the_same_on_every_run():
    sys.path.insert(0, str(bench.APPS_DIR))
    import payloads

    assert payloads.static_bytes() == bench.STATIC_BYTES
    assert len(set(bench.STATIC_BYTES[:4096])) > 200  # not compressible filler


# --------------------------------------------------------------------------
# The WebSocket tables (benchmarks/ws_table.py) and the Autobahn recipe
# (benchmarks/autobahn/autobahn.py): their bookkeeping, with stand-ins for
# wsload and wstest; the load itself is left to `make bench`/`make autobahn`.

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks" / "autobahn"))

import autobahn  # noqa: E402
import ws_table  # noqa: E402


def fake_wsload(tmp_path: Path, monkeypatch, script: str) -> None:
    """Points ws_table at a stand-in for the wsload binary."""
    path = tmp_path / "wsload"
    path.write_text(f"#!{sys.executable}\nimport sys\n{script}")
    path.chmod(0o755)
    monkeypatch.setattr(ws_table, "WSLOAD_BIN", path)


ECHO_REPORT = (
    '{"mode": "echo", "connections": 64, "size": 32, "messages": 20000, "duration_s": 2.0, '
    '"msg_per_s": 10000.0, "latency_us": {"p50": 1500, "p90": 2500, "p99": 4000, "max": 9000}}'
)


def test_an_echo_run_reads_wsloads_window_and_report(tmp_path, monkeypatch):
    fake_wsload(
        tmp_path,
        monkeypatch,
        "print('START', flush=True)\n"
        "print('STOP', flush=True)\n"
        f"print('WSLOAD_JSON {ECHO_REPORT}')\n",
    )
    measured = ws_table.measure_echo(os.getpid(), 1, "/echo", seconds=2, warmup=1)
    assert measured["requests"] == 20000
    assert measured["req_per_s"] == pytest.approx(10000.0)
    assert (measured["p50_ms"], measured["p99_ms"], measured["max_ms"]) == (1.5, 4.0, 9.0)
    assert measured["cpu_s"] >= 0 and measured["errors_total"] == 0
    # The run combines like a wrk run, into a row of the echo table.
    rows = bench.Rows()
    base = {"server": "uvicorn-ws-raw-asgi", "label": "uvicorn-ws-raw-asgi", "path": "/echo"}
    rows.record({**base, "table": "ws echo"}, measured)
    (combined,) = rows.result()
    assert combined["requests"] == 20000 and combined["p99_ms"] == 4.0


def test_a_wsload_failure_is_reported_with_its_reason(tmp_path, monkeypatch):
    fake_wsload(
        tmp_path,
        monkeypatch,
        "print(\"WSLOAD_ERROR sent text 'hi', got back Binary\", file=sys.stderr)\nsys.exit(1)\n",
    )
    assert ws_table.check(1, "/echo") == (
        "WebSocket echo check failed: sent text 'hi', got back Binary"
    )
    with pytest.raises(ws_table.WsloadError, match="got back Binary"):
        ws_table.measure_echo(os.getpid(), 1, "/echo", seconds=1, warmup=0)


def test_a_silent_wsload_is_stopped_at_its_deadline(tmp_path, monkeypatch):
    fake_wsload(tmp_path, monkeypatch, "import time\ntime.sleep(60)\n")
    load = ws_table.Wsload(["echo"], limit_s=0.2)
    with pytest.raises(ws_table.WsloadError, match="did not finish in time"):
        load.line()
    assert load.process.poll() is not None


def test_an_idle_run_holds_until_released_and_measures_rss_per_connection(tmp_path, monkeypatch):
    # The stand-in holds its "connections" until stdin closes, as wsload does.
    report = (
        '{"mode": "idle", "connections": 500, "opened": 500, "failed": 0, '
        '"dropped_during_hold": 0, "connect_s": 0.5, "first_failure": null}'
    )
    fake_wsload(
        tmp_path,
        monkeypatch,
        f"print('OPEN 500', flush=True)\nsys.stdin.read()\nprint('WSLOAD_JSON {report}')\n",
    )
    monkeypatch.setattr(ws_table, "WS_IDLE_HOLD_SECONDS", 0.1)
    measured = ws_table.measure_idle(os.getpid(), 1, "/echo")
    assert measured["opened"] == 500 and ws_table.idle_error(measured) is None
    assert measured["rss_per_conn_kib"] is not None


def test_idle_runs_become_a_row_of_kib_per_connection():
    wsload = {"connections": 1000, "opened": 1000, "failed": 0, "dropped_during_hold": 0}
    first = ws_table.idle_run({**wsload, "connect_s": 1.0}, 40 * 1024, [40 * 1024, 60 * 1024], 0.2)
    assert first["rss_per_conn_kib"] == pytest.approx(20.48)
    assert first["cpu_us_per_open"] == pytest.approx(200.0)
    second = ws_table.idle_run({**wsload, "connect_s": 2.0}, 40 * 1024, [50 * 1024], 0.2)
    rows = bench.Rows()
    base = {"server": "granian-ws-rsgi", "label": "granian-ws-rsgi", "path": "/echo"}
    rows.record({**base, "table": "ws idle"}, first)
    rows.record({**base, "table": "ws idle"}, second)
    (combined,) = rows.result()
    assert combined["rss_per_conn_kib"] == pytest.approx((20.48 + 10.24) / 2)
    assert combined["spread_pct"] == pytest.approx(10.24 * 100 / 15.36)
    assert combined["rss_peak_mib"] == 60.0
    assert combined["connect_s"] == 1.5
    table = report.markdown_tables([combined])
    assert f"### {ws_table.WS_IDLE_SCENARIO.title}" in table
    assert "| granian-ws-rsgi | 15.4 | 33% | 1,000 | 40.0 | 60.0 | 1.50 | 200 | — |" in table


def test_an_idle_run_that_lost_connections_is_not_comparable():
    wsload = {"connections": 100, "opened": 90, "failed": 10, "dropped_during_hold": 0}
    lossy = ws_table.idle_run(
        {**wsload, "connect_s": 1.0, "first_failure": "connect: Too many open files"},
        1024,
        [2048],
        0.1,
    )
    assert ws_table.idle_error(lossy) == (
        "90 of 100 opened, 0 dropped while held (first failure: connect: Too many open files)"
    )
    nothing = ws_table.idle_run({**wsload, "opened": 0, "connect_s": 1.0}, 1024, [1024], 0.0)
    assert nothing["rss_per_conn_kib"] is None
    assert ws_table.idle_error(nothing) == "no connection opened: None"


def test_the_echo_table_counts_messages_and_states_cellos_targets():
    rows = [
        {**table_row("cello-ws", 10.0, "ws echo"), "label": "cello-ws"},
        {**table_row("uvicorn-ws-raw-asgi", 25.0, "ws echo")},
        {**table_row("granian-ws-raw-asgi", 8.0, "ws echo")},
    ]
    table = report.markdown_tables(rows)
    assert "| server | msg/s | ± | p50 ms | p99 ms | CPU µs/msg |" in table
    assert "| msg/s vs cello-ws | CPU/msg vs cello-ws |" in table
    assert "CPU µs/msg of cello-ws / uvicorn-ws-raw-asgi = **0.40x** (met)" in table
    assert "CPU µs/msg of cello-ws / granian-ws-raw-asgi = **1.25x** (**not met**)" in table
    # HTTP tables keep their requests.
    assert "| server | req/s |" in report.markdown_tables([table_row("cello", 5.0, "/")])


def test_the_websocket_tables_have_their_rows():
    def table(key: str) -> list[str]:
        return [s.name for s in bench.SERVERS if any(p.table == key for p in s.probes())]

    expected = [
        "cello-ws",
        "cello-serve-ws-raw-asgi",
        "uvicorn-ws-raw-asgi",
        "uvicorn-ws-starlette",
        "granian-ws-raw-asgi",
        "granian-ws-rsgi",
        "hypercorn-ws-raw-asgi",
    ]
    assert table("ws echo") == expected and table("ws idle") == expected
    servers = {s.name: s for s in bench.SERVERS}
    # The echo table comes first: its peak RSS must not be the idle table's.
    assert [p.table for p in servers["cello-ws"].probes()] == ["ws echo", "ws idle"]
    # granian serves WebSockets on these rows only.
    assert "--ws" in servers["granian-ws-rsgi"].command(1)
    assert "--no-ws" in servers["granian-raw-asgi"].command(1)
    assert servers["cello-serve-ws-raw-asgi"].command(4321)[-5:] == [
        "--port",
        "4321",
        "--no-logs",
        "--env",
        "production",
    ]


def without_websocket(tmp_path: Path) -> dict[str, str]:
    """An environment whose `cello` has an App with no `websocket` method."""
    fake = tmp_path / "cello"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "class App:\n    def get(self, path):\n        return lambda f: f\n    mount = get\n"
    )
    return {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{bench.APPS_DIR}"}


@pytest.mark.parametrize(
    "argv",
    [
        ["cello_ws_app.py"],
        ["cello_mount_starlette_ws.py"],
        ["cello_serve_ws.py", "ws_echo_asgi:app", "--port", "1"],
    ],
)
def test_the_cello_websocket_apps_report_a_build_without_websockets(tmp_path, argv):
    completed = subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        env=without_websocket(tmp_path),
        cwd=bench.APPS_DIR,
        timeout=60,
        check=False,
    )
    assert completed.returncode == bench.UNAVAILABLE_EXIT_CODE, completed.stderr
    assert completed.stdout.strip() == (
        "not available: this build of Cello has no App.websocket() "
        "(WebSocket support not merged yet)"
    )


AUTOBAHN_INDEX = {
    "cello-native": {
        "1.1.1": {"behavior": "OK", "behaviorClose": "OK"},
        "6.4.3": {"behavior": "NON-STRICT", "behaviorClose": "OK"},
        "7.1.6": {"behavior": "INFORMATIONAL", "behaviorClose": "INFORMATIONAL"},
        "12.1.1": {"behavior": "UNIMPLEMENTED", "behaviorClose": "UNIMPLEMENTED"},
        "10.1.1": {"behavior": "FAILED", "behaviorClose": "OK"},
        "9.1.1": {"behavior": "FAILED", "behaviorClose": "FAILED"},
        "2.10": {"behavior": "OK", "behaviorClose": "OK"},
    },
    "someone-else": {"1.1.1": {"behavior": "FAILED"}},
}


def test_autobahns_index_is_counted_per_outcome():
    counts = autobahn.count_outcomes(AUTOBAHN_INDEX, "cello-native")
    assert counts == {
        "OK": 2,
        "NON-STRICT": 1,
        "INFORMATIONAL": 1,
        "UNIMPLEMENTED": 1,
        "FAILED": 2,
    }
    # Numeric case order: 9.1.1 before 10.1.1.
    assert autobahn.failed_cases(AUTOBAHN_INDEX, "cello-native") == ["9.1.1", "10.1.1"]
    assert autobahn.count_outcomes({}, "cello-native")["FAILED"] == 0
    odd = {"a": {"1.1.1": {"behavior": "WRONG CODE"}}}
    assert autobahn.count_outcomes(odd, "a")["WRONG CODE"] == 1


def test_the_autobahn_summary_fails_on_a_failed_case_not_on_a_skipped_target():
    failed = {
        "target": "cello-native",
        "counts": autobahn.count_outcomes(AUTOBAHN_INDEX, "cello-native"),
        "failed": ["9.1.1", "10.1.1"],
        "seconds": 61.2,
    }
    clean = {
        "target": "uvicorn-starlette",
        "counts": {"OK": 300, "NON-STRICT": 4, "INFORMATIONAL": 3, "UNIMPLEMENTED": 0, "FAILED": 0},
        "failed": [],
        "seconds": 200.0,
    }
    skipped = {"target": "cello-serve-starlette", "skipped": "no App.websocket()", "seconds": 0.4}
    broken = {"target": "cello-mount-starlette", "error": "the server died during the run"}
    table = autobahn.summary_table([clean, failed, skipped, broken])
    lines = table.splitlines()
    assert lines[0] == (
        "| target | OK | NON-STRICT | INFORMATIONAL | UNIMPLEMENTED | FAILED | total | time |"
    )
    assert "| uvicorn-starlette | 300 | 4 | 3 | 0 | 0 | 307 | 200 s |" in lines
    assert "| cello-native | 2 | 1 | 1 | 1 | 2 | 7 | 61 s |" in lines
    assert (
        "| cello-serve-starlette | skipped: no App.websocket() | — | — | — | — | — | 0 s |" in lines
    )
    assert "- **cello-native** FAILED cases: 9.1.1, 10.1.1" in lines
    assert "- **cello-mount-starlette**: the server died during the run" in lines
    assert autobahn.exit_code([clean, skipped]) == 0
    assert autobahn.exit_code([clean, failed]) == 1
    assert autobahn.exit_code([clean, broken]) == 1
    # The anchor's own FAILED cases are the bar, not a failure of the run.
    anchor = {**failed, "target": "uvicorn-starlette", "reference": True}
    assert autobahn.exit_code([anchor, skipped]) == 0
    assert "| uvicorn-starlette (reference) | 2 | 1 | 1 | 1 | 2 | 7 | 61 s |" in (
        autobahn.summary_table([anchor])
    )
    assert [t.name for t in autobahn.TARGETS if t.reference] == ["uvicorn-starlette"]


def test_the_fuzzing_spec_names_one_server_and_every_case(tmp_path):
    spec = autobahn.fuzzing_spec("cello-native", "ws://127.0.0.1:9/echo", tmp_path)
    assert spec == {
        "outdir": str(tmp_path),
        "servers": [{"agent": "cello-native", "url": "ws://127.0.0.1:9/echo"}],
        "cases": ["*"],
        "exclude-cases": [],
        "exclude-agent-cases": {},
    }


def test_an_autobahn_target_without_websocket_support_is_skipped(tmp_path, monkeypatch):
    monkeypatch.setattr(autobahn, "OUT_DIR", tmp_path)
    monkeypatch.setattr(autobahn, "LOGS_DIR", tmp_path / "logs")
    monkeypatch.setattr(autobahn, "REPORTS_DIR", tmp_path / "reports")
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        "print('not available: no App.websocket()')\n"
        f"sys.exit({bench.UNAVAILABLE_EXIT_CODE})\n"
    )
    target = autobahn.Target("cello-x", "", lambda port: [sys.executable, str(script)])
    result = autobahn.run_target(target, "/nonexistent/wstest", ("*",), timeout=10)
    assert result["skipped"] == "no App.websocket()"
    assert "error" not in result and "counts" not in result
