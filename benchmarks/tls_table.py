"""The HTTPS and HTTP/2 tables (issue 22): the same hello-world request over
TLS, loaded two ways.

- ``https``: HTTP/1.1 over TLS 1.3, loaded with wrk (its usual connections)
  on an ``https://`` URL: the cost of TLS records on top of HTTP/1.1.
- ``h2``: HTTP/2 over TLS (ALPN ``h2``), loaded with h2load from Debian's
  nghttp2-client: H2_CLIENTS connections with H2_STREAMS streams in flight
  each. Latency percentiles come from h2load's per-request log.

Every server serves the Starlette hello app, or Cello's own
(``cello_app.py``), with one certificate made for the run (``trustme``, in
Cello's venv) under results/tls/. bench.py adds these scenarios and servers
to its own and hands their rows here instead of to its plain-HTTP check.
"""

from __future__ import annotations

import json
import os
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from http.client import HTTPSConnection
from pathlib import Path
from typing import Any

from procs import host_cpu_ticks
from settings import CELLO_PYTHON, RESULTS_DIR, Scenario

HTTPS_KEY = "https"
H2_KEY = "h2"
H2_CLIENTS = int(os.environ.get("BENCH_H2_CLIENTS", "4"))
H2_STREAMS = 64
TLS_DIR = RESULTS_DIR / "tls"
CERT = TLS_DIR / "cert.pem"
KEY = TLS_DIR / "key.pem"

INDEX = {"message": "Hello, World!"}

HTTPS_SCENARIO = Scenario(
    HTTPS_KEY,
    "`GET /` over HTTPS (HTTP/1.1, TLS 1.3)",
    "GET", "/", INDEX,
    "the hello-world request over TLS 1.3 with HTTP/1.1 keep-alive (wrk on an `https://` "
    "URL): what TLS adds to the fixed cost of a request",
    baseline="cello-tls",
    kind=HTTPS_KEY,
)  # fmt: skip

H2_SCENARIO = Scenario(
    H2_KEY,
    f"`GET /` over HTTP/2 + TLS, {H2_CLIENTS} connections x {H2_STREAMS} streams",
    "GET", "/", INDEX,
    f"the hello-world request over HTTP/2 (ALPN h2), h2load with {H2_CLIENTS} connections "
    f"and {H2_STREAMS} concurrent streams each",
    baseline="cello-tls",
    kind=H2_KEY,
)  # fmt: skip

SCENARIOS = (HTTPS_SCENARIO, H2_SCENARIO)
KINDS = (HTTPS_KEY, H2_KEY)


def ensure_certificate() -> None:
    """A certificate for 127.0.0.1, made once per results directory."""
    if CERT.exists() and KEY.exists():
        return
    TLS_DIR.mkdir(parents=True, exist_ok=True)
    script = (
        "import sys, trustme\n"
        "issued = trustme.CA().issue_cert('127.0.0.1', 'localhost')\n"
        "with open(sys.argv[1], 'wb') as f:\n"
        "    f.write(b''.join(p.bytes() for p in issued.cert_chain_pems))\n"
        "issued.private_key_pem.write_to_path(sys.argv[2])\n"
    )
    subprocess.run([str(CELLO_PYTHON), "-c", script, str(CERT), str(KEY)], check=True, timeout=60)


def tls_servers(
    server: Callable[..., Any],
    cello_script: Callable[..., Callable[[int], list[str]]],
    granian: Callable[..., Callable[[int], list[str]]],
    hypercorn: Callable[..., Callable[[int], list[str]]],
) -> list[Any]:
    """The tables' rows, built with bench.py's own helpers."""
    both = (HTTPS_KEY, H2_KEY)
    cert, key = str(CERT), str(KEY)
    plain_granian = granian("starlette_app:app", "asgi")
    plain_hypercorn = hypercorn("starlette_app:app")
    return [
        server(
            name="cello-tls",
            description="Cello `app.run(tls=..., http2=...)` (native server), sync `def` handler",
            command=cello_script("cello_app.py", "--tls-cert", cert, "--tls-key", key, "--http2"),
            env={"PORT": "{port}", "BENCH_CELLO_MIDDLEWARE": ""},
            scenarios=both,
        ),
        server(
            name="granian-starlette-tls",
            description="granian, 1 worker, Starlette, `--ssl-certificate` `--http auto`",
            command=lambda port: [
                *plain_granian(port)[:-1],
                "--ssl-certificate", cert, "--ssl-keyfile", key, "--http", "auto",
                plain_granian(port)[-1],
            ],
            scenarios=both,
        ),
        server(
            name="hypercorn-starlette-tls",
            description="hypercorn (asyncio), 1 worker, Starlette, `--certfile`",
            command=lambda port: [
                *plain_hypercorn(port)[:-1],
                "--certfile", cert, "--keyfile", key,
                plain_hypercorn(port)[-1],
            ],
            scenarios=both,
        ),
    ]  # fmt: skip


