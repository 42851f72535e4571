"""The HTTPS / HTTP/2 test app (tests/test_tls.py): Cello handlers that echo
what the request knows of its transport, a mounted Starlette app that
echoes its ASGI scope, a WebSocket echo and a streamed response."""

from __future__ import annotations

import os

from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from cello import App, Response, TimeoutConfig

app = App()


@app.get("/")
def index(request):
    return {
        "scheme": request.scheme,
        "url": request.url,
        "http_version": request.http_version,
        "is_secure": request.is_secure(),
        "client_cert": request.client_cert,
        "tls": request.tls,
    }


@app.get("/pid")
def pid(request):
    return {"pid": os.getpid()}


@app.post("/echo")
def echo(request):
    return Response(request.body(), content_type="application/octet-stream")


@app.get("/big")
def big(request):
    return Response(b"x" * 3_000_000, content_type="application/octet-stream")


@app.get("/stream")
async def stream(request):
    async def chunks():
        for i in range(5):
            yield f"chunk {i}\n".encode()

    return Response.stream(chunks(), content_type="text/plain")


@app.websocket("/ws")
async def ws_echo(ws):
    while True:
        msg = await ws.recv()
        if msg is None:
            break
        await ws.send_text(f"echo: {msg.text}")


async def scope_echo(request: StarletteRequest) -> JSONResponse:
    scope = request.scope
    tls = scope.get("extensions", {}).get("tls")
    return JSONResponse(
        {
            "scheme": scope["scheme"],
            "http_version": scope["http_version"],
            "url": str(request.url),
            "tls": tls,
        }
    )


app.mount("/asgi", Starlette(routes=[Route("/scope", scope_echo)]))

# `cello serve tests.apps.tls:asgi_app` serves this one as a foreign app.
asgi_app = Starlette(routes=[Route("/scope", scope_echo)])

# tests/test_tls.py shortens the header-read timeout (which also bounds a
# TLS handshake) through the environment.
if os.environ.get("TLS_TEST_READ_HEADER"):
    RUN_OPTIONS = {"timeout": TimeoutConfig(read_header=float(os.environ["TLS_TEST_READ_HEADER"]))}
