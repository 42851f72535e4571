"""Cello peer app for the benchmark, written only against Cello's documented API.

Run directly: ``PORT=8000 .venv/bin/python benchmarks/apps/cello_app.py``.
"""

import asyncio
import os

from payloads import BIG

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


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        env="production",
        logs=False,
    )
