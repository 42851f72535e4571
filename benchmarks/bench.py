"""Side-by-side HTTP benchmark of Cello against its peers (stdlib only).

The runner makes BENCH_RUNS passes; in each, every server in SERVERS is
started in turn on a free 127.0.0.1 port, probed, and for each scenario it
serves (see SCENARIOS) checked, warmed up and loaded with wrk once. The table
shows the median of a row's runs (one per pass) and how far apart they were.
Besides wrk's throughput and latency, the runner samples the server's own
CPU time (its whole process tree, from /proc) around each run to
get CPU microseconds per request, which is steadier than req/s on a small
machine where wrk competes for the same cores. Results go to
benchmarks/results/ (raw JSON) and docs/benchmarks.md.

Normally started by run.sh, which installs wrk, the peer venv and the
ceiling binary first. Environment:
  BENCH_DURATION   seconds per measured wrk run (default 3)
  BENCH_RUNS       passes, so measured runs per row; the table shows their
                   median (default 5)
  BENCH_SERVERS    comma-separated server names to run (default: all)
  BENCH_SCENARIOS  comma-separated scenario keys to run (default: all)
  BENCH_INSTRUCTIONS  0 skips the callgrind instruction count (default: on)

The middleware tables' 1 MiB static file is written to a temporary directory
at the start and removed at the end; the apps find it through
BENCH_STATIC_DIR.
"""

from __future__ import annotations

import datetime
import gzip
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import tls_table
import ws_table
from instructions import CountError, count_instructions, missing_tools, request_bytes
from jwt_table import JWT_SCENARIO, jwt_servers
from procs import free_port, host_cpu_ticks, process_tree, read_stat
from report import (
    machine_facts,
    markdown_tables,
    render_doc,
)
from settings import (
    APPS_DIR,
    CEILING_BIN,
    CELLO_PYTHON,
    CLOCK_TICKS,
    DOC_PATH,
    ECHO_BODY,
    ECHO_BODY_PATH,
    FIRST_WARMUP_SECONDS,
    INSTRUCTION_CONNECTIONS,
    INSTRUCTION_REQUESTS,
    INSTRUCTION_TABLE,
    INSTRUCTION_WARMUP,
    LOGS_DIR,
    ONE_WORKER,
    PEER_BIN,
    REPO,
    RESULTS_DIR,
    ROBYN_PYTHON,
    SCENARIOS,
    STARTUP_TIMEOUT_SECONDS,
    STATIC_BYTES,
    STATIC_FILE,
    STOP_TIMEOUT_SECONDS,
    UNAVAILABLE_EXIT_CODE,
    WARMUP_SECONDS,
    WRK_CONNECTIONS,
    WRK_POST_SCRIPT,
    WRK_SCRIPT,
    WRK_THREADS,
    WRK_TIMEOUT_SECONDS,
    Scenario,
)
from validation_table import DEPENDS_SCENARIO, VALIDATE_SCENARIO, validation_servers
from ws_table import combine_idle


@dataclass(frozen=True)
class Probe:
    """One measured row: `path` is requested, the row lands in table `table`."""

    table: str
    path: str
    label: str


@dataclass(frozen=True)
class Server:
    """How to start one contender. `command` receives the port to bind."""

    name: str
    description: str
    command: Callable[[int], list[str]]
    # Extra environment; "{port}" in a value is replaced by the port.
    env: dict[str, str] = field(default_factory=dict)
    # The SCENARIOS keys this server is measured on.
    scenarios: tuple[str, ...] = ONE_WORKER
    # Rows beyond the shared scenarios, e.g. Cello's async variants.
    extra_probes: tuple[Probe, ...] = ()
    # Response headers the check requires (lower case): proof that the
    # middleware a row is named after actually ran.
    expect_headers: tuple[str, ...] = ()

    def probes(self, wanted: set[str] | None = None) -> list[Probe]:
        shared = [Probe(key, SCENARIOS[key].path, self.name) for key in self.scenarios]
        probes = shared + list(self.extra_probes)
        return [p for p in probes if not wanted or p.table in wanted]


def _peer(tool: str) -> str:
    return str(PEER_BIN / tool)


def _granian(
    app: str, interface: str, workers: int = 1, websockets: bool = False
) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            _peer("granian"),
            "--interface", interface,
            "--workers", str(workers),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ws" if websockets else "--no-ws",
            "--log-level", "warning",
            "--working-dir", str(APPS_DIR),
            app,
        ]  # fmt: skip

    return command


