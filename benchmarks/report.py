"""Turning benchmark rows into docs/benchmarks.md: machine facts, versions
and one Markdown table per scenario."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path

import ws_table
from settings import (
    CELLO_PYTHON,
    PEER_BIN,
    REPO,
    ROBYN_PYTHON,
    SCENARIOS,
    WARMUP_SECONDS,
    WRK_CONNECTIONS,
    WRK_THREADS,
    WRK_TIMEOUT_SECONDS,
    Scenario,
)

# --------------------------------------------------------------------------
# Reporting


def _command_output(argv: list[str]) -> str:
    try:
        completed = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    output = (completed.stdout or completed.stderr).strip()
    return output.splitlines()[0] if completed.returncode == 0 and output else "unavailable"


def _package_versions(python: Path, names: list[str]) -> dict[str, str]:
    code = (
        "import importlib.metadata as m, json, sys\n"
        "out = {}\n"
        "for n in sys.argv[1:]:\n"
        "    try: out[n] = m.version(n)\n"
        "    except m.PackageNotFoundError: out[n] = 'not installed'\n"
        "print(json.dumps(out))\n"
    )
    raw = _command_output([str(python), "-c", code, *names])
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return dict.fromkeys(names, "unavailable")


def machine_facts() -> dict:
    cpu_model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    peer_python = PEER_BIN / "python"
    return {
        "nproc": os.cpu_count(),
        "cpu_model": cpu_model,
        "kernel": platform.release(),
        "os": _command_output(["sh", "-c", ". /etc/os-release && echo $PRETTY_NAME"]),
        "python_cello": _command_output([str(CELLO_PYTHON), "--version"]),
        "python_peers": _command_output([str(peer_python), "--version"]),
        "cello": _package_versions(CELLO_PYTHON, ["cello"])["cello"],
        "cello_python": _display_path(CELLO_PYTHON),
        "peers": {
            **_package_versions(
                peer_python,
                [
                    "granian",
                    "uvicorn",
                    "fastapi",
                    "starlette",
                    "blacksheep",
                    "uvloop",
                    "httptools",
                    "websockets",
                    "hypercorn",
                ],
            ),
            **_package_versions(ROBYN_PYTHON, ["robyn"]),
        },
        # cello-under-uvicorn runs the uvicorn installed in Cello's venv.
        "uvicorn_cello_venv": _package_versions(CELLO_PYTHON, ["uvicorn"])["uvicorn"],
        "rustc": _command_output(["rustc", "--version"]),
        "wrk": _wrk_version(),
    }


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _wrk_version() -> str:
    # `wrk --version` prints its banner and exits non-zero, so read it directly.
    try:
        completed = subprocess.run(
            ["wrk", "--version"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unavailable"
    first = (completed.stdout or completed.stderr).strip().splitlines()
    return first[0].split(" [")[0] if first else "unavailable"


def _fmt(value: float | None, spec: str) -> str:
    return "—" if value is None else format(value, spec)


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}x"


def _row_label(row: dict, table_path: str) -> str:
    """The server's label, with the path when the row is an extra probe."""
    if row["path"] != table_path:
        return f"{row['label']} (`{row['path']}`)"
    return row["label"]


def _measured(row: dict) -> bool:
    return "error" not in row and "unavailable" not in row


def _cpu_per_request(rows: list[dict], label: str) -> float | None:
    row = next((r for r in rows if r["label"] == label and _measured(r)), None)
    return row["cpu_us_per_req"] if row else None


def _size(row: dict) -> str:
    size = row.get("check_body_bytes")
    if size is None:
        return "—"
    return f"{size / 1024:,.1f}"


def _unit(scenario: Scenario) -> str:
    """What one row's rate counts: requests, or echoed WebSocket messages."""
    return "msg" if scenario.kind == "ws-echo" else "req"


