"""Autobahn|Testsuite's fuzzing client against WebSocket echo endpoints.

Normally started by ``make autobahn`` (benchmarks/autobahn/run.sh, which
builds the Python 2.7 venv holding ``wstest`` first). For each target in
TARGETS it starts the server on a free 127.0.0.1 port, writes a
fuzzingclient spec naming that one server, runs ``wstest -m fuzzingclient``
bounded in time, stops the server and reads ``reports/<target>/index.json``.
It then prints a table of the cases' outcomes per target and exits non-zero
if any case FAILED (or a target that should have run did not), except on
the reference target, the uvicorn anchor, which fails a case itself.

A Cello target whose build has no WebSocket support yet (no
``cello.App.websocket``) exits with UNAVAILABLE_EXIT_CODE; it is reported as
skipped, not failed. Stdlib only, like bench.py.

Environment:
  AUTOBAHN_TARGETS   comma-separated target names (default: all)
  AUTOBAHN_CASES     comma-separated case patterns (default: "*")
  AUTOBAHN_TIMEOUT   seconds one target's run may take (default 2700)
  AUTOBAHN_OUT       where specs, logs and reports go (default target/autobahn)
  AUTOBAHN_WSTEST    the wstest executable (run.sh sets it)
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCH_DIR = HERE.parent
sys.path.insert(0, str(BENCH_DIR))

from procs import free_port  # noqa: E402
from settings import APPS_DIR, CELLO_PYTHON, PEER_BIN, REPO, UNAVAILABLE_EXIT_CODE  # noqa: E402

OUT_DIR = Path(os.environ.get("AUTOBAHN_OUT", REPO / "target" / "autobahn"))
REPORTS_DIR = OUT_DIR / "reports"
LOGS_DIR = OUT_DIR / "logs"
# The full case set took 10.5 minutes against the uvicorn anchor on a shared
# 2-core machine (95% of it in the permessage-deflate groups 12.* and 13.*);
# with uvicorn's legacy websockets implementation it had not finished after
# 20. A run past this bound is stopped and reported as an error.
DEFAULT_TIMEOUT_SECONDS = 2700
STARTUP_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 10

# The outcomes Autobahn gives a case ("behavior" in index.json), in the
# order the summary shows them. Only FAILED fails the recipe: NON-STRICT is
# a tolerated deviation (e.g. failing fast on invalid UTF-8 only at the end
# of a message), INFORMATIONAL cases have no verdict (close reasons), and
# UNIMPLEMENTED marks an optional feature not offered (permessage-deflate).
OUTCOMES = ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED")

# Every case runs: none of them needs more than a minute against a local
# echo server (the slowest, compression cases 12.2.*, took up to 24 s each
# against uvicorn; the 9.* limits cases send up to 16 MiB and take a few
# seconds), and the informational cases cost nothing. Narrow with
# AUTOBAHN_CASES to iterate.
CASES = ("*",)
EXCLUDE_CASES: tuple[str, ...] = ()


@dataclass(frozen=True)
class Target:
    """A server under test; `command` gets the port, `path` is the echo URL's."""

    name: str
    description: str
    command: Callable[[int], list[str]]
    path: str = "/echo"
    env: dict[str, str] = field(default_factory=dict)
    # A reference (the uvicorn anchor) is reported but does not decide the
    # exit code: its own FAILED cases are the bar Cello must clear, not a
    # defect of the recipe.
    reference: bool = False


def _cello_script(script: str) -> Callable[[int], list[str]]:
    return lambda port: [str(CELLO_PYTHON), str(APPS_DIR / script)]


def _uvicorn(port: int) -> list[str]:
    # `--ws websockets-sansio` is what uvicorn's default `--ws auto` picks
    # when websockets is installed; named so that a uvicorn upgrade cannot
    # silently swap the anchor's implementation.
    return [
        str(PEER_BIN / "uvicorn"),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--ws", "websockets-sansio",
        "--no-access-log",
        "--log-level", "warning",
        "--app-dir", str(APPS_DIR),
        "starlette_ws_app:app",
    ]  # fmt: skip


def _cello_serve(port: int) -> list[str]:
    return [
        str(CELLO_PYTHON), str(APPS_DIR / "cello_serve_ws.py"), "starlette_ws_app:app",
        "--port", str(port), "--no-logs", "--env", "production",
    ]  # fmt: skip