def _uvicorn(app: str, workers: int = 1, python: Path | None = None) -> Callable[[int], list[str]]:
    # `python` runs uvicorn as a module from another venv (Cello's), where
    # the app's framework is installed; by default it is the peer venv's.
    launcher = [str(python), "-m", "uvicorn"] if python else [_peer("uvicorn")]

    def command(port: int) -> list[str]:
        return [
            *launcher,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", str(workers),
            "--no-access-log",
            "--log-level", "warning",
            "--app-dir", str(APPS_DIR),
            app,
        ]  # fmt: skip

    return command


def _hypercorn(app: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            _peer("hypercorn"),
            "--bind", f"127.0.0.1:{port}",
            "--workers", "1",
            "--log-level", "warning",
            app,
        ]  # fmt: skip

    return command


def _cello_serve(app: str, *args: str) -> Callable[[int], list[str]]:
    def command(port: int) -> list[str]:
        return [
            str(CELLO_PYTHON), "-m", "cello", "serve", app,
            "--port", str(port),
            "--no-logs",
            "--env", "production",
            *args,
        ]  # fmt: skip

    return command


def _cello_script(script: str, *args: str) -> Callable[[int], list[str]]:
    # The port goes in through PORT (see `env=`); flags after the script
    # are read by app.run like `cello run` flags.
    return lambda port: [str(CELLO_PYTHON), str(APPS_DIR / script), *args]


def _robyn(port: int) -> list[str]:
    # Robyn reads the port from PORT (see robyn_app.py); these flags keep it
    # to one process with one worker thread, like the other rows.
    flags = ["--processes", "1", "--workers", "1", "--log-level", "WARN"]
    return [str(ROBYN_PYTHON), str(APPS_DIR / "robyn_app.py"), *flags]


UVLOOP = "uvicorn (uvloop + httptools)"


def _cello_middleware(*middleware: str) -> dict[str, str]:
    # cello_app.py turns these on (see its docstring); a build without one of
    # them exits with UNAVAILABLE_EXIT_CODE and its rows show as not available.
    return {"PORT": "{port}", "BENCH_CELLO_MIDDLEWARE": ",".join(middleware)}


THREE_MIDDLEWARE = ("cors", "request_id", "security_headers")
# One header from each of the three.
THREE_MIDDLEWARE_HEADERS = ("access-control-allow-origin", "x-request-id", "x-content-type-options")
STARLETTE_THREE = "Starlette with `CORSMiddleware` and pure-ASGI request-ID and security-headers"

