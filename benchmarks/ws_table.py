"""The WebSocket tables (issue 21), loaded with ``wsload`` (benchmarks/wsload,
a Rust client: a Python one would be the bottleneck).

- ``ws echo``: WS_CONNECTIONS connections each send a WS_MESSAGE_BYTES text
  message, wait for its echo and send the next, for BENCH_DURATION seconds
  after a warm-up. Reported: messages/s, p50/p99 round trip, and the
  server's CPU µs per message (its process tree, from /proc, sampled at the
  window's edges). Target: Cello leads on CPU per message.
- ``ws idle``: WS_IDLE_CONNECTIONS connections opened and held. Reported:
  the server's RSS per connection, (peak RSS while held - RSS before) /
  connections, plus the CPU spent opening them.

Every server serves the same echo (``ws_echo_asgi.py``, ``rsgi_ws_app.py``,
``starlette_ws_app.py``, ``cello_ws_app.py``). bench.py adds these
scenarios and servers to its own and hands their rows to ``check``,
``measure_echo`` and ``measure_idle`` here instead of to wrk.
"""

from __future__ import annotations

import json
import os
import re
import resource
import select
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from procs import host_cpu_ticks, process_tree, read_stat
from settings import APPS_DIR, CELLO_PYTHON, CLOCK_TICKS, REPO, Scenario, Target

WSLOAD_BIN = Path(
    os.environ.get("WSLOAD_BIN", REPO / "target" / "bench-wsload" / "release" / "wsload")
)
WS_CONNECTIONS = int(os.environ.get("BENCH_WS_CONNECTIONS", "64"))
WS_MESSAGE_BYTES = 32
WS_IDLE_CONNECTIONS = int(os.environ.get("BENCH_WS_IDLE_CONNECTIONS", "10000"))
# Handshakes in flight at once while opening the idle connections: below
# every server's listen backlog, so none is refused for want of room.
WS_IDLE_CONCURRENCY = 128
# How long the idle connections are held while the server's RSS is sampled.
WS_IDLE_HOLD_SECONDS = 2.0
WS_IDLE_SAMPLE_SECONDS = 0.25
# Bounds on one wsload run beyond its nominal length.
WSLOAD_SLACK_SECONDS = 60

WS_ECHO_KEY = "ws echo"
WS_IDLE_KEY = "ws idle"

WS_ECHO_SCENARIO = Scenario(
    WS_ECHO_KEY,
    f"WebSocket echo, {WS_CONNECTIONS} connections, {WS_MESSAGE_BYTES} B text messages",
    "GET", "/echo", None,
    f"each of {WS_CONNECTIONS} WebSocket connections sends a {WS_MESSAGE_BYTES}-byte text "
    "message and waits for its echo before sending the next (`wsload echo`); the rate is "
    "messages echoed per second, the latency a message's round trip",
    baseline="cello-ws",
    targets=(
        Target("cello-ws", "uvicorn-ws-raw-asgi", 1.0,
               "Cello vs uvicorn + websockets, Cello must lead (≤ 1x)"),
        Target("cello-ws", "granian-ws-raw-asgi", 1.0,
               "Cello vs granian (ASGI), Cello must lead (≤ 1x)"),
        Target("cello-ws", "granian-ws-rsgi", None,
               "Cello vs granian's native RSGI, for context"),
    ),
    kind="ws-echo",
)  # fmt: skip

WS_IDLE_SCENARIO = Scenario(
    WS_IDLE_KEY,
    f"{WS_IDLE_CONNECTIONS:,} idle WebSocket connections",
    "GET", "/echo", None,
    f"{WS_IDLE_CONNECTIONS:,} WebSocket connections opened ({WS_IDLE_CONCURRENCY} handshakes "
    f"at a time) and held for {WS_IDLE_HOLD_SECONDS:.0f} s without traffic (`wsload idle`); "
    "the server's memory per connection is its RSS while they are held, above its RSS "
    "before, divided by the connections",
    baseline="cello-ws",
    kind="ws-idle",
)  # fmt: skip

SCENARIOS = (WS_ECHO_SCENARIO, WS_IDLE_SCENARIO)