def _context() -> ssl.SSLContext:
    # The benchmark trusts its own throwaway certificate.
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def get(port: int, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
    conn = HTTPSConnection("127.0.0.1", port, timeout=timeout, context=_context())
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def ready(port: int, path: str) -> bool:
    try:
        get(port, path, timeout=1.0)
        return True
    except (OSError, ssl.SSLError):
        return False


def check(port: int, scenario: Scenario) -> str | None:
    """Why the server's answer over TLS is not the scenario's, or None."""
    try:
        status, body = get(port, scenario.path)
    except (OSError, ssl.SSLError) as error:
        return f"GET {scenario.path} over TLS failed: {error}"
    if status != 200:
        return f"GET {scenario.path} over TLS returned {status}"
    try:
        payload = json.loads(body)
    except ValueError:
        payload = None
    if payload != scenario.expected:
        return f"GET {scenario.path} over TLS answered {body[:200]!r}"
    if scenario.kind == H2_KEY and shutil.which("h2load") is None:
        return "h2load is not installed (make h2load)"
    return None


def measure_h2(
    pid: int, port: int, path: str, seconds: int, warmup: int, cpu: Callable[[int], float]
) -> dict:
    """One h2load run of `seconds` after `warmup` seconds; CPU from `cpu`
    around the whole of it (h2load's warm-up is inside its run)."""
    url = f"https://127.0.0.1:{port}{path}"
    with tempfile.NamedTemporaryFile(prefix="h2load-", suffix=".log") as log:
        argv = [
            "h2load", "-c", str(H2_CLIENTS), "-m", str(H2_STREAMS),
            "--warm-up-time", f"{warmup}s", "-D", f"{seconds}s",
            "--log-file", log.name, url,
        ]  # fmt: skip
        cpu_before = cpu(pid)
        host_busy_before, host_total_before = host_cpu_ticks()
        started = time.monotonic()
        completed = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + warmup + 60, check=False
        )
        elapsed = time.monotonic() - started
        cpu_s = cpu(pid) - cpu_before
        host_busy, host_total = host_cpu_ticks()
        latencies_us = []
        statuses: dict[str, int] = {}
        for line in Path(log.name).read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3:
                statuses[parts[1]] = statuses.get(parts[1], 0) + 1
                latencies_us.append(int(parts[2]))
    requests, failed = _h2load_counts(completed.stdout)
    if not latencies_us or requests == 0:
        raise RuntimeError(f"h2load produced no requests: {completed.stdout} {completed.stderr}")
    latencies_us.sort()

    def pct(q: float) -> float:
        return latencies_us[min(len(latencies_us) - 1, int(q * len(latencies_us)))] / 1000

    duration_s = min(float(seconds), elapsed)
    errors = {"failed": failed, **{f"status {s}": n for s, n in statuses.items() if s != "200"}}
    host_total -= host_total_before
    return {
        "requests": requests,
        "duration_s": duration_s,
        "req_per_s": requests / duration_s,
        "p50_ms": pct(0.50),
        "p90_ms": pct(0.90),
        "p99_ms": pct(0.99),
        "max_ms": latencies_us[-1] / 1000,
        # Includes the warm-up's requests, which the rate leaves out.
        "cpu_s": cpu_s,
        "cpu_us_per_req": cpu_s * 1e6 / len(latencies_us),
        "wrk_errors": errors,
        "errors_total": sum(errors.values()),
        "wrk_stdout": completed.stdout,
        "host_busy_pct": (host_busy - host_busy_before) * 100 / host_total if host_total else None,
        "mean_ms": statistics.fmean(latencies_us) / 1000,
    }


def _h2load_counts(stdout: str) -> tuple[int, int]:
    """(succeeded, failed) from h2load's "requests:" line."""
    for line in stdout.splitlines():
        if line.startswith("requests:"):
            fields = {
                part.split()[1]: int(part.split()[0])
                for part in line.removeprefix("requests:").split(",")
                if len(part.split()) == 2
            }
            return fields.get("succeeded", 0), fields.get("failed", 0)
    return 0, 0