# Add rows here. Names are what BENCH_SERVERS filters on; within a table,
# rows appear in this order.
SERVERS: list[Server] = [
    Server(
        name="cello",
        description="Cello `app.run` (native server), sync `def` handlers",
        command=_cello_script("cello_app.py"),
        # Explicitly none, even if the caller's environment names some.
        env=_cello_middleware(),
        # Also the "3 middleware" table's baseline: the same app and handler
        # with no middleware, asked with the same Origin header.
        scenarios=(*ONE_WORKER, "3 middleware"),
        extra_probes=(
            Probe("/", "/async", "cello `async def`"),
            Probe("/", "/async-sleep", "cello `await sleep(0)`"),
        ),
    ),
    Server(
        name="cello-prometheus",
        description="the same Cello app with `enable_prometheus()`: what counting, "
        "timing and sizing every request costs",
        command=_cello_script("cello_app.py"),
        env=_cello_middleware("prometheus"),
        scenarios=("/", "/users/42"),
    ),
    Server(
        name="hyper-ceiling",
        description="raw tokio + hyper, no Python, 1 worker thread: the ceiling "
        "(only the two constant endpoints)",
        command=lambda port: [str(CEILING_BIN), "--port", str(port), "--threads", "1"],
        scenarios=("/", "/users/42"),
    ),
    Server(
        name="cello-under-uvicorn",
        description=f"the same Cello app as an ASGI app under {UVLOOP}, 1 worker",
        command=_uvicorn("cello_app:app", python=CELLO_PYTHON),
    ),
    Server(
        name="cello-serve-raw-asgi",
        description="`cello serve` hosting the bare ASGI app (door 3)",
        command=_cello_serve("raw_asgi:app"),
    ),
    Server(
        name="cello-serve-fastapi",
        description="`cello serve` hosting the FastAPI app (door 3)",
        command=_cello_serve("fastapi_app:app"),
    ),
    Server(
        name="cello-mount-fastapi",
        description="the FastAPI app mounted in a Cello app (door 3)",
        command=_cello_script("cello_mount_fastapi.py"),
        env={"PORT": "{port}"},
    ),
    # With `--threads 1` the sockets and HTTP are on a Rust I/O thread of
    # their own and the hosted app on the event loop's, as in granian's
    # default layout (docs/running.md, "Workers and threads").
    Server(
        name="cello-serve-raw-asgi-t1",
        description="`cello serve --threads 1` hosting the bare ASGI app",
        command=_cello_serve("raw_asgi:app", "--threads", "1"),
    ),
    Server(
        name="cello-serve-fastapi-t1",
        description="`cello serve --threads 1` hosting the FastAPI app",
        command=_cello_serve("fastapi_app:app", "--threads", "1"),
    ),
    Server(
        name="cello-mount-fastapi-t1",
        description="the FastAPI app mounted in a Cello app run with `--threads 1`",
        command=_cello_script("cello_mount_fastapi.py", "--threads", "1"),
        env={"PORT": "{port}"},
    ),
    Server(
        name="granian-rsgi",
        description="granian, 1 worker, bare RSGI app (granian's native protocol)",
        command=_granian("rsgi_app:app", "rsgi"),
    ),
    Server(
        name="granian-raw-asgi",
        description="granian, 1 worker, bare ASGI app (no framework)",
        command=_granian("raw_asgi:app", "asgi"),
    ),
    Server(
        name="uvicorn-raw-asgi",
        description=f"{UVLOOP}, 1 worker, bare ASGI app",
        command=_uvicorn("raw_asgi:app"),
    ),
    Server(
        name="granian-starlette",
        description="granian, 1 worker, Starlette",
        command=_granian("starlette_app:app", "asgi"),
        scenarios=(*ONE_WORKER, "3 middleware"),
    ),
    Server(
        name="uvicorn-starlette",
        description=f"{UVLOOP}, 1 worker, Starlette",
        command=_uvicorn("starlette_app:app"),
        scenarios=(*ONE_WORKER, "3 middleware"),
    ),
    Server(
        name="granian-fastapi",
        description="granian, 1 worker, FastAPI",
        command=_granian("fastapi_app:app", "asgi"),
    ),
    Server(
        name="uvicorn-fastapi",
        description=f"{UVLOOP}, 1 worker, FastAPI",
        command=_uvicorn("fastapi_app:app"),
    ),
    Server(
        name="uvicorn-blacksheep",
        description=f"{UVLOOP}, 1 worker, BlackSheep",
        command=_uvicorn("blacksheep_app:app"),
    ),
    Server(
        name="robyn",
        description="Robyn (its own Rust server), 1 process, 1 worker, sync `def` handlers",
        command=_robyn,
        env={"PORT": "{port}"},
    ),
    # The "2 workers" table: the same hello world, every server forking two
    # worker processes. The ASGI servers run the bare ASGI app so the table
    # compares servers, not frameworks.
    Server(
        name="cello-2w",
        description="Cello `app.run --workers 2`",
        command=_cello_script("cello_app.py", "--workers", "2"),
        env=_cello_middleware(),
        scenarios=("2 workers",),
    ),
    Server(
        name="granian-raw-asgi-2w",
        description="granian `--workers 2`, bare ASGI app",
        command=_granian("raw_asgi:app", "asgi", workers=2),
        scenarios=("2 workers",),
    ),
    Server(
        name="uvicorn-raw-asgi-2w",
        description=f"{UVLOOP} `--workers 2`, bare ASGI app",
        command=_uvicorn("raw_asgi:app", workers=2),
        scenarios=("2 workers",),
    ),
    # The middleware tables: Cello's native layers against the same features
    # in Starlette, on granian and on uvicorn. Each configuration is a server
    # of its own, so no row pays for another table's middleware.
    Server(
        name="cello-3mw",
        description="Cello `app.run` with `enable_cors()`, `enable_request_id()` and "
        "`enable_security_headers()`",
        command=_cello_script("cello_app.py"),
        env=_cello_middleware(*THREE_MIDDLEWARE),
        scenarios=("3 middleware",),
        expect_headers=THREE_MIDDLEWARE_HEADERS,
    ),
    Server(
        name="granian-starlette-3mw",
        description=f"granian, 1 worker, {STARLETTE_THREE} middleware",
        command=_granian("starlette_middleware_app:three_middleware", "asgi"),
        scenarios=("3 middleware",),
        expect_headers=THREE_MIDDLEWARE_HEADERS,
    ),
    Server(
        name="uvicorn-starlette-3mw",
        description=f"{UVLOOP}, 1 worker, {STARLETTE_THREE} middleware",
        command=_uvicorn("starlette_middleware_app:three_middleware"),
        scenarios=("3 middleware",),
        expect_headers=THREE_MIDDLEWARE_HEADERS,
    ),
    Server(
        name="cello-static",
        description="Cello `app.run` with `enable_static_files(StaticFilesConfig(dir))`",
        command=_cello_script("cello_app.py"),
        env=_cello_middleware("static_files"),
        scenarios=("static",),
    ),
    Server(
        name="granian-starlette-static",
        description="granian, 1 worker, Starlette `StaticFiles` mounted at `/static`",
        command=_granian("starlette_middleware_app:static", "asgi"),
        scenarios=("static",),
    ),
    Server(
        name="uvicorn-starlette-static",
        description=f"{UVLOOP}, 1 worker, Starlette `StaticFiles` mounted at `/static`",
        command=_uvicorn("starlette_middleware_app:static"),
        scenarios=("static",),
    ),
    Server(
        name="cello-gzip",
        description="Cello `app.run` with `enable_compression()`",
        command=_cello_script("cello_app.py"),
        env=_cello_middleware("compression"),
        scenarios=("gzip",),
    ),
    Server(
        name="granian-starlette-gzip",
        description="granian, 1 worker, Starlette with `GZipMiddleware` (defaults)",
        command=_granian("starlette_middleware_app:gzip", "asgi"),
        scenarios=("gzip",),
    ),
    Server(
        name="uvicorn-starlette-gzip",
        description=f"{UVLOOP}, 1 worker, Starlette with `GZipMiddleware` (defaults)",
        command=_uvicorn("starlette_middleware_app:gzip"),
        scenarios=("gzip",),
    ),
]