def ws_servers(
    server: Callable[..., Any],
    cello_script: Callable[..., Callable[[int], list[str]]],
    uvicorn: Callable[..., Callable[[int], list[str]]],
    granian: Callable[..., Callable[[int], list[str]]],
    hypercorn: Callable[..., Callable[[int], list[str]]],
    uvloop: str,
) -> list[Any]:
    """The tables' rows, built with bench.py's own helpers. The echo table
    comes first: its peak RSS column is the process's high-water mark, which
    10,000 idle connections would otherwise set. The idle table's figure is
    a growth over the RSS just before, so the 64 echo connections closed
    before it barely move it."""
    both = (WS_ECHO_KEY, WS_IDLE_KEY)
    return [
        server(
            name="cello-ws",
            description="Cello `app.run`, native `@app.websocket('/echo')` (door 1)",
            command=cello_script("cello_ws_app.py"),
            env={"PORT": "{port}"},
            scenarios=both,
        ),
        server(
            name="cello-serve-ws-raw-asgi",
            description="`cello serve` hosting the bare ASGI echo app (door 3)",
            command=lambda port: [
                str(CELLO_PYTHON), str(APPS_DIR / "cello_serve_ws.py"), "ws_echo_asgi:app",
                "--port", str(port), "--no-logs", "--env", "production",
            ],
            scenarios=both,
        ),
        server(
            name="uvicorn-ws-raw-asgi",
            description=f"{uvloop} + websockets (sans-I/O), 1 worker, bare ASGI echo app",
            command=uvicorn("ws_echo_asgi:app"),
            scenarios=both,
        ),
        server(
            name="uvicorn-ws-starlette",
            description=f"{uvloop} + websockets (sans-I/O), 1 worker, Starlette `WebSocketRoute`",
            command=uvicorn("starlette_ws_app:app"),
            scenarios=both,
        ),
        server(
            name="granian-ws-raw-asgi",
            description="granian, 1 worker, bare ASGI echo app",
            command=granian("ws_echo_asgi:app", "asgi", websockets=True),
            scenarios=both,
        ),
        server(
            name="granian-ws-rsgi",
            description="granian, 1 worker, bare RSGI echo app (granian's native protocol)",
            command=granian("rsgi_ws_app:app", "rsgi", websockets=True),
            scenarios=both,
        ),
        server(
            name="hypercorn-ws-raw-asgi",
            description="hypercorn (asyncio, wsproto), 1 worker, bare ASGI echo app",
            command=hypercorn("ws_echo_asgi:app"),
            scenarios=both,
        ),
    ]  # fmt: skip


