"""FastAPI peer app for the benchmark, served by uvicorn.

Run from this directory: ``uvicorn --no-access-log fastapi_app:app``.
Plain ``def`` handlers would be sent to a thread pool by FastAPI, which is
not how anyone writing a fast FastAPI endpoint does it, so these are
``async def`` (FastAPI's own fast path).
"""

from fastapi import FastAPI, Request
from payloads import BIG

app = FastAPI()


@app.get("/")
async def index():
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
async def user(id: str):
    return {"id": id}


@app.get("/query")
async def query(a: str, b: str):
    return {"a": a, "b": b}


# The raw request rather than a pydantic model: the endpoint echoes whatever
# JSON it is given, as the other apps do, without a validation schema.
@app.post("/echo")
async def echo(request: Request):
    return await request.json()


@app.get("/big")
async def big():
    return BIG
