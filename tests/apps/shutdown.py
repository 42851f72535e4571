"""An app that leaves work behind when it is stopped: a request still
running, a task it spawned, an async generator it suspended. Each writes a
marker file into ``$CELLO_TEST_MARKERS`` once its cleanup has run."""

import asyncio
import os
from pathlib import Path

from cello import App, ClusterConfig

app = App()
MARKERS = Path(os.environ.get("CELLO_TEST_MARKERS", "."))
RUN_OPTIONS = {
    "cluster": ClusterConfig(
        workers=1,
        shutdown_timeout=float(os.environ.get("CELLO_TEST_SHUTDOWN_TIMEOUT", "1")),
        graceful_shutdown=os.environ.get("CELLO_TEST_GRACEFUL", "1") == "1",
    )
}
kept: list[object] = []


async def _clean_up(name: str) -> None:
    # Real cleanup awaits (closing a connection, a transaction): only a
    # cancellation lets it run; a coroutine merely garbage-collected cannot.
    await asyncio.sleep(0)
    (MARKERS / name).write_text("cleaned up")


async def _forever() -> None:
    try:
        await asyncio.sleep(3600)
    finally:
        await _clean_up("task")


@app.post("/spawn")
async def spawn(request):
    await asyncio.sleep(0)  # on the event loop's thread, whatever --threads says
    kept.append(asyncio.create_task(_forever()))
    return {"spawned": True}


async def _ticks():
    try:
        while True:
            yield
    finally:
        await _clean_up("agen")


@app.post("/agen")
async def suspend_agen(request):
    ticks = _ticks()
    await anext(ticks)
    kept.append(ticks)
    return {"suspended": True}


@app.get("/stuck")
async def stuck(request):
    (MARKERS / "stuck-started").write_text("")
    try:
        await asyncio.sleep(float(request.query.get("s", "3600")))
    finally:
        await _clean_up("stuck")
    return {"finished": True}
