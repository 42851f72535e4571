"""What the benchmark measures and where things live: paths, wrk settings
and the scenarios (one table each). Shared by bench.py and report.py."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "benchmarks"
APPS_DIR = BENCH_DIR / "apps"
RESULTS_DIR = BENCH_DIR / "results"
LOGS_DIR = RESULTS_DIR / "logs"
DOC_PATH = REPO / "docs" / "benchmarks.md"
WRK_SCRIPT = BENCH_DIR / "wrk_report.lua"
WRK_POST_SCRIPT = BENCH_DIR / "wrk_post_json.lua"
ECHO_BODY_PATH = RESULTS_DIR / "echo_body.json"

# The bodies every app serves live next to the apps, so the runner checks
# answers against exactly the data the apps were written against.
sys.path.insert(0, str(APPS_DIR))
import payloads  # noqa: E402

# Cello comes from the project's own dev venv (built by `make build`); the
# peers live in a separate venv so their dependencies never leak into it.
# CELLO_PYTHON overrides it, e.g. to try a release wheel in another venv.
CELLO_PYTHON = Path(os.environ.get("CELLO_PYTHON", REPO / ".venv" / "bin" / "python"))
PEER_BIN = REPO / ".bench" / "venv" / "bin"
# Robyn pins an older uvloop than the other peers, so it gets a venv of its
# own (run.sh fills it from requirements-robyn.txt).
ROBYN_PYTHON = REPO / ".bench" / "robyn" / "bin" / "python"
CEILING_BIN = Path(
    os.environ.get("CEILING_BIN", REPO / "target" / "bench-ceiling" / "release" / "ceiling")
)

# Load shape. Fixed on purpose: rows are only comparable if every server sees
# the same client. 64 connections over 2 wrk threads saturates one server
# worker without drowning a 2-core machine in context switches.
WRK_THREADS = 2
WRK_CONNECTIONS = 64
# wrk's default of 2 s counts a slow answer as a timeout error and drops its
# latency. The gzip table's slowest peers (level-9 compression of 100 KiB,
# 64 connections on one worker) had a p99 near 1.5 s on a busy 2-core
# machine; no other row comes near 10 s.
WRK_TIMEOUT_SECONDS = 10
WARMUP_SECONDS = 1
FIRST_WARMUP_SECONDS = 3
STARTUP_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

# The instruction count (callgrind) after the timed passes: every row of this
# table, each server started anew under valgrind, warmed up, then counted
# over INSTRUCTION_REQUESTS requests. BENCH_INSTRUCTIONS=0 skips it.
INSTRUCTION_TABLE = "/"
INSTRUCTION_REQUESTS = 3000
INSTRUCTION_WARMUP = 1000
INSTRUCTION_CONNECTIONS = 16


@dataclass(frozen=True)
class Target:
    """A ratio a table's report states: `row`'s CPU µs per request divided by
    `other`'s (rows by label), which must be at most `at_most`; None states
    the ratio for context without a verdict. `goal` says it in words."""

    row: str
    other: str
    at_most: float | None
    goal: str
    # A bound on the difference instead (`row` - `other`, CPU µs per
    # request): what a feature adds, when its budget is stated in µs.
    extra_us_at_most: float | None = None


@dataclass(frozen=True)
class Scenario:
    """One table: a request every server in it answers with the same body.

    A row is only measured if the server's answer matches `expected` (parsed
    JSON, or the exact bytes when `expected` is bytes): a fast 404 or a wrong
    payload must not pass for a fast server.
    """

    key: str
    title: str
    method: str
    path: str
    expected: object
    blurb: str
    body: bytes | None = None
    # The row the ratio columns divide by.
    baseline: str = "cello"
    # Request headers, sent by the check and by wrk alike.
    headers: tuple[tuple[str, str], ...] = ()
    # The Content-Encoding every answer must carry; the check decodes the
    # body before comparing it with `expected`.
    encoding: str | None = None
    # Ratios the report states under the table, with whether they are met.
    targets: tuple[Target, ...] = ()
    # Adds a column with each server's response body size (on the wire).
    show_size: bool = False
    # "http": an HTTP request loaded with wrk. "ws-echo" and "ws-idle": the
    # WebSocket tables (benchmarks/ws_table.py), loaded with wsload.
    kind: str = "http"


ECHO_BODY = json.dumps(payloads.ECHO, separators=(",", ":")).encode()
STATIC_FILE = payloads.STATIC_FILE
STATIC_BYTES = payloads.static_bytes()
UNAVAILABLE_EXIT_CODE = payloads.UNAVAILABLE_EXIT_CODE

SCENARIOS: dict[str, Scenario] = {
    s.key: s
    for s in (
        Scenario(
            "/", "`GET /`", "GET", "/", payloads.INDEX,
            "a constant JSON object: the fixed cost of a request",
        ),
        Scenario(
            "/users/42", "`GET /users/42`", "GET", "/users/42", {"id": "42"},
            "a path parameter echoed back: adds routing with a capture",
        ),
        Scenario(
            "/query", f"`GET {payloads.QUERY_PATH}`", "GET", payloads.QUERY_PATH, payloads.QUERY,
            "two query parameters echoed back: query-string parsing",
        ),
        Scenario(
            "/echo", f"`POST /echo` ({len(ECHO_BODY)} B JSON body)", "POST", "/echo",
            payloads.ECHO,
            "a 1 KiB JSON body parsed and serialized back: request body + JSON both ways",
            body=ECHO_BODY,
        ),
        Scenario(
            "/big", "`GET /big` (~100 KiB JSON response)", "GET", "/big", payloads.BIG,
            "a list of 1000 small dicts serialized on every request: JSON encoding "
            "and moving a large response",
        ),
        Scenario(
            "2 workers", "`GET /` with 2 worker processes", "GET", "/", payloads.INDEX,
            "the hello-world request against servers running 2 worker processes "
            "(CPU and RSS summed over all of them)",
            baseline="cello-2w",
        ),
        # The middleware tables: what a native layer costs next to the same
        # feature in the usual Python stack. Each Cello row runs cello_app.py
        # with BENCH_CELLO_MIDDLEWARE, each peer starlette_middleware_app.py.
        Scenario(
            "3 middleware", "`GET /` with CORS + request ID + security headers", "GET", "/",
            payloads.INDEX,
            "the hello-world request, sent with an `Origin`, through three middleware "
            "(Cello's `enable_cors()`, `enable_request_id()`, `enable_security_headers()`; "
            "Starlette's `CORSMiddleware` and two pure-ASGI middleware), next to the same "
            "apps without them",
            headers=(("Origin", payloads.ORIGIN),),
            targets=(
                Target("cello-3mw", "cello", 1.15,
                       "Cello with the three vs without, target ≤ 1.15x"),
                Target("granian-starlette-3mw", "granian-starlette", None,
                       "Starlette on granian with the three vs without, for context"),
                Target("uvicorn-starlette-3mw", "uvicorn-starlette", None,
                       "Starlette on uvicorn with the three vs without, for context"),
            ),
        ),
        Scenario(
            "static", f"`GET /static/{payloads.STATIC_FILE}` (1 MiB file)", "GET",
            f"/static/{payloads.STATIC_FILE}", STATIC_BYTES,
            "a 1 MiB file served from disk (written to a temporary directory at the "
            "start of the run): Cello's `enable_static_files()` against Starlette's "
            "`StaticFiles`",
            baseline="cello-static",
            targets=(
                Target("cello-static", "granian-starlette-static", 1.0,
                       "Cello vs Starlette on granian, Cello must lead (≤ 1x)"),
                Target("cello-static", "uvicorn-starlette-static", 1.0,
                       "Cello vs Starlette on uvicorn, Cello must lead (≤ 1x)"),
            ),
            show_size=True,
        ),
        Scenario(
            "gzip", "`GET /big` with `Accept-Encoding: gzip`", "GET", "/big", payloads.BIG,
            "the ~100 KiB JSON list of `GET /big`, gzip-compressed on every request: "
            "Cello's `enable_compression()` against Starlette's `GZipMiddleware` "
            "(the body size column shows what each compression level buys)",
            baseline="cello-gzip",
            headers=(("Accept-Encoding", "gzip"),),
            encoding="gzip",
            targets=(
                Target("cello-gzip", "granian-starlette-gzip", 1.0,
                       "Cello vs Starlette on granian, Cello must lead (≤ 1x)"),
                Target("cello-gzip", "uvicorn-starlette-gzip", 1.0,
                       "Cello vs Starlette on uvicorn, Cello must lead (≤ 1x)"),
            ),
            show_size=True,
        ),
    )
}  # fmt: skip
ONE_WORKER = ("/", "/users/42", "/query", "/echo", "/big")