def target_lines(scenario: Scenario, rows: list[dict]) -> list[str]:
    """The scenario's targets as list items: the ratio of CPU per request and
    whether it is met, or which row had no figure. Targets with neither row
    in the run are left out."""
    out = []
    present = {row["label"] for row in rows}
    for target in scenario.targets:
        if not {target.row, target.other} & present:
            continue  # neither row was in this run (BENCH_SERVERS)
        row = _cpu_per_request(rows, target.row)
        other = _cpu_per_request(rows, target.other)
        if row is None or other is None:
            absent = [
                name for name, cpu in ((target.row, row), (target.other, other)) if cpu is None
            ]
            verdict = f"not measured ({', '.join(absent)}: no figure in this run)"
        elif target.extra_us_at_most is not None:
            extra = row - other
            verdict = f"**{extra:+.1f} µs** ({row / other:.2f}x)"
            verdict += " (met)" if extra <= target.extra_us_at_most else " (**not met**)"
            out.append(
                f"- {target.goal}: CPU µs/{_unit(scenario)} of {target.row} - {target.other} "
                f"= {verdict}"
            )
            continue
        else:
            ratio = row / other
            verdict = f"**{ratio:.2f}x**"
            if target.at_most is not None:
                verdict += " (met)" if ratio <= target.at_most else " (**not met**)"
        out.append(
            f"- {target.goal}: CPU µs/{_unit(scenario)} of {target.row} / {target.other} "
            f"= {verdict}"
        )
    return out


def markdown_tables(rows: list[dict]) -> str:
    out = []
    for scenario in SCENARIOS.values():
        table_rows = [row for row in rows if row["table"] == scenario.key]
        if not table_rows:
            continue
        out.append(f"### {scenario.title}\n")
        out.append(f"{scenario.blurb[0].upper()}{scenario.blurb[1:]}.\n")
        if scenario.kind == "ws-idle":
            # Memory per connection, not a request rate: a table of its own.
            out.extend(ws_table.idle_table(scenario, table_rows, lambda r: r["label"]))
            out.append("")
            continue
        base = next(
            (r for r in table_rows if r["label"] == scenario.baseline and _measured(r)), None
        )
        base_rps = base["req_per_s"] if base else None
        base_cpu = base["cpu_us_per_req"] if base else None
        size_head, size_rule = (" body KiB |", "--:|") if scenario.show_size else ("", "")
        unit = _unit(scenario)
        out.append(
            f"| server | {unit}/s | ± | p50 ms | p99 ms | CPU µs/{unit} | peak RSS MiB | errors "
            f"| host CPU % |{size_head} {unit}/s vs {scenario.baseline} "
            f"| CPU/{unit} vs {scenario.baseline} |"
        )
        out.append(f"|---|--:|--:|--:|--:|--:|--:|--:|--:|{size_rule}--:|--:|")
        dashes = " — |" * (10 if scenario.show_size else 9)
        for row in table_rows:
            label = _row_label(row, scenario.path)
            if "unavailable" in row:
                out.append(f"| {label} | not available |{dashes}")
                continue
            if "error" in row:
                out.append(f"| {label} | failed |{dashes}")
                continue
            size = f" {_size(row)} |" if scenario.show_size else ""
            out.append(
                f"| {label} | {row['req_per_s']:,.0f} | {row['spread_pct'] / 2:.0f}% "
                f"| {row['p50_ms']:.2f} "
                f"| {row['p99_ms']:.2f} | {_fmt(row['cpu_us_per_req'], '.1f')} "
                f"| {row['peak_rss_mib']:.1f} | {row['errors_total']} "
                f"| {_fmt(row.get('host_busy_pct'), '.0f')} |{size}"
                f" {_ratio(row['req_per_s'], base_rps)} "
                f"| {_ratio(row['cpu_us_per_req'], base_cpu)} |"
            )
        out.append("")
        if scenario.targets:
            out.extend(target_lines(scenario, table_rows))
            out.append("")
    unavailable = [row for row in rows if "unavailable" in row]
    if unavailable:
        out.append("Not available in this build (the server could not turn the feature on):\n")
        reasons: dict[str, str] = {}
        for row in unavailable:
            reasons.setdefault(row["server"], row["unavailable"])
        out.extend(f"- **{server}**: {reason}" for server, reason in reasons.items())
        out.append("")
    failures = [row for row in rows if "error" in row]
    if failures:
        out.append("Failed rows:\n")
        # A server that did not start fails every row the same way: say it once.
        reasons_by_server: dict[str, list[dict]] = {}
        for row in failures:
            reasons_by_server.setdefault(row["server"], []).append(row)
        for server, server_rows in reasons_by_server.items():
            all_failed = len(server_rows) == sum(r["server"] == server for r in rows)
            if all_failed and len({row["error"] for row in server_rows}) == 1:
                out.append(f"- **{server}**: {server_rows[0]['error']}")
            else:
                for row in server_rows:
                    out.append(f"- **{server}** `{row['path']}`: {row['error']}")
        out.append("")
    return "\n".join(out)


