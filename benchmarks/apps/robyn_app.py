"""Robyn peer app (Rust runtime, Python handlers), run from its own venv.

Run from this directory: ``PORT=8000 python robyn_app.py --processes 1 --workers 1``.
Robyn turns a returned dict into a JSON response; the list of /big is
serialized with ``jsonify``, its helper, into an explicit JSON ``Response``.
"""

import os

from payloads import BIG
from robyn import Request, Response, Robyn, jsonify

app = Robyn(__file__)
JSON_HEADERS = {"Content-Type": "application/json"}


@app.get("/")
def index(request: Request):
    return {"message": "Hello, World!"}


@app.get("/users/:id")
def user(request: Request):
    return {"id": request.path_params["id"]}


@app.get("/query")
def query(request: Request):
    return {"a": request.query_params.get("a", None), "b": request.query_params.get("b", None)}


@app.post("/echo")
def echo(request: Request):
    return request.json()


@app.get("/big")
def big(request: Request):
    return Response(200, JSON_HEADERS, jsonify(BIG))


if __name__ == "__main__":
    app.start(host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
