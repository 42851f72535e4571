"""The app of the HTTP/3 tests: served over TCP and HTTP/3 with the
certificate named by CELLO_TEST_CERT / CELLO_TEST_KEY, with Cello handlers
and a Starlette app mounted at /starlette."""

from __future__ import annotations

import asyncio
import os

from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from cello import App, Http3Config, LimitsConfig, Response, SseEvent, TlsConfig

app = App()


@app.get("/")
def index(request):
    return {"hello": "h3"}


@app.get("/pid")
def pid(request):
    return {"pid": os.getpid()}


@app.get("/whoami")
def whoami(request):
    return {
        "http_version": request.http_version,
        "scheme": request.scheme,
        "host": request.headers.get("host"),
        "path": request.path,
        "query": request.query_string,
    }


@app.post("/echo")
def echo(request):
    body = request.body()
    return Response(body, headers={"x-length": str(len(body))})


@app.get("/large")
def large(request):
    return Response(b"0123456789abcdef" * 65536)  # 1 MiB


@app.get("/slow")
async def slow(request):
    await asyncio.sleep(float(request.query.get("s", "1")))
    return {"slept": True}


@app.get("/events")
def events(request):
    async def source():
        for i in range(3):
            yield SseEvent(f"tick {i}", id=str(i))
            await asyncio.sleep(0.05)

    return Response.sse(source(), keepalive=None)


# Set when the /forever stream's source is closed (its client left).
forever_closed = {"value": False}


@app.get("/forever")
def forever(request):
    async def source():
        try:
            while True:
                yield SseEvent("tick")
                await asyncio.sleep(0.05)
        finally:
            forever_closed["value"] = True

    return Response.sse(source(), keepalive=None)


@app.get("/forever/closed")
def forever_is_closed(request):
    return {"closed": forever_closed["value"]}


async def scope_view(request: StarletteRequest) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "http_version": request.scope["http_version"],
            "scheme": request.scope["scheme"],
            "path": request.scope["path"],
            "root_path": request.scope["root_path"],
            "host": request.headers.get("host"),
            "body_length": len(body),
        }
    )


starlette = Starlette(routes=[Route("/scope", scope_view, methods=["GET", "POST"])])
app.mount("/starlette", starlette)

RUN_OPTIONS = {
    "tls": TlsConfig(
        cert_path=os.environ["CELLO_TEST_CERT"], key_path=os.environ["CELLO_TEST_KEY"]
    ),
    "http3": Http3Config(
        enabled=True, max_idle_timeout=10, enable_0rtt=os.environ.get("CELLO_TEST_0RTT") == "1"
    ),
    "limits": LimitsConfig(max_body_size=100_000),
}
