"""The app of the server-sent events tests: every kind of source, streams
a test holds open (released by a POST), cleanup flags a test polls, and a
second app behind compression."""

from __future__ import annotations

import asyncio
import time

from cello import App, Response, SseEvent, SseStream

# What the streams' ``finally`` blocks recorded, by name.
closed: dict[str, bool] = {}
# Set by POST /sse/release/<name>; a held stream waits for its own.
_released: dict[str, asyncio.Event] = {}


def released(name: str) -> asyncio.Event:
    if name not in _released:
        _released[name] = asyncio.Event()
    return _released[name]


def build(app: App) -> None:
    @app.get("/sse/stream")
    def stream():
        # Returned as it is: sent as Response.sse(stream) would send it.
        s = SseStream()
        s.add(SseEvent("hello", event="greeting", id="1"))
        s.add_data("two\nlines")
        s.add_event("json", {"n": 3, "word": "café"})
        return s

    @app.get("/sse/empty")
    def empty():
        return SseStream()

    @app.get("/sse/list")
    def as_list():
        return Response.sse([SseEvent.data("a"), "b", {"c": [1, 2]}, SseEvent.comment("note")])

    @app.get("/sse/sync")
    def sync_source():
        def source():
            for i in range(3):
                yield SseEvent(f"tick {i}", id=str(i))

        return Response.sse(source())

    @app.get("/sse/async")
    async def async_source():
        async def source():
            for i in range(3):
                await asyncio.sleep(0)
                yield SseEvent.with_event("tick", f"{i}")

        return Response.sse(source(), keepalive=None)

    @app.get("/sse/options")
    def options():
        return Response.sse(
            [SseEvent("x", retry=2500)],
            status=201,
            headers={"X-Stream": "yes", "Cache-Control": "no-store"},
        )

    @app.get("/sse/resume")
    def resume(request):
        # Events after the one the reconnecting client saw last.
        after = int(request.last_event_id or 0)
        return Response.sse(SseEvent(f"event {i}", id=str(i)) for i in range(after + 1, 4))

    @app.get("/sse/last-event-id")
    def last_event_id(request):
        return {"last_event_id": request.last_event_id}

    @app.get("/sse/refused/{what}")
    def refused(request):
        source = {"str": "data", "bytes": b"data", "dict": {"a": 1}, "int": 3}
        try:
            Response.sse(source[request.params["what"]])
        except TypeError as exc:
            return {"refused": str(exc)}
        return {"refused": None}

    @app.get("/sse/injection")
    def injection():
        refused = 0
        for kwargs in ({"event": "a\nb"}, {"event": "a\r"}, {"id": "1\r\n2"}, {"id": "\0"}):
            try:
                SseEvent("x", **kwargs)
            except ValueError:
                refused += 1
        for retry in (-1, 1.5, "10", True):
            try:
                SseEvent("x", retry=retry)
            except ValueError:
                refused += 1
        return {"refused": refused}

    @app.get("/sse/unhandled-bad-source")
    def unhandled_bad_source():
        return Response.sse("not a stream")

    @app.get("/sse/fails")
    def fails():
        async def source():
            yield "before"
            raise RuntimeError("the feed broke")

        return Response.sse(source())

    @app.get("/sse/held/{name}")
    def held(request):
        """One event, then one more when released; records its cleanup."""
        name = request.params["name"]
        keepalive = float(request.query.get("keepalive", "15"))
        closed[name] = False

        async def source():
            try:
                yield SseEvent("first", id="1")
                await released(name).wait()
                yield SseEvent("second", id="2")
            finally:
                closed[name] = True

        return Response.sse(source(), keepalive=keepalive)

    @app.get("/sse/held-sync/{name}")
    def held_sync(request):
        """A sync generator between its events: it sleeps in short steps."""
        name = request.params["name"]
        closed[name] = False

        def source():
            try:
                yield "first"
                while True:
                    time.sleep(0.05)
                    yield SseEvent.comment("still here")
            finally:
                closed[name] = True

        return Response.sse(source(), keepalive=None)

    @app.post("/sse/release/{name}")
    def release(request):
        released(request.params["name"]).set()
        return {"released": True}

    @app.get("/sse/closed")
    def closed_flags():
        return closed

    @app.get("/sse/tasks")
    async def tasks():
        # This handler's own task is not counted.
        return {"tasks": len(asyncio.all_tasks()) - (asyncio.current_task() is not None)}


app = App()
build(app)

compressed = App()
compressed.enable_compression()
build(compressed)