# The JWT table (benchmarks/jwt_table.py) brings its own scenario and rows.
SCENARIOS[JWT_SCENARIO.key] = JWT_SCENARIO
SERVERS += jwt_servers(Server, _cello_script, _uvicorn, _granian, UVLOOP)

# The validation tables (benchmarks/validation_table.py), the same way.
SCENARIOS[VALIDATE_SCENARIO.key] = VALIDATE_SCENARIO
SCENARIOS[DEPENDS_SCENARIO.key] = DEPENDS_SCENARIO
SERVERS += validation_servers(Server, _cello_script, _uvicorn, _granian, UVLOOP)

# The WebSocket tables (benchmarks/ws_table.py): loaded with wsload, not wrk.
for _scenario in ws_table.SCENARIOS:
    SCENARIOS[_scenario.key] = _scenario
SERVERS += ws_table.ws_servers(Server, _cello_script, _uvicorn, _granian, _hypercorn, UVLOOP)

# The HTTPS and HTTP/2 tables (benchmarks/tls_table.py): wrk on https:// and h2load.
for _scenario in tls_table.SCENARIOS:
    SCENARIOS[_scenario.key] = _scenario
SERVERS += tls_table.tls_servers(Server, _cello_script, _granian, _hypercorn)


# --------------------------------------------------------------------------
# /proc sampling


def tree_cpu_seconds(root: int) -> float:
    ticks = 0
    for pid in process_tree(root):
        stat = read_stat(pid)
        if stat is not None:
            ticks += stat[1]
    return ticks / CLOCK_TICKS


def tree_peak_rss_mib(root: int) -> float:
    """VmHWM summed over the process tree (a worker's peak counts too)."""
    total_kib = 0
    for pid in process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kib += int(match.group(1))
    return total_kib / 1024


# --------------------------------------------------------------------------
# Server lifecycle


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    # Lower-cased names; a repeated header keeps its last value.
    headers: dict[str, str]


def http_request(
    port: int,
    path: str,
    method: str = "GET",
    body: bytes | None = None,
    timeout: float = 2.0,
    headers: tuple[tuple[str, str], ...] = (),
) -> Answer:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    sent = {"Content-Type": "application/json"} if body is not None else {}
    # An Accept-Encoding here also stops http.client adding its own
    # "Accept-Encoding: identity".
    sent.update(headers)
    try:
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        received = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, response.read(), received)
    finally:
        conn.close()


class StartError(Exception):
    pass


class Unavailable(StartError):
    """The server exited with UNAVAILABLE_EXIT_CODE: this build lacks a
    feature the row needs (a Cello middleware not merged yet)."""


