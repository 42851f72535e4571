"""Cello peer app for the benchmark, written only against Cello's documented API.

Run directly: ``PORT=8000 .venv/bin/python benchmarks/apps/cello_app.py``.

``BENCH_CELLO_MIDDLEWARE`` (comma-separated: ``cors``, ``request_id``,
``security_headers``, ``compression``, ``static_files``, ``prometheus``) turns on Cello's
native middleware for the middleware tables, so those rows run this very app
and handlers; unset, the app has none. ``static_files`` serves
``BENCH_STATIC_DIR`` under ``/static``.
"""

import asyncio
import os
import sys
from typing import NoReturn

from payloads import BIG, UNAVAILABLE_EXIT_CODE

from cello import App

app = App()


@app.get("/")
def index(request):
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
def user(request):
    return {"id": request.params["id"]}


@app.get("/query")
def query(request):
    return {"a": request.query["a"], "b": request.query["b"]}


@app.post("/echo")
def echo(request):
    return request.json()


@app.get("/big")
def big(request):
    return BIG


# Async variants: the same body, to price the coroutine path separately from
# the sync one. `/async` never suspends; `/async-sleep` yields to the event
# loop once, which is the cheapest real await a handler can do.
@app.get("/async")
async def index_async(request):
    return {"message": "Hello, World!"}


@app.get("/async-sleep")
async def index_async_sleep(request):
    await asyncio.sleep(0)
    return {"message": "Hello, World!"}


MIDDLEWARE = (
    "cors",
    "request_id",
    "security_headers",
    "compression",
    "static_files",
    "prometheus",
)


def unavailable(reason: str) -> NoReturn:
    # The runner reads this exit code as "this build has no such middleware"
    # and shows the row as not available rather than failed.
    print(f"not available: {reason}", flush=True)
    sys.exit(UNAVAILABLE_EXIT_CODE)


def enable_middleware(names: list[str]) -> None:
    """Turns on the named middleware, in the order of MIDDLEWARE."""
    unknown = set(names) - set(MIDDLEWARE)
    if unknown:
        raise ValueError(f"unknown middleware {sorted(unknown)}; known: {', '.join(MIDDLEWARE)}")
    missing = [f"App.enable_{name}()" for name in names if not hasattr(app, f"enable_{name}")]
    if missing:
        unavailable(f"this build of Cello has no {', '.join(missing)}")
    if "cors" in names:
        app.enable_cors()
    if "request_id" in names:
        app.enable_request_id()
    if "security_headers" in names:
        app.enable_security_headers()
    if "compression" in names:
        app.enable_compression()
    if "prometheus" in names:
        app.enable_prometheus()
    if "static_files" in names:
        try:
            from cello import StaticFilesConfig
        except ImportError:
            unavailable("this build of Cello has no cello.StaticFilesConfig")
        app.enable_static_files(StaticFilesConfig(os.environ["BENCH_STATIC_DIR"], prefix="/static"))


enable_middleware([n for n in os.environ.get("BENCH_CELLO_MIDDLEWARE", "").split(",") if n])


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        env="production",
        logs=False,
    )
