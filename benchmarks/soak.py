"""Bounded soak test: does the Cello server's memory settle under load?

Starts the benchmark's Cello app (apps/cello_app.py, one worker) on a free
127.0.0.1 port, records its resident memory right after startup (idle), then
drives it with wrk in short runs, cycling through the benchmark's GET and
POST requests, until 100k and then SOAK_REQUESTS (default 1,000,000)
requests have been served, recording RSS at each checkpoint. A server that
leaks per request shows up as RSS still growing between the checkpoints.

    python benchmarks/soak.py                      # 100k and 1M requests
    SOAK_REQUESTS=300000 python benchmarks/soak.py # smaller second checkpoint

Checkpoints are checked between 1 s wrk runs, so each lands at or past its
nominal count by up to one run (~100k requests on a fast machine, which can
put the first one near 200k); the actual count is printed. RSS is VmRSS summed over
the server's process tree. The whole run is bounded
by SOAK_MAX_SECONDS (default 180): if the machine is too slow to reach a
checkpoint in time, the script says how far it got. Needs wrk and Cello in
.venv, like bench.py (whose helpers it reuses); the summary also goes to
benchmarks/results/soak-latest.json.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench

FIRST_CHECKPOINT = 100_000
CHUNK_SECONDS = 1
# The requests cycled through, by SCENARIOS key. /big is left out: at ~100 KiB
# a response it would make the run about bandwidth, not about leaks.
ROTATION = ("/", "/users/42", "/query", "/echo")


def tree_rss_mib(root: int) -> float:
    total_kib = 0
    for pid in bench.process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kib += int(match.group(1))
    return total_kib / 1024


def main() -> int:
    target = int(os.environ.get("SOAK_REQUESTS", "1000000"))
    max_seconds = float(os.environ.get("SOAK_MAX_SECONDS", "180"))
    checkpoints = sorted({min(FIRST_CHECKPOINT, target), target})
    server = next(s for s in bench.SERVERS if s.name == "cello")
    bench.RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    bench.ECHO_BODY_PATH.write_bytes(bench.ECHO_BODY)

    running = bench.RunningServer(server, bench.free_port())
    started = time.monotonic()
    results: dict = {"target_requests": target, "checkpoints": []}
    try:
        running.wait_ready("/")
        pid = running.process.pid
        # Let the interpreter finish settling after its first answer.
        time.sleep(1)
        idle = tree_rss_mib(pid)
        results["idle_rss_mib"] = idle
        print(f"idle RSS after startup: {idle:.1f} MiB (pid {pid})", flush=True)

        served = 0
        chunk = 0
        for checkpoint in checkpoints:
            while served < checkpoint:
                if time.monotonic() - started > max_seconds:
                    print(f"stopping: SOAK_MAX_SECONDS={max_seconds:g} reached", flush=True)
                    results["stopped_early"] = True
                    break
                scenario = bench.SCENARIOS[ROTATION[chunk % len(ROTATION)]]
                report = bench.run_wrk(running.port, scenario, scenario.path, CHUNK_SECONDS)
                errors = sum(report["errors"].values())
                if errors:
                    print(f"warning: {errors} wrk errors on {scenario.path}", flush=True)
                served += report["requests"]
                chunk += 1
            if results.get("stopped_early"):
                break
            rss = tree_rss_mib(pid)
            results["checkpoints"].append({"requests": served, "rss_mib": rss})
            print(f"after {served:>9,} requests: RSS {rss:.1f} MiB", flush=True)
        results["requests_served"] = served
        results["elapsed_s"] = round(time.monotonic() - started, 1)
    except bench.StartError as error:
        print(f"cello failed to start: {error}", file=sys.stderr)
        return 1
    finally:
        running.stop()

    marks = results["checkpoints"]
    if marks:
        last = marks[-1]
        print(f"RSS after {last['requests']:,} / idle: {last['rss_mib'] / idle:.2f}x")
        if len(marks) > 1:
            first = marks[0]
            growth = last["rss_mib"] / first["rss_mib"]
            print(
                f"RSS after {last['requests']:,} / after {first['requests']:,}: {growth:.3f}x "
                f"({last['rss_mib'] - first['rss_mib']:+.1f} MiB)"
            )
    print(f"took {results['elapsed_s']} s")
    (bench.RESULTS_DIR / "soak-latest.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
