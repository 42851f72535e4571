"""BlackSheep peer app, served by uvicorn like most BlackSheep deployments.

Run from this directory: ``uvicorn blacksheep_app:app``. Handlers return
``json(...)`` explicitly, BlackSheep's documented way to answer with JSON.
"""

from blacksheep import Application, Request, get, json, post
from payloads import BIG

app = Application()


@get("/")
async def index():
    return json({"message": "Hello, World!"})


@get("/users/{id}")
async def user(id: str):
    return json({"id": id})


@get("/query")
async def query(request: Request):
    return json({"a": request.query["a"][0], "b": request.query["b"][0]})


@post("/echo")
async def echo(request: Request):
    return json(await request.json())


@get("/big")
async def big():
    return json(BIG)