TARGETS: list[Target] = [
    Target(
        name="uvicorn-starlette",
        description="uvicorn + websockets (sans-I/O) serving the Starlette echo endpoint "
        "(the anchor)",
        command=_uvicorn,
        reference=True,
    ),
    Target(
        name="cello-native",
        description="Cello's native `@app.websocket('/echo')` under `app.run` (door 1)",
        command=_cello_script("cello_ws_app.py"),
        env={"PORT": "{port}"},
    ),
    Target(
        name="cello-mount-starlette",
        description="the Starlette echo endpoint mounted in a Cello app with `app.mount` (door 3)",
        command=_cello_script("cello_mount_starlette_ws.py"),
        env={"PORT": "{port}"},
    ),
    Target(
        name="cello-serve-starlette",
        description="`cello serve starlette_ws_app:app` (door 3)",
        command=_cello_serve,
    ),
]


# --------------------------------------------------------------------------
# Spec and report (pure functions, tested in tests/test_bench_tools.py)


def fuzzing_spec(agent: str, url: str, outdir: Path, cases=CASES, exclude=EXCLUDE_CASES) -> dict:
    """The fuzzingclient spec for one server."""
    return {
        "outdir": str(outdir),
        "servers": [{"agent": agent, "url": url}],
        "cases": list(cases),
        "exclude-cases": list(exclude),
        "exclude-agent-cases": {},
    }


def count_outcomes(index: dict, agent: str) -> dict[str, int]:
    """Cases per outcome for `agent` in a parsed reports/index.json. An
    outcome Autobahn adds that is not in OUTCOMES is counted under its own
    name rather than dropped."""
    counts = dict.fromkeys(OUTCOMES, 0)
    for case in index.get(agent, {}).values():
        behavior = case.get("behavior", "MISSING")
        counts[behavior] = counts.get(behavior, 0) + 1
    return counts


def failed_cases(index: dict, agent: str) -> list[str]:
    """The ids of the cases that FAILED, in Autobahn's numeric order."""

    def order(case_id: str) -> tuple[int, ...]:
        return tuple(int(part) if part.isdigit() else 0 for part in case_id.split("."))

    cases = index.get(agent, {})
    return sorted((cid for cid, c in cases.items() if c.get("behavior") == "FAILED"), key=order)


def summary_table(results: list[dict]) -> str:
    """A Markdown table, one row per target: its counts per outcome, or why
    it did not run. A result is {"target", "counts"} or {"target",
    "skipped"} or {"target", "error"}, with an optional "seconds"."""
    extra = sorted({k for r in results for k in r.get("counts", {}) if k not in OUTCOMES})
    columns = [*OUTCOMES, *extra]
    out = [
        "| target | " + " | ".join(columns) + " | total | time |",
        "|---|" + "--:|" * (len(columns) + 2),
    ]
    for result in results:
        seconds = result.get("seconds")
        took = "—" if seconds is None else f"{seconds:.0f} s"
        if "counts" in result:
            counts = result["counts"]
            cells = [str(counts.get(c, 0)) for c in columns]
            total = sum(counts.values())
            name = result["target"] + (" (reference)" if result.get("reference") else "")
            out.append(f"| {name} | " + " | ".join(cells) + f" | {total} | {took} |")
        else:
            why = f"skipped: {result['skipped']}" if "skipped" in result else "error"
            dashes = " — |" * (len(columns) + 1)
            out.append(f"| {result['target']} | {why} |{dashes[: -len(' — |')]} {took} |")
    notes = [f"- **{r['target']}**: {r['error']}" for r in results if "error" in r] + [
        f"- **{r['target']}** FAILED cases: {', '.join(r['failed'])}"
        for r in results
        if r.get("failed")
    ]
    if notes:
        out += ["", *notes]
    return "\n".join(out)


def exit_code(results: list[dict]) -> int:
    """1 if any case FAILED or a target broke; skipped targets and reference
    targets (marked "reference") do not count."""
    for result in results:
        if result.get("reference"):
            continue
        if "error" in result or result.get("counts", {}).get("FAILED", 0):
            return 1
    return 0


# --------------------------------------------------------------------------
# Running


