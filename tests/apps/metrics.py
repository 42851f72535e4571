"""An app with Prometheus metrics: templated routes, a body echo, a stream,
a request that waits to be released, and a mounted Starlette app."""

import asyncio

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cello import App, Response

app = App()
app.enable_prometheus()
app.enable_openapi()

released = asyncio.Event()


@app.get("/")
def index(request):
    return {"ok": True}


@app.get("/users/{id:int}")
def user(request):
    return {"id": request.params["id"]}


@app.post("/echo")
def echo(request):
    return Response.text(request.text())


@app.get("/stream")
def stream(request):
    async def chunks():
        for part in (b"one;", b"two;", b"three;"):
            yield part

    return Response.stream(chunks(), content_type="text/plain")


@app.get("/slow")
async def slow(request):
    await asyncio.sleep(0.03)
    return {"slept": True}


@app.get("/wait")
async def wait(request):
    await released.wait()
    released.clear()
    return {"released": True}


@app.get("/release")
def release(request):
    released.set()
    return {}


@app.get("/fails")
def fails(request):
    raise RuntimeError("boom")


async def plain(request):
    return PlainTextResponse("from starlette")


app.mount("/star", Starlette(routes=[Route("/plain", plain)]))
