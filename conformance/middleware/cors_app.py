"""The app behind the CORS and security header conformance cases: a listed,
credentialed CORS policy and security headers with HSTS and a CSP, around
handlers, the framework's refusals and a mounted Starlette app."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from cello import CSP, App, Response, SecurityHeadersConfig


async def _hello(request):
    return JSONResponse({"starlette": request.url.path})


async def _framed(request):
    return PlainTextResponse("framed", headers={"x-frame-options": "SAMEORIGIN", "vary": "Cookie"})


legacy = Starlette(routes=[Route("/hello", _hello), Route("/framed", _framed)])

app = App()
app.enable_body_limit(16)
app.enable_cors(
    ["https://example.com"],
    allow_headers=["X-Token"],
    expose_headers=["X-Total"],
    credentials=True,
    max_age=600,
)
app.enable_security_headers(
    SecurityHeadersConfig.secure(csp=CSP(default_src=["'self'"], frame_ancestors=["'none'"]))
)


@app.get("/items")
def items(request):
    return Response.json({"items": [1, 2]}, headers={"x-total": "2"})


@app.post("/items")
def add_item(request):
    return {"size": len(request.body())}, 201


@app.options("/ping")
def ping(request):
    return {"options": True}


app.mount("/legacy", legacy)
