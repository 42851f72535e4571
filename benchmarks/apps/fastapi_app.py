"""FastAPI peer app for the benchmark, served by uvicorn.

Run from this directory: ``uvicorn --no-access-log fastapi_app:app``.
Plain ``def`` handlers would be sent to a thread pool by FastAPI, which is
not how anyone writing a fast FastAPI endpoint does it, so these are
``async def`` (FastAPI's own fast path).
"""

from fastapi import FastAPI

app = FastAPI()


@app.get("/")
async def index():
    return {"message": "Hello, World!"}


@app.get("/users/{id}")
async def user(id: str):
    return {"id": id}