class RunningServer:
    def __init__(self, server: Server, port: int):
        self.server = server
        self.port = port
        LOGS_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOGS_DIR / f"{server.name}.log"
        # Served over TLS only (the HTTPS and HTTP/2 tables).
        self.tls = all(SCENARIOS[key].kind in tls_table.KINDS for key in server.scenarios)
        env = dict(os.environ)
        env.update({k: v.replace("{port}", str(port)) for k, v in server.env.items()})
        env["PYTHONUNBUFFERED"] = "1"
        self.argv = server.command(port)
        with open(self.log_path, "wb") as log:
            # A new session makes the server a process-group leader, so the
            # SIGKILL fallback can reach its workers without touching
            # anything this runner did not start.
            self.process = subprocess.Popen(
                self.argv,
                cwd=APPS_DIR,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def wait_ready(self, path: str) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if self.process.returncode == UNAVAILABLE_EXIT_CODE:
                    raise Unavailable(self.log_tail(1).removeprefix("not available: "))
                raise StartError(f"exited with code {self.process.returncode}: {self.log_tail()}")
            if self.tls:
                if tls_table.ready(self.port, path):
                    return
                time.sleep(0.1)
                continue
            try:
                http_request(self.port, path, timeout=1.0)
                return
            except OSError:
                time.sleep(0.1)
        raise StartError(f"no HTTP answer within {STARTUP_TIMEOUT_SECONDS}s: {self.log_tail()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                pass
        # Kill whatever is left of the group we created (a stuck leader, or
        # workers that outlived it).
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()


# --------------------------------------------------------------------------
# Load generation


def run_wrk(port: int, scenario: Scenario, path: str, seconds: int, scheme: str = "http") -> dict:
    script = WRK_SCRIPT if scenario.body is None else WRK_POST_SCRIPT
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        "--latency",
        *(f"-H{name}: {value}" for name, value in scenario.headers),
        "-s", str(script),
        f"{scheme}://127.0.0.1:{port}{path}",
    ]  # fmt: skip
    env = {**os.environ, "WRK_BODY_FILE": str(ECHO_BODY_PATH)}
    completed = subprocess.run(
        argv, capture_output=True, text=True, timeout=seconds + 30, check=False, env=env
    )
    for line in completed.stdout.splitlines():
        if line.startswith("WRK_JSON "):
            report = json.loads(line[len("WRK_JSON ") :])
            report["stdout"] = completed.stdout
            return report
    raise RuntimeError(f"wrk produced no report: {completed.stdout} {completed.stderr}")


def check(running: RunningServer, probe: Probe) -> dict:
    """The row's identity and the answer to one request: an `error` key when
    the answer is not the scenario's (a fast 404 must not pass for a fast
    server)."""
    scenario = SCENARIOS[probe.table]
    row: dict = {"server": running.server.name, **asdict(probe), "method": scenario.method}
    if scenario.kind in tls_table.KINDS:
        if (error := tls_table.check(running.port, scenario)) is not None:
            row["error"] = error
        return row
    if scenario.kind != "http":
        # A WebSocket table: one text and one binary message must come back
        # unchanged.
        if (error := ws_table.check(running.port, probe.path)) is not None:
            row["error"] = error
        return row
    answer = http_request(
        running.port, probe.path, scenario.method, scenario.body, headers=scenario.headers
    )
    error = answer_error(scenario, running.server.expect_headers, answer)
    if error is not None:
        row["error"] = error
    row.update(check_status=answer.status, check_body_bytes=len(answer.body))
    row["check_content_type"] = answer.headers.get("content-type", "")
    row["check_headers"] = answer.headers
    if scenario.encoding is None and not isinstance(scenario.expected, bytes):
        row["check_body"] = answer.body[:2000].decode(errors="replace")
    return row


def answer_error(scenario: Scenario, expect_headers: tuple[str, ...], answer: Answer) -> str | None:
    """Why `answer` is not the scenario's, or None when it is."""
    request = f"{scenario.method} {scenario.path}"
    if answer.status != 200:
        return f"{request} returned {answer.status}"
    missing = [name for name in expect_headers if name not in answer.headers]
    if missing:
        return f"{request} answered without {', '.join(missing)}"
    body = answer.body
    encoding = answer.headers.get("content-encoding")
    if encoding != scenario.encoding:
        return f"{request} answered with Content-Encoding {encoding}, not {scenario.encoding}"
    if encoding == "gzip":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError) as error:
            return f"{request} answered a body that is not gzip: {error}"
    if isinstance(scenario.expected, bytes):
        if body != scenario.expected:
            return (
                f"{request} answered {len(body):,} bytes, not the expected "
                f"{len(scenario.expected):,}"
                if len(body) != len(scenario.expected)
                else f"{request} answered other bytes than the file's"
            )
        return None
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if payload != scenario.expected:
        return f"{request} answered {body[:200]!r}"
    return None


