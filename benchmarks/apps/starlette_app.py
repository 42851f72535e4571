"""Starlette peer app: the toolkit FastAPI is built on, without FastAPI's
parameter parsing and validation layer.

Serve it with ``uvicorn starlette_app:app`` or
``granian --interface asgi starlette_app:app`` from this directory.
"""

from payloads import BIG
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def index(request):
    return JSONResponse({"message": "Hello, World!"})


async def user(request):
    return JSONResponse({"id": request.path_params["id"]})


async def query(request):
    return JSONResponse({"a": request.query_params["a"], "b": request.query_params["b"]})


async def echo(request):
    return JSONResponse(await request.json())


async def big(request):
    return JSONResponse(BIG)


app = Starlette(
    routes=[
        Route("/", index),
        Route("/users/{id}", user),
        Route("/query", query),
        Route("/echo", echo, methods=["POST"]),
        Route("/big", big),
    ]
)
