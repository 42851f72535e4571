"""An app for the middleware tests: Python middleware in a known order,
hooks, a scoped native layer, and the ways a middleware can go wrong."""

from __future__ import annotations

import asyncio

from cello import App, Blueprint, Response
from cello.middleware import RequestId

app = App()
app.enable_request_id()


@app.middleware("http")
async def outer(request, call_next):
    request.context["trail"] = ["outer"]
    response = await call_next(request)
    response.add_header("x-trail", "outer")
    return response


@app.before_request
async def early(request):
    request.context["trail"].append("before")
    if request.path == "/short":
        return {"short": True, "trail": request.context["trail"]}
    return None


@app.use
async def inner(request, call_next):
    request.context["trail"].append("inner")
    if request.path == "/fails-in-middleware":
        raise RuntimeError("middleware broke")
    if request.path == "/calls-twice":
        await call_next(request)
        return await call_next(request)
    response = await call_next(request)
    response.add_header("x-trail", "inner")
    return response


@app.after_request
def stamp(request, response):
    response.set_header("x-after", str(response.status))


@app.get("/")
def index(request):
    return {"trail": request.context["trail"], "request_id": request.context["request_id"]}


@app.get("/async")
async def index_async(request):
    await asyncio.sleep(0)
    return {"trail": request.context["trail"], "request_id": request.context["request_id"]}


@app.get("/fails")
def fails(request):
    raise ValueError("handler broke")


@app.get("/stream")
def stream(request):
    return Response.stream(iter([b"a", b"b", b"c"]), content_type="text/plain")


@app.get("/calls-twice")
def calls_twice(request):
    return {"twice": True}


@app.get("/fails-in-middleware")
def fails_in_middleware(request):
    return {"unreachable": True}


traced = Blueprint("/traced")
traced.use(RequestId("X-Trace-ID"))


@traced.get("/here")
def here(request):
    return {"trace": request.context["request_id"]}


app.register_blueprint(traced)