def measure_once(running: RunningServer, probe: Probe, seconds: int, warmup: int) -> dict:
    """One warmed-up wrk run, with the server's CPU time around it (or one
    wsload run for the WebSocket tables)."""
    scenario = SCENARIOS[probe.table]
    if scenario.kind == "ws-echo":
        return ws_table.measure_echo(running.process.pid, running.port, probe.path, seconds, warmup)
    if scenario.kind == "ws-idle":
        return ws_table.measure_idle(running.process.pid, running.port, probe.path)
    if scenario.kind == tls_table.H2_KEY:
        pid = running.process.pid
        run = tls_table.measure_h2(pid, running.port, probe.path, seconds, warmup, tree_cpu_seconds)
        return {**run, "peak_rss_mib": tree_peak_rss_mib(pid)}
    scheme = "https" if scenario.kind == tls_table.HTTPS_KEY else "http"
    run_wrk(running.port, scenario, probe.path, warmup, scheme)
    pid = running.process.pid
    cpu_before = tree_cpu_seconds(pid)
    host_busy_before, host_total_before = host_cpu_ticks()
    report = run_wrk(running.port, scenario, probe.path, seconds, scheme)
    cpu_s = tree_cpu_seconds(pid) - cpu_before
    host_busy, host_total = host_cpu_ticks()
    host_busy -= host_busy_before
    host_total -= host_total_before
    requests = report["requests"]
    duration_s = report["duration_us"] / 1e6
    return {
        "requests": requests,
        "duration_s": duration_s,
        "req_per_s": requests / duration_s,
        "p50_ms": report["latency_us"]["p50"] / 1000,
        "p90_ms": report["latency_us"]["p90"] / 1000,
        "p99_ms": report["latency_us"]["p99"] / 1000,
        "max_ms": report["latency_us"]["max"] / 1000,
        "cpu_s": cpu_s,
        "cpu_us_per_req": cpu_s * 1e6 / requests if requests else None,
        # Socket errors plus non-2xx/3xx responses: any of these means the
        # row's throughput is not comparable.
        "wrk_errors": report["errors"],
        "errors_total": sum(report["errors"].values()),
        "wrk_stdout": report["stdout"],
        "peak_rss_mib": tree_peak_rss_mib(pid),
        # How busy the whole machine was (server, wrk and anything else), in
        # percent of all its cores: near 100 means req/s is bounded by the
        # machine, not by the server.
        "host_busy_pct": host_busy * 100 / host_total if host_total else None,
    }


def combine(row: dict, measured: list[dict]) -> dict:
    """A row from its runs: medians, and the spread between runs.

    Medians, because on a shared 2-core machine one run in a few lands
    10-40% off the others (another process woke, the load generator got the
    worse core); with three or more runs such a run no longer moves the row.
    """

    def median(key: str) -> float:
        return statistics.median(run[key] for run in measured)

    requests = sum(run["requests"] for run in measured)
    cpu_s = sum(run["cpu_s"] for run in measured)
    rates = [run["req_per_s"] for run in measured]
    cpu_per_run = [run["cpu_s"] * 1e6 / run["requests"] for run in measured if run["requests"]]
    row.update(
        requests=requests,
        req_per_s=median("req_per_s"),
        # Largest minus smallest run, relative to the median: how much to
        # trust a difference between two rows.
        spread_pct=(max(rates) - min(rates)) * 100 / median("req_per_s")
        if median("req_per_s")
        else 0,
        p50_ms=median("p50_ms"),
        p90_ms=median("p90_ms"),
        p99_ms=median("p99_ms"),
        max_ms=max(run["max_ms"] for run in measured),
        cpu_s=cpu_s,
        cpu_us_per_req=statistics.median(cpu_per_run) if cpu_per_run else None,
        peak_rss_mib=max(run["peak_rss_mib"] for run in measured),
        host_busy_pct=(
            None
            if any(run.get("host_busy_pct") is None for run in measured)
            else median("host_busy_pct")
        ),
        errors_total=sum(run["errors_total"] for run in measured),
        runs=measured,
    )
    return row


