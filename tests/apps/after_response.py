"""An app whose handlers register after-response callbacks
(``request._after_response``) and report, through ``/events``, what those
callbacks did. A gate (``/release``) holds the blocked ones until the test
opens it, so no test has to guess how long anything takes."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sys
from pathlib import Path

from cello import App, ClusterConfig, Response

logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
logging.getLogger("cello.background").setLevel(logging.INFO)

app = App()
RUN_OPTIONS = {
    "cluster": ClusterConfig(
        workers=1,
        shutdown_timeout=float(os.environ.get("CELLO_TEST_SHUTDOWN_TIMEOUT", "30")),
        graceful_shutdown=os.environ.get("CELLO_TEST_GRACEFUL", "1") == "1",
    )
}
# A file whose appearance lets the shutdown test's callback finish.
FLAG = os.environ.get("CELLO_TEST_FLAG", "")

EVENTS: list[str] = []
_gates: dict[asyncio.AbstractEventLoop, asyncio.Event] = {}
who = contextvars.ContextVar("who", default="nobody")


def _gate() -> asyncio.Event:
    """The gate of the running loop (callbacks run on the loop's thread)."""
    loop = asyncio.get_running_loop()
    if loop not in _gates:
        _gates[loop] = asyncio.Event()
    return _gates[loop]


@app.get("/events")
def events(request):
    return {"events": list(EVENTS)}


@app.post("/reset")
async def reset(request):
    await asyncio.sleep(0)  # on the event loop's thread, whatever --threads says
    EVENTS.clear()
    _gate().clear()
    return {"events": []}


@app.post("/release")
async def release(request):
    await asyncio.sleep(0)
    _gate().set()
    return {"released": True}


@app.get("/ordered")
async def ordered(request):
    async def second():
        await asyncio.sleep(0)
        EVENTS.append("second")

    request._after_response(lambda: EVENTS.append("first"))
    request._after_response(second)
    request._after_response(lambda: EVENTS.append("third"))
    EVENTS.append("handler")
    return {"ok": True}


@app.get("/sync")
def sync_handler(request):
    request._after_response(lambda: EVENTS.append("after sync handler"))
    return {"ok": True}


@app.get("/failing")
async def failing(request):
    def broken():
        raise ValueError("callback exploded")

    async def broken_async():
        raise KeyError("async callback exploded")

    request._after_response(broken)
    request._after_response(broken_async)
    request._after_response(lambda: EVENTS.append("ran after the failures"))
    return {"ok": True}


@app.get("/boom")
async def boom(request):
    request._after_response(lambda: EVENTS.append("after a 500"))
    raise RuntimeError("handler failed")


@app.get("/blocked")
async def blocked(request):
    async def wait_for_gate():
        EVENTS.append("blocked")
        await _gate().wait()
        EVENTS.append("released")

    request._after_response(wait_for_gate)
    return {"body": "x" * 100_000}


@app.get("/stream")
async def stream(request):
    async def chunks():
        for i in range(3):
            yield f"chunk {i}\n"
        EVENTS.append("stream ended")

    request._after_response(lambda: EVENTS.append("after the stream"))
    return Response.stream(chunks(), content_type="text/plain")


@app.get("/context")
async def context(request):
    who.set("the handler")

    def record():
        EVENTS.append(f"context: {who.get()}")

    request._after_response(record)
    who.set("changed later")  # a copy is taken at registration... of the context itself
    return {"ok": True}


@app.get("/late")
async def late(request):
    def try_again():
        try:
            request._after_response(lambda: None)
        except RuntimeError as exc:
            EVENTS.append(f"refused: {exc}")

    request._after_response(try_again)
    return {"ok": True}


@app.get("/not-callable")
async def not_callable(request):
    try:
        request._after_response(42)
    except TypeError as exc:
        return {"error": str(exc)}
    return {"error": None}


@app.get("/slow")
async def slow(request):
    request._after_response(lambda: EVENTS.append("after the cancelled handler"))
    EVENTS.append("handler waiting")
    await asyncio.Event().wait()


@app.get("/until-flag")
async def until_flag(request):
    async def wait_for_flag():
        EVENTS.append("waiting for the flag")
        print("background: waiting for the flag", file=sys.stderr, flush=True)
        while not Path(FLAG).exists():
            await asyncio.sleep(0.01)
        print("background: finished", file=sys.stderr, flush=True)

    request._after_response(wait_for_flag)
    return {"ok": True}


@app.get("/forever")
async def forever(request):
    async def never_ends():
        EVENTS.append("never ends")
        await asyncio.Event().wait()

    request._after_response(never_ends)
    return {"ok": True}


@app.on_shutdown
def report_shutdown():
    print("shutdown hook ran", file=sys.stderr, flush=True)


@app.get("/endless")
async def endless(request):
    async def chunks():
        try:
            while True:
                yield "tick\n"
                await asyncio.sleep(0.01)
        finally:
            EVENTS.append("stream closed")

    request._after_response(lambda: EVENTS.append("after the abandoned stream"))
    return Response.stream(chunks(), content_type="text/plain")


# The same hook behind a Python middleware and a native layer (compression).
layered = App()
layered.enable_compression(min_size=10)


@layered.middleware("http")
async def tag(request, call_next):
    response = await call_next(request)
    response.set_header("X-Tagged", "yes")
    if request.path == "/hooked":
        EVENTS.append("middleware done")
        response.background = lambda: EVENTS.append("middleware background")
    return response


@layered.get("/events")
def layered_events(request):
    return {"events": list(EVENTS)}


@layered.post("/reset")
def layered_reset(request):
    EVENTS.clear()
    return {"events": []}


@layered.get("/hooked")
async def layered_hooked(request):
    request._after_response(lambda: EVENTS.append("callback"))
    return Response.json({"text": "y" * 2000}, background=lambda: EVENTS.append("background"))
