"""An app with ETags and conditional requests: whole bodies, tags and dates
set by handlers, streams, statuses that are not 200, and a mounted Starlette
app (a whole body, and a file whose ETag and Last-Modified Starlette sets)."""

from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import FileResponse, PlainTextResponse
from starlette.routing import Route

from cello import App, Response

app = App()
app.enable_request_id()
app.enable_etag()

MODIFIED = "Tue, 01 Jul 2025 12:00:00 GMT"
CACHE_HEADERS = {
    "Cache-Control": "max-age=60",
    "Vary": "Accept",
    "Expires": "Tue, 01 Jul 2025 12:01:00 GMT",
    "Content-Location": "/doc",
    "Content-Language": "en",
    "Set-Cookie": "seen=1",
}


@app.get("/doc")
def doc(request):
    return Response.text("hello etag", headers=CACHE_HEADERS)


@app.post("/doc")
def post_doc(request):
    return Response.text("hello etag")


@app.get("/other")
def other(request):
    return Response.text("hello etah")


@app.get("/tagged")
def tagged(request):
    return Response.text("versioned", headers={"ETag": '"v1"'})


@app.get("/weak-tagged")
def weak_tagged(request):
    return Response.text("versioned", headers={"ETag": 'W/"w1"'})


@app.get("/modified")
def modified(request):
    async def chunks():
        yield b"dated "
        yield b"stream"

    return Response.stream(chunks(), content_type="text/plain", headers={"Last-Modified": MODIFIED})


@app.get("/stream")
def stream(request):
    async def chunks():
        yield b"a"
        yield b"b"

    return Response.stream(chunks(), content_type="text/plain")


@app.get("/stream-tagged")
def stream_tagged(request):
    async def chunks():
        yield b"tagged "
        yield b"stream"

    return Response.stream(chunks(), content_type="text/plain", headers={"ETag": '"s1"'})


@app.get("/created")
def created(request):
    return {"created": True}, 201


@app.get("/bad")
def bad(request):
    return {"error": "bad"}, 400


STATIC = Path(__file__).parent / "static" / "hello.txt"


async def plain(request):
    return PlainTextResponse("from starlette")


async def file(request):
    return FileResponse(STATIC)


app.mount("/starlette", Starlette(routes=[Route("/plain", plain), Route("/file", file)]))