def raise_fd_limit() -> int:
    """Lifts this process's open-file limit to its hard limit, so the servers
    it starts (and wsload) can hold the idle table's connections; returns
    the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError):
            pass
    return soft


# --------------------------------------------------------------------------
# /proc


def tree_rss_kib(root: int) -> int:
    """VmRSS summed over the process tree, KiB."""
    total = 0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total += int(match.group(1))
    return total


def tree_cpu_seconds(root: int) -> float:
    ticks = 0
    for pid in process_tree(root):
        stat = read_stat(pid)
        if stat is not None:
            ticks += stat[1]
    return ticks / CLOCK_TICKS


# --------------------------------------------------------------------------
# Talking to wsload


class WsloadError(RuntimeError):
    pass


def url(port: int, path: str) -> str:
    return f"ws://127.0.0.1:{port}{path}"


class Wsload:
    """A running wsload, read line by line with a deadline."""

    def __init__(self, args: list[str], limit_s: float, stdin: bool = False):
        self.deadline = time.monotonic() + limit_s
        self.process = subprocess.Popen(
            [str(WSLOAD_BIN), *args],
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.buffer = b""
        self.lines: list[str] = []

    def line(self) -> str:
        """The next stdout line; WsloadError at EOF or the deadline."""
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.kill()
                raise WsloadError("wsload did not finish in time")
            chunk = os.read(fd, 65536)
            if not chunk:
                self.process.wait()
                raise WsloadError(self.failure())
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\n", 1)
        line = raw.decode(errors="replace")
        self.lines.append(line)
        return line

    def expect(self, prefix: str) -> str:
        line = self.line()
        if not line.startswith(prefix):
            self.kill()
            raise WsloadError(f"wsload said {line!r}, expected {prefix}")
        return line

    def result(self) -> dict:
        line = self.expect("WSLOAD_JSON ")
        self.process.wait(timeout=max(1.0, self.deadline - time.monotonic()))
        return json.loads(line.removeprefix("WSLOAD_JSON "))

    def release(self) -> None:
        """Closes wsload's stdin: an idle run lets its connections go."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()

    def failure(self) -> str:
        assert self.process.stderr is not None
        err = self.process.stderr.read().decode(errors="replace").strip()
        for line in err.splitlines():
            if line.startswith("WSLOAD_ERROR "):
                return line.removeprefix("WSLOAD_ERROR ")
        return f"wsload exited with {self.process.returncode}: {err[-300:]}"

    def kill(self) -> None:
        """Ends wsload if it still runs and closes its pipes."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                pipe.close()


def check(port: int, path: str) -> str | None:
    """None if the server echoes a text and a binary message unchanged,
    else why not."""
    load = Wsload(["check", "--url", url(port, path)], limit_s=30)
    try:
        load.result()
        return None
    except WsloadError as error:
        return f"WebSocket echo check failed: {error}"
    finally:
        load.kill()


def measure_echo(pid: int, port: int, path: str, seconds: int, warmup: int) -> dict:
    """One timed echo run; CPU sampled at wsload's START and STOP lines."""
    args = [
        "echo", "--url", url(port, path),
        "--connections", str(WS_CONNECTIONS),
        "--size", str(WS_MESSAGE_BYTES),
        "--duration", str(seconds),
        "--warmup", str(warmup),
    ]  # fmt: skip
    load = Wsload(args, limit_s=seconds + warmup + WSLOAD_SLACK_SECONDS)
    try:
        load.expect("START")
        cpu_before = tree_cpu_seconds(pid)
        host_before = host_cpu_ticks()
        load.expect("STOP")
        cpu_s = tree_cpu_seconds(pid) - cpu_before
        host_after = host_cpu_ticks()
        report = load.result()
    finally:
        load.kill()
    return echo_run(report, cpu_s, host_before, host_after, peak_rss_mib(pid))


def echo_run(
    report: dict,
    cpu_s: float,
    host_before: tuple[int, int],
    host_after: tuple[int, int],
    peak_rss: float,
) -> dict:
    """One run's figures in the keys bench.combine() and the report read
    (a message is the table's "request")."""
    messages = report["messages"]
    busy = host_after[0] - host_before[0]
    total = host_after[1] - host_before[1]
    latency = report["latency_us"]
    return {
        "requests": messages,
        "duration_s": report["duration_s"],
        "req_per_s": messages / report["duration_s"],
        "p50_ms": latency["p50"] / 1000,
        "p90_ms": latency["p90"] / 1000,
        "p99_ms": latency["p99"] / 1000,
        "max_ms": latency["max"] / 1000,
        "cpu_s": cpu_s,
        "cpu_us_per_req": cpu_s * 1e6 / messages if messages else None,
        # wsload stops at the first wrong or missing echo, so a finished
        # run has none.
        "wrk_errors": {},
        "errors_total": 0,
        "wsload": report,
        "peak_rss_mib": peak_rss,
        "host_busy_pct": busy * 100 / total if total else None,
    }