def instruction_table(instructions: dict | None) -> str:
    """The callgrind section: instructions per request, with the ratio to
    Cello's own row."""
    if not instructions:
        return ""
    if "skipped" in instructions:
        skipped = instructions["skipped"]
        return f"### Instructions per request\n\nNot counted in this run: {skipped}.\n"
    scenario = SCENARIOS[instructions["table"]]
    rows = instructions["rows"]
    base = next((r for r in rows if r["label"] == scenario.baseline and "error" not in r), None)
    base_count = base["instructions_per_request"] if base else None
    out = [
        f"### Instructions per request ({scenario.title})\n",
        "User-space instructions the server's processes executed per request, counted by "
        "valgrind's callgrind over "
        f"{instructions['requests']:,} requests on {instructions['connections']} keep-alive "
        f"connections after {instructions['warmup']:,} unmeasured ones "
        "(`benchmarks/instructions.py`). The kernel's share is not in it. The count repeats "
        "to within a fraction of a percent from run to run, so it settles differences that "
        "the timed runs' spread hides.\n",
        f"| server | instructions / request | vs {scenario.baseline} |",
        "|---|--:|--:|",
    ]
    for row in rows:
        label = _row_label(row, scenario.path)
        if "error" in row:
            out.append(f"| {label} | failed: {row['error']} | — |")
            continue
        count = row["instructions_per_request"]
        out.append(f"| {label} | {count:,.0f} | {_ratio(count, base_count)} |")
    out.append("")
    return "\n".join(out)