def wait_ready(process: subprocess.Popen, port: int, log: Path) -> None:
    """Until the server accepts a TCP connection and answers bytes to an
    HTTP request (any status), or exits."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
                conn.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                if conn.recv(1):
                    return
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"no answer within {STARTUP_TIMEOUT_SECONDS}s; see {log}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def log_tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return ""


def run_target(target: Target, wstest: str, cases: tuple[str, ...], timeout: int) -> dict:
    started = time.monotonic()
    result: dict = {"target": target.name}
    if target.reference:
        result["reference"] = True
    port = free_port()
    LOGS_DIR.mkdir(parents=True, exist_ok=True)
    server_log = LOGS_DIR / f"{target.name}.server.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.update({k: v.replace("{port}", str(port)) for k, v in target.env.items()})
    with open(server_log, "wb") as log:
        process = subprocess.Popen(
            target.command(port),
            cwd=APPS_DIR,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_ready(process, port, server_log)
        if process.poll() is not None:
            if process.returncode == UNAVAILABLE_EXIT_CODE:
                reason = log_tail(server_log, 1).removeprefix("not available: ")
                result["skipped"] = reason
            else:
                result["error"] = f"server exited with {process.returncode}: {log_tail(server_log)}"
            return result
        outdir = REPORTS_DIR / target.name
        outdir.mkdir(parents=True, exist_ok=True)
        index_path = outdir / "index.json"
        index_path.unlink(missing_ok=True)
        spec_path = OUT_DIR / f"{target.name}.spec.json"
        url = f"ws://127.0.0.1:{port}{target.path}"
        spec_path.write_text(json.dumps(fuzzing_spec(target.name, url, outdir, cases), indent=2))
        client_log = LOGS_DIR / f"{target.name}.wstest.log"
        print(f"== {target.name}: {target.description}\n   {url}", flush=True)
        with open(client_log, "wb") as log:
            client = subprocess.Popen(
                [wstest, "-m", "fuzzingclient", "-s", str(spec_path)],
                cwd=OUT_DIR,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                client.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                stop(client)
                result["error"] = f"wstest did not finish within {timeout} s; see {client_log}"
                return result
        if not index_path.exists():
            result["error"] = f"wstest wrote no index.json: {log_tail(client_log)}"
            return result
        index = json.loads(index_path.read_text())
        result["counts"] = count_outcomes(index, target.name)
        result["failed"] = failed_cases(index, target.name)
        if process.poll() is not None:
            result["error"] = f"the server died during the run: {log_tail(server_log)}"
        return result
    except (RuntimeError, OSError) as error:
        result["error"] = f"{type(error).__name__}: {error}"
        return result
    finally:
        stop(process)
        result["seconds"] = time.monotonic() - started


def main() -> int:
    wstest = os.environ.get("AUTOBAHN_WSTEST", str(REPO / "target/autobahn-venv/py27/bin/wstest"))
    if not Path(wstest).exists():
        print(f"no wstest at {wstest}: run `make autobahn`", file=sys.stderr)
        return 2
    # wstest runs from OUT_DIR.
    wstest = str(Path(wstest).resolve())
    wanted = {n.strip() for n in os.environ.get("AUTOBAHN_TARGETS", "").split(",") if n.strip()}
    unknown = wanted - {t.name for t in TARGETS}
    if unknown:
        known = ", ".join(t.name for t in TARGETS)
        print(f"unknown target(s) {sorted(unknown)}; known: {known}", file=sys.stderr)
        return 2
    raw_cases = os.environ.get("AUTOBAHN_CASES", "")
    cases = tuple(c.strip() for c in raw_cases.split(",") if c.strip()) or CASES
    timeout = int(os.environ.get("AUTOBAHN_TIMEOUT", str(DEFAULT_TIMEOUT_SECONDS)))
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    results = []
    for target in TARGETS:
        if wanted and target.name not in wanted:
            continue
        result = run_target(target, wstest, cases, timeout)
        results.append(result)
        if "skipped" in result:
            print(f"== {target.name}: skipped: {result['skipped']}", flush=True)
    table = summary_table(results)
    (OUT_DIR / "summary.md").write_text(table + "\n")
    (OUT_DIR / "summary.json").write_text(json.dumps(results, indent=2))
    print()
    print(table)
    print(f"\nreports: {REPORTS_DIR}/<target>/index.html")
    return exit_code(results)


if __name__ == "__main__":
    sys.exit(main())
