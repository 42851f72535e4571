"""Starlette peers for the middleware tables: one ASGI app per table, each
doing what the Cello app does with the matching ``enable_*`` call.

- ``three_middleware``: ``GET /`` behind CORS (Starlette's ``CORSMiddleware``),
  a request ID and security headers, the last two written here as pure ASGI
  middleware (``BaseHTTPMiddleware`` would add a task and a stream per
  request and understate Starlette);
- ``static``: ``StaticFiles`` mounted at ``/static``, serving
  ``BENCH_STATIC_DIR``;
- ``gzip``: ``GET /big`` behind ``GZipMiddleware`` (its defaults:
  ``minimum_size=500``, ``compresslevel=9``).

Serve one with ``uvicorn starlette_middleware_app:gzip`` or
``granian --interface asgi starlette_middleware_app:gzip`` from this directory.
"""

import os
import uuid

from payloads import BIG
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles


class RequestIdMiddleware:
    """``X-Request-ID`` on every HTTP response: the client's own if it sent
    one, else a fresh UUID4; also kept in ``request.state.request_id``."""

    def __init__(self, app, header: str = "x-request-id"):
        self.app = app
        self.header = header.lower().encode("latin-1")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = next((v for k, v in scope["headers"] if k == self.header), None)
        if not request_id:
            request_id = str(uuid.uuid4()).encode("latin-1")
        scope.setdefault("state", {})["request_id"] = request_id.decode("latin-1")

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (self.header, request_id)]
            await send(message)

        await self.app(scope, receive, send_with_id)


# The set Cello's SecurityHeadersConfig() sends by default (docs/API: no HSTS
# unless configured).
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-xss-protection", b"1; mode=block"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every HTTP response."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, send_with_headers)


async def index(request):
    return JSONResponse({"message": "Hello, World!"})


async def big(request):
    return JSONResponse(BIG)


three_middleware = Starlette(
    routes=[Route("/", index)],
    middleware=[
        # Cello's enable_cors() defaults: any origin, these methods, a day's max-age.
        Middleware(
            CORSMiddleware,
            allow_origins=["*"],
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"],
            max_age=86400,
        ),
        Middleware(RequestIdMiddleware),
        Middleware(SecurityHeadersMiddleware),
    ],
)

static = Starlette(
    routes=[
        Mount(
            "/static",
            app=StaticFiles(
                directory=os.environ.get("BENCH_STATIC_DIR", "static"), check_dir=False
            ),
        )
    ]
)

gzip = Starlette(routes=[Route("/big", big)], middleware=[Middleware(GZipMiddleware)])
