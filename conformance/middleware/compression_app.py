"""The app behind the compression conformance cases: whole and streamed
bodies, server-sent events, bodies that are left alone, the framework's
404, and a mounted Starlette app, all behind ``app.enable_compression()``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from cello import App, Response

ROWS = [{"id": i, "name": f"row {i}", "even": i % 2 == 0} for i in range(200)]
PAGE = "<ul>" + "".join(f"<li>item {i}</li>" for i in range(300)) + "</ul>"
LINES = [f"{i:04d} {'streamed text ' * 8}\n" for i in range(40)]
EVENTS = [f'id: {i}\nevent: tick\ndata: {{"n": {i}}}\n\n' for i in range(20)]

app = App()
app.enable_compression()


@app.get("/json")
def rows():
    return {"rows": ROWS}


@app.get("/html")
def page():
    return Response.html(PAGE, headers={"etag": '"page-1"', "vary": "Cookie"})


@app.get("/small")
def small():
    return {"ok": True}


@app.get("/png")
def png():
    return Response.binary(b"\x89PNG\r\n\x1a\n" + bytes(3000), content_type="image/png")


@app.get("/stream")
def stream():
    return Response.stream(iter(LINES), content_type="text/plain")


@app.get("/events")
def events():
    async def source():
        for event in EVENTS:
            yield event

    return Response.stream(source(), content_type="text/event-stream")


async def starlette_rows(request):
    return JSONResponse({"rows": ROWS})


async def starlette_lines(request):
    async def lines():
        for line in LINES:
            yield line

    return StreamingResponse(lines(), media_type="text/plain")


app.mount(
    "/star",
    Starlette(routes=[Route("/json", starlette_rows), Route("/stream", starlette_lines)]),
)
