"""A Starlette app for door-3 conformance: routing, mounts, streaming,
lifespan state, exception handlers and raw request streaming."""

from __future__ import annotations

import asyncio
import contextlib

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.routing import Mount, Route


@contextlib.asynccontextmanager
async def lifespan(app: Starlette):
    yield {"greeting": "hello"}


async def home(request: Request) -> JSONResponse:
    return JSONResponse({"framework": "starlette", "greeting": request.state.greeting})


async def user(request: Request) -> JSONResponse:
    return JSONResponse({"user": request.path_params["name"]})


async def echo(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse(
        {
            "method": request.method,
            "size": len(body),
            "query": sorted(request.query_params.multi_items()),
            "headers": request.headers.getlist("x-test"),
        }
    )


async def stream(request: Request) -> StreamingResponse:
    async def chunks():
        for i in range(3):
            yield f"s{i};"

    return StreamingResponse(chunks(), media_type="text/plain")


# The names of the ticking streams whose generator was closed.
CLOSED: list[str] = []


async def ticking(request: Request) -> StreamingResponse:
    """A feed that waits between chunks, as a server-sent event stream does."""
    name = request.query_params["name"]

    async def ticks():
        try:
            while True:
                yield "tick\n"
                await asyncio.sleep(0.05)
        finally:
            CLOSED.append(name)

    return StreamingResponse(ticks(), media_type="text/event-stream")


async def closed(request: Request) -> JSONResponse:
    return JSONResponse(CLOSED)


async def url(request: Request) -> JSONResponse:
    return JSONResponse(
        {"user_url": str(request.url_for("user", name="ada")), "root": request.scope["root_path"]}
    )


async def forbidden(request: Request) -> JSONResponse:
    raise HTTPException(status_code=403, detail="go away")


async def inner(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"inner {request.url.path}")


app = Starlette(
    routes=[
        Route("/", home),
        Route("/users/{name}", user, name="user"),
        Route("/echo", echo, methods=["GET", "POST", "PUT"]),
        Route("/stream", stream),
        Route("/ticking", ticking),
        Route("/closed", closed),
        Route("/url", url),
        Route("/forbidden", forbidden),
        Mount("/sub", routes=[Route("/inner", inner)]),
    ],
    lifespan=lifespan,
)
