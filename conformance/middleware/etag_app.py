"""The app behind the ETag conformance cases: generated and handler-set
tags, a dated stream, and a mounted Starlette app, so every door shows the
same validators and the same 304s."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cello import App, Response

app = App()
app.enable_etag()

MODIFIED = "Tue, 01 Jul 2025 12:00:00 GMT"


@app.get("/doc")
def doc(request):
    return Response.text(
        "conformance document", headers={"Cache-Control": "max-age=60", "Vary": "Accept"}
    )


@app.get("/tagged")
def tagged(request):
    return Response.text("versioned", headers={"ETag": 'W/"v1"'})


@app.get("/dated")
def dated(request):
    async def chunks():
        yield b"dated "
        yield b"stream"

    return Response.stream(chunks(), content_type="text/plain", headers={"Last-Modified": MODIFIED})


@app.post("/doc")
def post_doc(request):
    return Response.text("posted")


async def plain(request):
    return PlainTextResponse("from starlette", headers={"Cache-Control": "no-cache"})


app.mount("/starlette", Starlette(routes=[Route("/plain", plain)]))