class Rows:
    """The rows of one benchmark, filled in pass by pass: a row keeps the
    first failure it meets, and otherwise collects one run per pass."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], dict] = {}
        self.runs: dict[tuple[str, str], list[dict]] = {}

    @staticmethod
    def key(row: dict) -> tuple[str, str, str]:
        return (row["server"], row["table"], row["path"])

    def failed(self, row: dict) -> bool:
        return not measured(self.rows.get(self.key(row), {}))

    def record(self, row: dict, run: dict | None = None) -> None:
        key = self.key(row)
        if self.failed(row):
            return
        self.rows[key] = row
        if run is not None:
            self.runs.setdefault(key, []).append(run)

    def result(self) -> list[dict]:
        return [
            (combine_idle if SCENARIOS[row["table"]].kind == "ws-idle" else combine)(
                row, self.runs[key]
            )
            if measured(row)
            else row
            for key, row in self.rows.items()
        ]


def measured(row: dict) -> bool:
    """False for a row that failed or that its server cannot run."""
    return "error" not in row and "unavailable" not in row


def bench_pass(server: Server, seconds: int, scenarios: set[str], rows: Rows) -> None:
    """Starts `server`, measures each of its rows once, stops it."""
    probes = server.probes(scenarios)
    if not probes:
        return
    print(f"== {server.name}: {server.description}", flush=True)
    try:
        running = RunningServer(server, free_port())
    except OSError as error:  # e.g. binary missing
        for probe in probes:
            rows.record(failed_row(server, probe, f"cannot start: {error}"))
        return
    try:
        running.wait_ready(probes[0].path)
        for index, probe in enumerate(probes):
            # A server just started runs its first seconds measurably slower
            # (caches, page faults, the previous server's teardown): the
            # first row gets a longer warm-up so it is not the one to pay.
            warmup = FIRST_WARMUP_SECONDS if index == 0 else WARMUP_SECONDS
            try:
                row = check(running, probe)
                run = None if "error" in row else measure_once(running, probe, seconds, warmup)
                if run is not None and SCENARIOS[probe.table].kind == "ws-idle":
                    if (why := ws_table.idle_error(run)) is not None:
                        row["error"], run = why, None
            except (OSError, RuntimeError, subprocess.TimeoutExpired) as error:
                row, run = failed_row(server, probe, f"{type(error).__name__}: {error}"), None
            row["command"] = running.argv
            row["log"] = str(running.log_path.relative_to(REPO))
            rows.record(row, run)
            combined = combine_idle if SCENARIOS[probe.table].kind == "ws-idle" else combine
            shown = row if run is None else combined(dict(row), [run])
            where = probe.path if SCENARIOS[probe.table].kind == "http" else probe.table
            print(f"   {where:<18} {summarize(shown)}", flush=True)
    except Unavailable as error:
        for probe in probes:
            rows.record({"server": server.name, **asdict(probe), "unavailable": str(error)})
        print(f"   not available: {error}", flush=True)
    except StartError as error:
        for probe in probes:
            rows.record(failed_row(server, probe, f"failed to start: {error}"))
        print(f"   failed to start: {error}", flush=True)
    finally:
        running.stop()


def instruction_pass(selected: list[Server], wanted: set[str]) -> dict:
    """Callgrind's count of user-space instructions per request for each row
    of INSTRUCTION_TABLE: unlike the timed figures it does not move with the
    machine's load, so it settles differences smaller than the runs' spread."""
    if os.environ.get("BENCH_INSTRUCTIONS", "1") == "0":
        return {"skipped": "BENCH_INSTRUCTIONS=0"}
    if wanted and INSTRUCTION_TABLE not in wanted:
        return {"skipped": f"the {INSTRUCTION_TABLE!r} table was not selected"}
    if missing := missing_tools():
        return {"skipped": f"{', '.join(missing)} not installed"}
    scenario = SCENARIOS[INSTRUCTION_TABLE]
    rows = []
    print(f"-- instructions per request, {scenario.method} {scenario.path} table", flush=True)
    for server in selected:
        for probe in server.probes({INSTRUCTION_TABLE}):
            row: dict = {"server": server.name, "label": probe.label, "path": probe.path}
            port = free_port()
            try:
                row["instructions_per_request"] = count_instructions(
                    server.command(port),
                    port,
                    request_bytes(scenario.method, probe.path, scenario.body),
                    env={k: v.replace("{port}", str(port)) for k, v in server.env.items()},
                    requests=INSTRUCTION_REQUESTS,
                    warmup=INSTRUCTION_WARMUP,
                    connections=INSTRUCTION_CONNECTIONS,
                )
                shown = f"{row['instructions_per_request']:>12,.0f} instructions/request"
            except (CountError, OSError) as error:
                row["error"] = f"{type(error).__name__}: {error}"
                shown = f"FAILED: {row['error']}"
            rows.append(row)
            print(f"   {server.name:<22} {probe.path:<14} {shown}", flush=True)
    return {
        "table": INSTRUCTION_TABLE,
        "requests": INSTRUCTION_REQUESTS,
        "warmup": INSTRUCTION_WARMUP,
        "connections": INSTRUCTION_CONNECTIONS,
        "rows": rows,
    }


def failed_row(server: Server, probe: Probe, reason: str) -> dict:
    return {"server": server.name, **asdict(probe), "error": reason}


def summarize(row: dict) -> str:
    if "unavailable" in row:
        return f"not available: {row['unavailable']}"
    if "error" in row:
        return f"FAILED: {row['error']}"
    if "rss_per_conn_kib" in row:
        return (
            f"{row['opened']:>10,} open  {row['rss_per_conn_kib'] or 0:.1f} KiB/connection  "
            f"RSS {row['rss_before_mib']:.1f} -> {row['rss_peak_mib']:.1f} MiB  "
            f"opened in {row['connect_s']:.2f} s"
        )
    unit = "msg" if SCENARIOS[row["table"]].kind == "ws-echo" else "req"
    return (
        f"{row['req_per_s']:>10,.0f} {unit}/s (±{row['spread_pct'] / 2:.0f}%)  "
        f"p50 {row['p50_ms']:.2f} ms  "
        f"p99 {row['p99_ms']:.2f} ms  {row['cpu_us_per_req']:.1f} CPU us/{unit}  "
        f"errors {row['errors_total']}"
    )


def _names(variable: str) -> tuple[str, set[str]]:
    raw = os.environ.get(variable, "").strip()
    return raw, {name.strip() for name in raw.split(",") if name.strip()}


def main() -> int:
    seconds = int(os.environ.get("BENCH_DURATION", "3"))
    if not 1 <= seconds <= 120:
        print("BENCH_DURATION must be between 1 and 120 seconds", file=sys.stderr)
        return 2
    runs = int(os.environ.get("BENCH_RUNS", "5"))
    if not 1 <= runs <= 10:
        print("BENCH_RUNS must be between 1 and 10", file=sys.stderr)
        return 2
    server_filter, wanted = _names("BENCH_SERVERS")
    unknown = wanted - {server.name for server in SERVERS}
    if unknown:
        known = ", ".join(server.name for server in SERVERS)
        print(f"unknown server(s) {sorted(unknown)}; known: {known}", file=sys.stderr)
        return 2
    scenario_filter, wanted_scenarios = _names("BENCH_SCENARIOS")
    unknown = wanted_scenarios - set(SCENARIOS)
    if unknown:
        known = ", ".join(repr(key) for key in SCENARIOS)
        print(f"unknown scenario(s) {sorted(unknown)}; known: {known}", file=sys.stderr)
        return 2
    selected = [server for server in SERVERS if not wanted or server.name in wanted]
    # The idle WebSocket table holds 10,000 connections: the servers inherit this.
    ws_table.raise_fd_limit()

    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    ECHO_BODY_PATH.write_bytes(ECHO_BODY)
    if any(server.name.endswith("-tls") for server in selected):
        tls_table.ensure_certificate()
    static_dir = Path(tempfile.mkdtemp(prefix="cello-bench-static-"))
    try:
        (static_dir / STATIC_FILE).write_bytes(STATIC_BYTES)
        # Servers inherit the runner's environment.
        os.environ["BENCH_STATIC_DIR"] = str(static_dir)
        return run_benchmark(
            seconds, runs, selected, wanted_scenarios, server_filter, scenario_filter
        )
    finally:
        shutil.rmtree(static_dir, ignore_errors=True)


def run_benchmark(
    seconds: int,
    runs: int,
    selected: list[Server],
    wanted_scenarios: set[str],
    server_filter: str,
    scenario_filter: str,
) -> int:
    started = time.monotonic()
    # Each pass measures every row once; a row's runs come from different
    # passes, minutes apart, so a slow stretch of the machine (another
    # tenant, a warm-up, thermal drift) lands on every server alike instead
    # of on whichever happened to be running then.
    collected = Rows()
    for number in range(1, runs + 1):
        print(f"-- pass {number} of {runs}", flush=True)
        for server in selected:
            bench_pass(server, seconds, wanted_scenarios, collected)
    rows = collected.result()
    instructions = instruction_pass(selected, wanted_scenarios)

    now = datetime.datetime.now(datetime.UTC)
    results = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "duration_s": seconds,
        "runs": runs,
        "elapsed_s": round(time.monotonic() - started),
        "wrk": {"threads": WRK_THREADS, "connections": WRK_CONNECTIONS},
        "server_filter": server_filter,
        "scenario_filter": scenario_filter,
        "scenarios": sorted({row["table"] for row in rows}),
        "machine": machine_facts(),
        "servers": [
            {"name": s.name, "description": s.description}
            for s in selected
            if s.probes(wanted_scenarios)
        ],
        "rows": rows,
        "instructions": instructions,
    }
    raw = json.dumps(results, indent=2)
    (RESULTS_DIR / f"bench-{now.strftime('%Y%m%dT%H%M%SZ')}.json").write_text(raw)
    (RESULTS_DIR / "latest.json").write_text(raw)
    DOC_PATH.parent.mkdir(parents=True, exist_ok=True)
    DOC_PATH.write_text(render_doc(results))

    print()
    print(markdown_tables(rows))
    print(f"measured in {results['elapsed_s']} s")
    print(f"wrote {DOC_PATH.relative_to(REPO)} and benchmarks/results/latest.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