def peak_rss_mib(pid: int) -> float:
    total = 0
    for child in process_tree(pid):
        try:
            status = Path(f"/proc/{child}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total += int(match.group(1))
    return total / 1024


def measure_idle(pid: int, port: int, path: str) -> dict:
    """Opens WS_IDLE_CONNECTIONS, samples the server's RSS while they are
    held, releases them."""
    rss_before = tree_rss_kib(pid)
    cpu_before = tree_cpu_seconds(pid)
    args = [
        "idle", "--url", url(port, path),
        "--connections", str(WS_IDLE_CONNECTIONS),
        "--concurrency", str(WS_IDLE_CONCURRENCY),
        "--max-hold", str(WS_IDLE_HOLD_SECONDS + WSLOAD_SLACK_SECONDS),
    ]  # fmt: skip
    load = Wsload(args, limit_s=3 * WSLOAD_SLACK_SECONDS, stdin=True)
    samples: list[int] = []
    try:
        load.expect("OPEN ")
        cpu_open = tree_cpu_seconds(pid) - cpu_before
        hold_until = time.monotonic() + WS_IDLE_HOLD_SECONDS
        while True:
            samples.append(tree_rss_kib(pid))
            if time.monotonic() >= hold_until:
                break
            time.sleep(WS_IDLE_SAMPLE_SECONDS)
        load.release()
        report = load.result()
    finally:
        load.kill()
    return idle_run(report, rss_before, samples, cpu_open)


def idle_run(report: dict, rss_before_kib: int, samples_kib: list[int], cpu_open_s: float) -> dict:
    """One idle run's figures: the RSS growth at its peak, per connection
    actually open."""
    opened = report["opened"]
    peak = max(samples_kib) if samples_kib else rss_before_kib
    grown = peak - rss_before_kib
    return {
        "connections": report["connections"],
        "opened": opened,
        "failed": report["failed"],
        "first_failure": report.get("first_failure"),
        "dropped": report["dropped_during_hold"],
        "connect_s": report["connect_s"],
        "rss_before_mib": rss_before_kib / 1024,
        "rss_peak_mib": peak / 1024,
        "rss_per_conn_kib": grown / opened if opened else None,
        "cpu_open_s": cpu_open_s,
        "cpu_us_per_open": cpu_open_s * 1e6 / opened if opened else None,
        "wsload": report,
    }


def idle_error(run: dict) -> str | None:
    """A run that could not open every connection, or lost some while they
    were held, is not comparable: why, or None."""
    if run["opened"] == 0:
        return f"no connection opened: {run.get('first_failure')}"
    if run["failed"] or run["dropped"]:
        return (
            f"{run['opened']:,} of {run['connections']:,} opened, {run['dropped']} dropped "
            f"while held (first failure: {run.get('first_failure')})"
        )
    return None


def combine_idle(row: dict, runs: list[dict]) -> dict:
    """A row of the idle table from its runs: medians, and the spread of the
    per-connection figure between runs."""

    def median(key: str) -> float | None:
        values = [run[key] for run in runs if run[key] is not None]
        return statistics.median(values) if values else None

    per_conn = [run["rss_per_conn_kib"] for run in runs if run["rss_per_conn_kib"] is not None]
    middle = median("rss_per_conn_kib")
    row.update(
        opened=min(run["opened"] for run in runs),
        connections=runs[0]["connections"],
        rss_per_conn_kib=middle,
        spread_pct=(max(per_conn) - min(per_conn)) * 100 / middle if middle else 0,
        rss_before_mib=median("rss_before_mib"),
        rss_peak_mib=max(run["rss_peak_mib"] for run in runs),
        connect_s=median("connect_s"),
        cpu_us_per_open=median("cpu_us_per_open"),
        runs=runs,
    )
    return row


# --------------------------------------------------------------------------
# Report


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def idle_table(scenario: Scenario, rows: list[dict], label: Callable[[dict], str]) -> list[str]:
    """The idle table's Markdown lines (report.markdown_tables calls it)."""
    base = next(
        (r for r in rows if r["label"] == scenario.baseline and "rss_per_conn_kib" in r), None
    )
    base_kib = base["rss_per_conn_kib"] if base else None
    out = [
        f"| server | KiB / connection | ± | open | RSS before MiB | RSS held MiB "
        f"| open s | CPU µs / open | KiB/conn vs {scenario.baseline} |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for row in rows:
        name = label(row)
        if "unavailable" in row:
            out.append(f"| {name} | not available |{' — |' * 7}")
            continue
        if "error" in row:
            out.append(f"| {name} | failed |{' — |' * 7}")
            continue
        kib = row["rss_per_conn_kib"]
        ratio = "—" if kib is None or not base_kib else f"{kib / base_kib:.2f}x"
        out.append(
            f"| {name} | {_fmt(kib, ',.1f')} | {row['spread_pct'] / 2:.0f}% "
            f"| {row['opened']:,} | {row['rss_before_mib']:.1f} | {row['rss_peak_mib']:.1f} "
            f"| {_fmt(row['connect_s'], '.2f')} | {_fmt(row['cpu_us_per_open'], ',.0f')} "
            f"| {ratio} |"
        )
    return out
