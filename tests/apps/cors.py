"""Apps for the CORS and security header tests.

- ``app``: a listed-origins policy with credentials, security headers with
  HSTS, a CSP and a Permissions Policy, a body limit, and a mounted
  Starlette app;
- ``public``: ``enable_cors()`` and ``enable_security_headers()`` with
  their defaults, around a handler and the same Starlette app;
- ``scoped``: a policy on a blueprint only.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from cello import CSP, App, Blueprint, Response, SecurityHeadersConfig
from cello.middleware import CorsConfig


async def _hello(request):
    return JSONResponse({"starlette": request.url.path}, headers={"x-frame-options": "SAMEORIGIN"})


legacy = Starlette(routes=[Route("/hello", _hello)])

app = App()
app.enable_body_limit(16)
app.use(
    CorsConfig(
        origins=["https://example.com", "http://localhost:3000"],
        methods=["GET", "POST", "DELETE"],
        allow_headers=["X-Token"],
        expose_headers=["X-Total"],
        credentials=True,
        max_age=600,
    )
)
app.enable_security_headers(
    SecurityHeadersConfig.secure(
        csp=CSP().default_src("'self'").img_src("'self'", "data:"),
        permissions_policy={"camera": [], "geolocation": ["self"]},
    )
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


@app.get("/framed")
def framed(request):
    return {"framed": True}, 200, {"x-frame-options": "SAMEORIGIN", "vary": "Accept-Language"}


app.mount("/legacy", legacy)

public = App()
public.enable_cors()
public.enable_security_headers()


@public.get("/")
def hello(request):
    return {"hello": "world"}


public.mount("/legacy", legacy)

scoped = App()
api = Blueprint("/api")
api.use(CorsConfig(allow_origins=["https://example.com"]))


@api.get("/data")
def data(request):
    return {"data": True}


@scoped.get("/other")
def other(request):
    return {"other": True}


scoped.register_blueprint(api)