def render_doc(results: dict) -> str:
    facts = results["machine"]
    peers = ", ".join(f"{name} {version}" for name, version in facts["peers"].items())
    servers = "\n".join(f"- **{s['name']}**: {s['description']}" for s in results["servers"])
    scenarios = "\n".join(
        f"- **{s.title}**: {s.blurb}." for s in SCENARIOS.values() if s.key in results["scenarios"]
    )
    wrk_command = (
        f"wrk -t{WRK_THREADS} -c{WRK_CONNECTIONS} -d{results['duration_s']}s "
        f"--timeout={WRK_TIMEOUT_SECONDS}s"
    )
    python_cello = facts["python_cello"].removeprefix("Python ")
    python_peers = facts["python_peers"].removeprefix("Python ")
    runs = results["runs"]
    selection = ""
    if results["server_filter"] or results["scenario_filter"]:
        selection = (
            f"\n> This run was limited to BENCH_SERVERS={results['server_filter'] or '(all)'}, "
            f"BENCH_SCENARIOS={results['scenario_filter'] or '(all)'}; "
            "run without them for the full tables.\n"
        )
    return f"""# Benchmarks

How fast is Cello next to a bare Rust server and next to the usual Python
stacks, on the same machine and under the same load? This page is generated
by `make bench` (which calls `benchmarks/run.sh`); do not edit it by hand.

## What is measured

Every server runs the same small app, written once per framework in
`benchmarks/apps/`, and each table is one request that every server in it
answers with the same body (checked before measuring: a fast 404, a wrong
payload, a missing middleware header or an uncompressed answer to a gzip
request does not count):

{scenarios}

Servers run one at a time on 127.0.0.1, as a single worker process unless
the table says otherwise. Each row is a {WARMUP_SECONDS} s warm-up followed by
{runs} measured runs of `{wrk_command}` (keep-alive), one per pass over
all servers; the numbers are the median of the runs, so one run thrown off
by the shared machine does not move a row.

- **req/s, p50, p99**: as reported by wrk, the median over the runs.
- **±**: half the gap between the fastest and the slowest run, relative to
  the median. Differences between rows smaller than this are noise.
- **CPU µs/req**: user + system CPU time the server's whole process tree
  spent during a run (from `/proc/<pid>/stat`), divided by the requests it
  served; the median over the runs. On a small machine wrk shares the
  cores with the server, so req/s partly measures the client; CPU per
  request is the steadier figure for comparing how much work each server
  does.
- **peak RSS**: `VmHWM` summed over the server's processes.
- **errors**: wrk socket errors plus non-2xx/3xx responses; a row with errors
  is not comparable.
- **host CPU %**: how busy the whole machine was during the runs (server, wrk
  and everything else), in percent of all its cores, from `/proc/stat`. Near
  100 the machine is saturated: req/s is bounded by the cores, not by the
  server, which is what caps the 2-worker table on a 2-core machine.
- **body KiB** (static and gzip tables): the response body as sent, so
  compressed for gzip; a smaller body at a higher compression level costs
  more CPU.
- **ratios** are relative to the table's baseline row (`cello`, or
  `cello-2w` for the 2-worker table, `cello-static` and `cello-gzip` for
  those; req/s: higher is better, CPU/req: lower is better). Tables with a
  goal state it below them, as a ratio of CPU per request.

Servers:

{servers}

The extra Cello rows in the `GET /` table price the coroutine path: `/async`
is an `async def` handler that never awaits, `/async-sleep` awaits
`asyncio.sleep(0)` once. `cello-under-uvicorn` runs the very same Cello app
through its ASGI interface, which separates what Cello's native server buys
from what its routing and handlers cost. The `cello serve` and mount rows
show Cello hosting other ASGI apps. On this page's 2-core machine the
2-worker rows share both cores with wrk, so they show how the servers scale
when the client competes for the CPU, not their peak throughput.

The middleware tables price a feature rather than a server. The Cello rows
run the same `cello_app.py` as `cello` with native middleware turned on
(`cello-3mw`: CORS, request ID and security headers; `cello-static`,
`cello-gzip`); the peers are Starlette with the equivalent middleware, on
granian and on uvicorn, and the three-middleware table also has each
stack without any (the `cello` row is its baseline). A Cello build that
lacks one of these middleware shows its row as "not available".

The WebSocket tables are loaded by `wsload` (`benchmarks/wsload/`, a tokio +
tokio-tungstenite client, so the client is not the bottleneck) instead of
wrk. Every server echoes the same way (a bare ASGI app, granian's RSGI,
Starlette, Cello's native `@app.websocket`), checked first with one text
and one binary message. In the echo table the rate is messages echoed per
second over all connections, the latency a message's round trip, and CPU
µs/msg the server's CPU time between the window's edges divided by the
messages. In the idle table, KiB / connection is the growth of the server's
RSS (`VmRSS` summed over its processes, sampled while the connections are
held) over its RSS just before they were opened, divided by the
connections; CPU µs / open is what accepting them cost. A Cello build
without WebSocket support shows its rows as "not available".

Between benchmark runs, `tests/test_fast_path.py` guards the hot path without
timing anything: it counts the Python functions called per request on each
path (a native sync request calls its handler and nothing else) and checks
that memory stays flat over thousands of requests.

To rerun: `make bench` (or `bash benchmarks/run.sh`). `BENCH_DURATION=<s>`
changes the run length, `BENCH_RUNS=<n>` the number of runs per row,
`BENCH_SERVERS=cello,hyper-ceiling` picks servers and
`BENCH_SCENARIOS=/,/echo` picks tables, `BENCH_INSTRUCTIONS=0` skips the
instruction count (it needs valgrind, which `run.sh` installs, and takes
about five minutes). Raw results, including every wrk
run's own output and each server's log, land in `benchmarks/results/`.
{selection}
## Machine

- Date: {results["date"]}
- CPUs: {facts["nproc"]} x {facts["cpu_model"]}
- OS / kernel: {facts["os"]} / Linux {facts["kernel"]}
- Python: {python_cello} (Cello venv), {python_peers} (peer venv)
- Cello: {facts["cello"]} (run by `{facts["cello_python"]}`; uvicorn
  {facts["uvicorn_cello_venv"]} there for `cello-under-uvicorn`)
- Peers: {peers}
- {facts["rustc"]}
- Load generator: {facts["wrk"]}

## Results

{markdown_tables(results["rows"])}
{instruction_table(results.get("instructions"))}"""
