"""An app with request IDs and a JSON access log: whole and streamed
bodies, a stream that never ends, probe paths, and a mounted Starlette app."""

import asyncio

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse, StreamingResponse
from starlette.routing import Route

from cello import App, Response

app = App()
app.enable_request_id()
app.enable_logging(format="json")


@app.get("/")
def index(request):
    return {"ok": True}


@app.get("/health")
def health(request):
    return {"status": "ok"}


@app.get("/health/live")
def live(request):
    return {"status": "ok"}


@app.get("/metrics")
def metrics(request):
    return Response.text("requests 1\n")


@app.get("/stream")
def stream(request):
    async def chunks():
        for part in (b"one;", b"two;", b"three;"):
            await asyncio.sleep(0.005)
            yield part

    return Response.stream(chunks(), content_type="text/plain")


@app.get("/endless")
def endless(request):
    # A feed that sends one event, then waits longer than any client.
    async def events():
        yield "data: first\n\n"
        await asyncio.sleep(3600)
        yield "data: never\n\n"

    return Response.stream(events(), content_type="text/event-stream")


async def plain(request):
    return PlainTextResponse("from starlette")


async def feed(request):
    async def parts():
        for part in (b"s1;", b"s22;"):
            yield part

    return StreamingResponse(parts(), media_type="text/plain")


app.mount("/starlette", Starlette(routes=[Route("/plain", plain), Route("/feed", feed)]))
