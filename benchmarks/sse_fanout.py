"""The SSE fan-out table: many clients on one event stream (stdlib only).

Each server runs the same app (apps/sse_hub.py): a ticker publishes
``SSE_RATE`` events a second and every client connected to ``GET /sse``
gets each one. This runner starts a server, opens ``SSE_CLIENTS``
connections from 127.0.0.1 (an asyncio client in this process), waits until
every client has its first event, then counts the events delivered over
``SSE_DURATION`` seconds, with the server's CPU time (its process tree,
from /proc), this client's and the whole host's over the same window.

Figures: events delivered per second (offered: clients x rate), server CPU
microseconds per delivered event, and whether the client kept up. The
client is Python: when the host is saturated, it may be what limits the
delivered rate, which is why server CPU per event (not events/s) is the
figure to compare servers on, and host CPU is reported.

    python benchmarks/sse_fanout.py                    # 1,000 clients, 5 s
    SSE_CLIENTS=50 SSE_DURATION=2 python benchmarks/sse_fanout.py
    SSE_SERVERS=cello-sse python benchmarks/sse_fanout.py

Writes benchmarks/results/sse-fanout-<clients>.json and prints a markdown
table. run.sh runs it after bench.py unless BENCH_SSE=0.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import resource
import sys
import time
from pathlib import Path

from bench import (
    UVLOOP,
    RunningServer,
    Server,
    StartError,
    Unavailable,
    _cello_script,
    _granian,
    _uvicorn,
    tree_cpu_seconds,
)
from procs import free_port, host_cpu_ticks
from settings import RESULTS_DIR

CLIENTS = int(os.environ.get("SSE_CLIENTS", "1000"))
DURATION = float(os.environ.get("SSE_DURATION", "5"))
RATE = float(os.environ.get("SSE_RATE", "20"))
# Bounds on everything that waits, so the run always ends by itself.
CONNECT_TIMEOUT = 60.0
FIRST_EVENT_TIMEOUT = 30.0

SERVERS = [
    Server(
        name="cello-sse",
        description="Cello `app.run`, `Response.sse` over an async generator (keepalive on)",
        command=_cello_script("cello_sse_app.py"),
        env={"PORT": "{port}", "SSE_RATE": str(RATE)},
    ),
    # Starlette's stream sends no keepalive: this row is the like-for-like one.
    Server(
        name="cello-sse-no-keepalive",
        description="Cello `app.run`, `Response.sse(..., keepalive=None)`",
        command=_cello_script("cello_sse_app.py"),
        env={"PORT": "{port}", "SSE_RATE": str(RATE), "SSE_KEEPALIVE": "0"},
    ),
    Server(
        name="uvicorn-starlette-sse",
        description=f"{UVLOOP}, 1 worker, Starlette `StreamingResponse`",
        command=_uvicorn("starlette_sse_app:app"),
        env={"SSE_RATE": str(RATE)},
    ),
    Server(
        name="granian-starlette-sse",
        description="granian, 1 worker, Starlette `StreamingResponse`",
        command=_granian("starlette_sse_app:app", "asgi"),
        env={"SSE_RATE": str(RATE)},
    ),
]


class Counter(asyncio.Protocol):
    """One client: sends the request, then counts event ends (a blank line)
    in whatever arrives, chunk framing or not."""

    def __init__(self, request: bytes, first: asyncio.Future[None]) -> None:
        self.request = request
        self.first = first
        self.events = 0
        self.tail = b""
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        seen = (self.tail + data).count(b"\n\n") - self.tail.count(b"\n\n")
        self.tail = data[-1:]
        if seen and not self.events and not self.first.done():
            self.first.set_result(None)
        self.events += seen

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.first.done():
            self.first.set_exception(ConnectionError("closed before its first event"))


async def load(port: int, server_pid: int) -> dict:
    loop = asyncio.get_running_loop()
    request = f"GET /sse HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n\r\n"
    clients: list[Counter] = []
    transports = []
    firsts = []

    async def connect() -> None:
        first = loop.create_future()
        transport, client = await loop.create_connection(
            lambda: Counter(request.encode(), first), "127.0.0.1", port
        )
        transports.append(transport)
        clients.append(client)
        firsts.append(first)

    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            for start in range(0, CLIENTS, 100):  # in batches: the listen backlog
                await asyncio.gather(*(connect() for _ in range(start, min(start + 100, CLIENTS))))
        async with asyncio.timeout(FIRST_EVENT_TIMEOUT):
            await asyncio.gather(*firsts)
        before_events = sum(c.events for c in clients)
        before_server = tree_cpu_seconds(server_pid)
        before_client = sum(os.times()[:2])
        before_host = host_cpu_ticks()
        started = time.monotonic()
        await asyncio.sleep(DURATION)
        elapsed = time.monotonic() - started
        events = sum(c.events for c in clients) - before_events
        server_cpu = tree_cpu_seconds(server_pid) - before_server
        client_cpu = sum(os.times()[:2]) - before_client
        busy, total = (a - b for a, b in zip(host_cpu_ticks(), before_host, strict=True))
    finally:
        for transport in transports:
            transport.close()
    offered = CLIENTS * RATE
    return {
        "clients": CLIENTS,
        "connected": sum(not c.lost for c in clients),
        "rate_per_client": RATE,
        "seconds": round(elapsed, 3),
        "events": events,
        "events_per_s": round(events / elapsed, 1),
        "offered_per_s": offered,
        "delivered_ratio": round(events / elapsed / offered, 3),
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_us_per_event": round(server_cpu / events * 1e6, 2) if events else None,
        "server_cpu_percent": round(server_cpu / elapsed * 100, 1),
        "client_cpu_percent": round(client_cpu / elapsed * 100, 1),
        "host_cpu_percent": round(busy / total * 100, 1) if total else None,
    }


def measure(server: Server) -> dict:
    running = RunningServer(server, free_port())
    try:
        running.wait_ready("/")
        return {"server": server.name, **asyncio.run(load(running.port, running.process.pid))}
    except Unavailable as exc:
        return {"server": server.name, "error": f"not available: {exc}"}
    except (StartError, OSError, TimeoutError, ConnectionError) as exc:
        return {"server": server.name, "error": f"{type(exc).__name__}: {exc}"}
    finally:
        running.stop()


def table(rows: list[dict]) -> str:
    lines = [
        f"SSE fan-out: {CLIENTS} clients, {RATE:g} events/s each "
        f"(offered {CLIENTS * RATE:,.0f} events/s), {DURATION:g} s measured",
        "",
        "| server | events/s delivered | of offered | server CPU µs/event | server CPU % "
        "| client CPU % | host CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['server']} | failed: {row['error']} | | | | | |")
            continue
        lines.append(
            f"| {row['server']} | {row['events_per_s']:,.0f} | {row['delivered_ratio']:.0%} "
            f"| {row['server_cpu_us_per_event']} | {row['server_cpu_percent']} "
            f"| {row['client_cpu_percent']} | {row['host_cpu_percent']} |"
        )
    return "\n".join(lines)


def main() -> int:
    # Room for every client socket here, and (inherited) in the servers.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = min(hard, max(soft, 2 * CLIENTS + 256))
    resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    names = {n for n in os.environ.get("SSE_SERVERS", "").split(",") if n}
    rows = []
    for server in SERVERS:
        if names and server.name not in names:
            continue
        print(f"== {server.name}: {CLIENTS} clients", flush=True)
        row = measure(server)
        print(json.dumps(row), flush=True)
        rows.append(row)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = Path(RESULTS_DIR) / f"sse-fanout-{CLIENTS}.json"
    out.write_text(
        json.dumps(
            {"when": datetime.datetime.now(datetime.UTC).isoformat(), "rows": rows}, indent=2
        )
    )
    print(table(rows))
    return 0 if rows and all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
