"""The server-sent events conformance app: every kind of source
``Response.sse`` takes, a returned ``SseStream``, status and header
overrides, resuming from ``Last-Event-ID``, a refused source, and a mounted
Starlette app's event stream (door 3)."""

from __future__ import annotations

import asyncio

from starlette.applications import Starlette
from starlette.responses import StreamingResponse
from starlette.routing import Route

from cello import App, Response, SseEvent, SseStream

app = App()


@app.get("/stream")
def stream():
    return (
        SseStream()
        .add(SseEvent("hello", event="greeting", id="1", retry=3000))
        .add_data("two\r\nlines\rhere")
        .add_event("json", {"word": "café", "n": [1, 2]})
        .add(SseEvent.comment("a comment"))
    )


@app.get("/list")
def as_list():
    return Response.sse(["plain", {"k": None}, SseEvent(id="9")])


@app.get("/sync")
def sync_source():
    def source():
        for i in range(3):
            yield SseEvent(f"sync {i}", id=str(i))

    return Response.sse(source())


@app.get("/async")
async def async_source():
    async def source():
        for i in range(3):
            await asyncio.sleep(0)
            yield SseEvent.with_event("tick", str(i))

    return Response.sse(source(), keepalive=None)


@app.get("/options")
def options():
    return Response.sse(
        [SseEvent("x")], status=202, headers={"X-Feed": "1", "Cache-Control": "no-store"}
    )


@app.get("/resume")
def resume(request):
    after = int(request.last_event_id or 0)
    return Response.sse(SseEvent(f"event {i}", id=str(i)) for i in range(after + 1, 4))


@app.get("/refused")
def refused():
    return Response.sse("a str is not a stream of events")


async def starlette_events(request):
    async def source():
        for i in range(2):
            yield f"id: {i}\ndata: mounted {i}\n\n"

    return StreamingResponse(source(), media_type="text/event-stream")


app.mount("/star", Starlette(routes=[Route("/events", starlette_events)]))
