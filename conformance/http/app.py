"""The app every conformance request goes to, through every door.

Handlers return only what the request determines (never the peer address or
the Host the transport picked), so any difference between doors is a bug.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import enum
import uuid
from pathlib import Path

import pydantic

from cello import (
    App,
    Blueprint,
    HTTPException,
    RegexConstraint,
    Response,
    UuidConstraint,
)

app = App()
HERE = Path(__file__).parent


@app.get("/")
def index(request):
    return {"message": "Hello, World!"}


@app.get("/users/me")
def me(request):
    return {"route": "me"}


@app.get("/users/{id}")
def user(request):
    return {"route": "user", "id": request.params["id"]}


@app.get("/files/{*path}")
def files(request):
    return {"path": request.params["path"]}


@app.get("/items/{id:int}")
def item(request):
    return {"id": request.get_param_int("id")}


@app.get("/uuid/{id}", constraints={"id": UuidConstraint()})
def by_uuid(request):
    return {"id": request.params["id"]}


@app.get("/slug/{s}", constraints={"s": RegexConstraint("[a-z]+(-[a-z]+)*")})
def slug(request):
    return {"slug": request.params["s"]}


@app.get("/two/{a}/{b}")
def two(request):
    return request.params


@app.route("/multi", methods=["GET", "POST", "PUT"])
def multi(request):
    return {"method": request.method}


@app.put("/things/{id}")
def put_thing(request):
    return {"put": request.params["id"], "body": request.json()}


@app.patch("/things/{id}")
async def patch_thing(request):
    return {"patch": request.params["id"], "body": request.json()}


@app.delete("/things/{id}")
def delete_thing(request):
    return Response.no_content()


@app.options("/things/{id}")
def options_thing(request):
    return Response("", headers={"Allow": "PUT, PATCH, DELETE, OPTIONS"})


@app.head("/explicit-head")
def explicit_head(request):
    return Response("", headers={"X-Head": "explicit"})


@app.get("/explicit-head")
def explicit_head_get(request):
    return {"get": True}


@app.get("/trailing/")
def trailing(request):
    return {"slash": True}


@app.get("/noargs")
def noargs():
    return {"noargs": True}


# -- request data --------------------------------------------------------


@app.route("/echo/query", methods=["GET", "POST"])
def echo_query(request):
    return {
        "pairs": request.query.multi_items(),
        "last": request.query.to_dict(),
        "raw": request.query_string,
    }


@app.get("/echo/typed")
def echo_typed(request):
    return {
        "n": request.get_query_int("n", 0),
        "f": request.get_query_float("f"),
        "b": request.get_query_bool("b", False),
    }


@app.route("/echo/headers", methods=["GET", "POST"])
def echo_headers(request):
    return {
        "x_test": request.headers.get_all("x-test"),
        "content_type": request.content_type,
        "is_json": request.is_json(),
        "is_form": request.is_form(),
        "cookies": request.cookies,
        "accepts_html": request.accepts("text/html"),
        "xhr": request.is_xhr(),
    }


@app.post("/echo/json")
def echo_json(request):
    return {"json": request.json()}


@app.post("/echo/json-async")
async def echo_json_async(request):
    await asyncio.sleep(0)
    return {"json": await request.json_async()}


@app.post("/echo/text")
def echo_text(request):
    return {"text": request.text()}


@app.route("/echo/body", methods=["POST", "PUT", "PATCH", "DELETE"])
def echo_body(request):
    return request.body()


@app.post("/echo/form")
def echo_form(request):
    return {"form": request.form()}


@app.get("/echo/path/{*rest}")
def echo_path(request):
    return {"path": request.path, "rest": request.params["rest"]}


@app.get("/context")
def context(request):
    request.context["a"] = 1
    request.set_context("b", "two")
    return {"items": sorted(request.context.items())}


# -- responses -----------------------------------------------------------


@app.get("/resp/json-status")
def resp_json_status(request):
    return Response.json({"created": True}, status=201, headers={"X-Extra": "1"})


@app.get("/resp/text")
def resp_text(request):
    return Response.text("plain é")


@app.get("/resp/html")
def resp_html(request):
    return Response.html("<h1>hi</h1>")


@app.get("/resp/binary")
def resp_binary(request):
    return Response.binary(bytes(range(256)), content_type="application/x-test")


@app.get("/resp/file")
def resp_file(request):
    return Response.file(HERE / "hello.txt")


@app.get("/resp/redirect")
def resp_redirect(request):
    return Response.redirect("/")


@app.get("/resp/redirect-permanent")
def resp_redirect_permanent(request):
    return Response.redirect("/", permanent=True)


@app.get("/resp/redirect-307")
def resp_redirect_307(request):
    return Response.redirect("/target?x=1", status=307)


@app.get("/resp/no-content")
def resp_no_content(request):
    return Response.no_content()


@app.post("/resp/created")
def resp_created(request):
    return Response.created({"id": 7}, location="/things/7")


@app.get("/resp/xml")
def resp_xml(request):
    return Response.xml({"user": {"name": "A & B", "tags": ["x", "y"]}})


@app.get("/resp/xml-str")
def resp_xml_str(request):
    return Response.xml("<ok/>")


@app.get("/resp/custom")
def resp_custom(request):
    resp = Response("custom body", status=202, content_type="text/x-custom")
    resp.set_header("X-One", "1")
    resp.set_header("x-one", "2")
    resp.add_header("X-Many", "a")
    resp.add_header("X-Many", "b")
    return resp


@app.get("/resp/cookies")
def resp_cookies(request):
    resp = Response.json({"ok": True})
    resp.set_cookie("session", "abc 123;x", max_age=60, httponly=True, secure=True)
    resp.set_cookie("theme", "dark", samesite="strict")
    resp.delete_cookie("old")
    return resp


@app.get("/resp/cookie-expires")
def resp_cookie_expires(request):
    resp = Response.json({"ok": True})
    at = dt.datetime(2030, 5, 6, 9, 8, 7, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    resp.set_cookie("at", "1", expires=at, path="/app", domain="example.com")
    resp.set_cookie("fixed", "2", expires="Sun, 06 Nov 1994 08:49:37 GMT", samesite=None)
    try:
        resp.set_cookie("evil", "3", expires="0; Domain=evil.example")
    except ValueError:
        resp.set_header("x-refused", "expires")
    return resp


@app.get("/resp/stream-sync")
def resp_stream_sync(request):
    def chunks():
        for i in range(3):
            yield f"chunk{i};"

    return Response.stream(chunks(), content_type="text/plain")


@app.get("/resp/stream-async")
def resp_stream_async(request):
    async def chunks():
        for i in range(3):
            await asyncio.sleep(0)
            yield f"a{i};".encode()

    return Response.stream(chunks(), content_type="text/plain")


@app.get("/resp/stream-list")
def resp_stream_list(request):
    return Response.stream(["x", b"y", "z"], content_type="text/plain")


@app.get("/resp/stream-empty")
def resp_stream_empty(request):
    return Response.stream([], content_type="text/plain")


# -- return values -------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int
    label: str = "p"


class UserModel(pydantic.BaseModel):
    name: str
    age: int
    joined: dt.date


RETURNS = {
    "dict": lambda: {"a": 1, "b": [1, 2.5, None, True]},
    "list": lambda: [1, "two", {"three": 3}],
    "str": lambda: "hello",
    "bytes": lambda: b"raw\x00bytes",
    "none": lambda: None,
    "int": lambda: 42,
    "float": lambda: 1.5,
    "bool": lambda: False,
    "tuple2": lambda: ({"created": True}, 201),
    "tuple3": lambda: ({"created": True}, 201, {"X-Tuple": "yes"}),
    "tuple-response": lambda: (Response.text("teapot"), 418),
    "dataclass": lambda: Point(1, 2),
    "pydantic": lambda: UserModel(name="Ada", age=36, joined=dt.date(1843, 1, 1)),
    "datetime": lambda: {"at": dt.datetime(2024, 5, 6, 7, 8, 9, 123, tzinfo=dt.UTC)},
    "uuid": lambda: {"id": uuid.UUID(int=1)},
    "enum": lambda: {"color": Color.RED},
    "unicode": lambda: {"text": 'é😀\n"\\'},
    "floats": lambda: [1e16, 1.5e-7, 0.1, -0.0, float("nan")],
    "empty-dict": lambda: {},
    "empty-list": lambda: [],
    "large": lambda: {"items": [{"id": i, "name": f"item-{i}"} for i in range(2000)]},
}


@app.get("/ret/{kind}")
def ret(request):
    kind = request.params["kind"]
    if kind not in RETURNS:
        raise HTTPException(404, f"no return kind {kind}")
    return RETURNS[kind]()


@app.get("/ret-async/{kind}")
async def ret_async(request):
    await asyncio.sleep(0)
    return RETURNS[request.params["kind"]]()


# -- errors --------------------------------------------------------------


class TeapotError(Exception):
    pass


@app.exception_handler(TeapotError)
def handle_teapot(request, exc):
    return {"teapot": str(exc)}, 418


@app.get("/error/sync")
def error_sync(request):
    raise RuntimeError("sync boom")


@app.get("/error/async")
async def error_async(request):
    await asyncio.sleep(0)
    raise RuntimeError("async boom")


@app.get("/error/http")
def error_http(request):
    raise HTTPException(403, "not for you", headers={"X-Reason": "policy"})


@app.get("/error/teapot")
async def error_teapot(request):
    raise TeapotError("short and stout")


@app.get("/error/bad-return")
def error_bad_return(request):
    return object()


@app.get("/error/unserializable")
def error_unserializable(request):
    return {"s": {1, 2}}


@app.get("/error/header-injection")
def error_header_injection(request):
    return Response.text("x", headers={"X-Evil": "a\r\nSet-Cookie: evil=1"})


# -- blueprints ----------------------------------------------------------

api = Blueprint("/api")
v1 = Blueprint("/v1")


@api.get("/")
def api_root(request):
    return {"bp": "api"}


@v1.get("/users/{id}")
def v1_user(request):
    return {"bp": "v1", "id": request.params["id"]}


api.register(v1)
app.register_blueprint(api)
