"""The app most behaviour tests run against: one route per behaviour."""

from __future__ import annotations

import asyncio
import functools
import inspect
from pathlib import Path

import httpx

from cello import (
    App,
    Blueprint,
    HTTPException,
    IntConstraint,
    RegexConstraint,
    Response,
    UuidConstraint,
)
from conformance.http.app import RETURNS as CONFORMANCE_RETURNS

app = App()
STATIC = Path(__file__).with_name("static")

# -- routing -------------------------------------------------------------


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
    return {"route": "files", "path": request.params["path"]}


@app.get("/catch/exact")
def catch_exact(request):
    return {"route": "exact"}


@app.get("/catch/{*rest}")
def catch_all(request):
    return {"route": "catch-all", "rest": request.params["rest"]}


@app.get("/items/{id:int}")
def item(request):
    return {"id": request.get_param_int("id")}


@app.get("/orders/{id}", constraints={"id": IntConstraint()})
def order(request):
    return {"id": int(request.params["id"])}


@app.get("/uuid/{id}", constraints={"id": UuidConstraint()})
def by_uuid(request):
    return {"id": request.params["id"]}


@app.get("/slug/{s}", constraints={"s": RegexConstraint("[a-z]+(-[a-z]+)*")})
def slug(request):
    return {"slug": request.params["s"]}


@app.route("/multi", methods=["GET", "post"])
def multi(request):
    return {"method": request.method}


@app.put("/things/{id}")
def put_thing(request):
    return {"method": "PUT", "id": request.params["id"], "body": request.json()}


@app.patch("/things/{id}")
def patch_thing(request):
    return {"method": "PATCH", "id": request.params["id"]}


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


# -- requests ------------------------------------------------------------


@app.route("/echo", methods=["GET", "POST", "PUT", "DELETE"])
def echo(request):
    return {
        "method": request.method,
        "path": request.path,
        "query": request.query.multi_items(),
        "query_dict": request.query.to_dict(),
        "content_type": request.content_type,
        "content_length": request.content_length,
        "is_json": request.is_json(),
        "is_form": request.is_form(),
        "host": request.host,
        "host_call": request.host(),
        "client_ip": request.client_ip,
        "scheme": request.scheme,
        "url": request.url,
        "user_agent": request.user_agent(),
        "xhr": request.is_xhr(),
        "secure": request.is_secure(),
        "cookies": request.cookies,
        "x_custom": request.headers.get("X-CUSTOM"),
        "x_custom_all": request.headers.get_all("x-custom"),
        "header_via_get": request.get_header("X-Custom", "none"),
        "accepts_json": request.accepts("application/json"),
    }


@app.post("/json")
def post_json(request):
    return {"received": request.json()}


@app.post("/text")
def post_text(request):
    return {"text": request.text()}


@app.post("/body")
def post_body(request):
    return request.body()


@app.post("/form")
def post_form(request):
    return {"form": request.form()}


@app.get("/lazy-body")
def lazy_body(request):
    return {"length": len(request.body())}


@app.get("/ignore-body")
def ignore_body(request):
    return {"ignored": True}


@app.get("/typed-query")
def typed_query(request):
    return {
        "n": request.get_query_int("n", 0),
        "f": request.get_query_float("f"),
        "b": request.get_query_bool("b", False),
        "s": request.get_query_param("s", "default"),
    }


@app.get("/typed-param/{id}")
def typed_param(request):
    return {"id": request.get_param_int("id")}


@app.get("/context")
def context(request):
    request.context["a"] = 1
    request.context.set("b", 2)
    request.set_context("c", 3)
    return {
        "items": sorted(request.context.items()),
        "has_a": request.context.has("a"),
        "via_get": request.get_context("b"),
        "as_string": request.get_context_string("c"),
        "missing": request.get_context("zzz"),
    }


@app.post("/async-json")
async def async_json(request):
    body = await request.json_async()
    return {"received": body}


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
    return Response.binary(b"\x00\x01\xff", content_type="image/x-test")


@app.get("/resp/file")
def resp_file(request):
    return Response.file(STATIC / "hello.txt")


@app.get("/resp/file-named")
def resp_file_named(request):
    return Response.file(STATIC / "hello.txt", filename="résumé.txt")


@app.get("/resp/missing-file")
def resp_missing_file(request):
    return Response.file(STATIC / "nope.txt")


@app.get("/resp/redirect")
def resp_redirect(request):
    return Response.redirect("/")


@app.get("/resp/redirect-permanent")
def resp_redirect_permanent(request):
    return Response.redirect("/", permanent=True)


@app.get("/resp/redirect-307")
def resp_redirect_307(request):
    return Response.redirect("/", status=307)


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


@app.get("/resp/header-injection")
def resp_header_injection(request):
    resp = Response.text("safe")
    rejected = []
    for value in ("a\r\nSet-Cookie: evil=1", "b\nX-Evil: 1", "c\rx", "d\x00e"):
        try:
            resp.set_header("X-Test", value)
        except ValueError as exc:
            rejected.append(str(exc))
    for name in ("Bad Name", "X-Evil:\r\n"):
        try:
            resp.set_header(name, "v")
        except ValueError as exc:
            rejected.append(str(exc))
    return {"rejected": len(rejected)}


@app.get("/resp/injection-unhandled")
def resp_injection_unhandled(request):
    return Response.text("x", headers={"X-Evil": "a\r\nSet-Cookie: evil=1"})


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
            await asyncio.sleep(0.01)
            yield f"a{i};".encode()

    return Response.stream(chunks(), content_type="text/plain")


@app.get("/resp/stream-big")
def resp_stream_big(request):
    block = b"x" * 65536

    async def chunks():
        for _ in range(64):
            yield block

    return Response.stream(chunks())


# Streams record here when their generator is closed (its `finally` ran).
STREAMS_CLOSED: dict[str, bool] = {}


@app.get("/resp/stream-idle")
def resp_stream_idle(request):
    # An event feed that waits far longer than any test between events.
    async def events():
        try:
            yield "data: first\n\n"
            await asyncio.sleep(3600)
            yield "data: never\n\n"
        finally:
            STREAMS_CLOSED["idle"] = True

    return Response.stream(events(), content_type="text/event-stream")


@app.get("/resp/stream-declared/{size:int}")
def resp_stream_declared(request):
    size = request.get_param_int("size")
    # Five bytes declared; `size` bytes streamed, the surplus a whole response.
    body = b"hello" + b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\ninjected"

    async def chunks():
        yield body[:3]
        yield body[3:size]

    return Response.stream(chunks(), headers={"content-length": "5"})


@app.get("/resp/streams-closed")
def resp_streams_closed(request):
    return STREAMS_CLOSED


@app.get("/resp/stream-fails")
def resp_stream_fails(request):
    async def chunks():
        yield b"first;"
        raise RuntimeError("generator broke")

    return Response.stream(chunks())


# -- return values -------------------------------------------------------


# The conformance app's table of return values (every kind a handler may
# return), plus the ones that cannot be written as JSON.
RETURNS = {
    **CONFORMANCE_RETURNS,
    "unserializable": lambda: {"s": {1, 2}},
    "huge-int": lambda: {"n": 2**70},
    "nonstr-key": lambda: {1: "x"},
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


# -- handlers: async behaviour ------------------------------------------


@app.get("/async/no-await")
async def async_no_await(request):
    return {"async": True}


@app.get("/async/sleep")
async def async_sleep(request):
    await asyncio.sleep(0.01)
    return {"slept": True}


@app.get("/async/current-task")
async def async_current_task(request):
    before = asyncio.current_task()
    await asyncio.sleep(0)
    after = asyncio.current_task()
    return {"has_task": before is not None, "same_task": before is after}


@app.get("/async/timeout")
async def async_timeout(request):
    try:
        async with asyncio.timeout(0.01):
            await asyncio.sleep(5)
    except TimeoutError:
        return {"timed_out": True}
    return {"timed_out": False}


# Callables that return an awaitable without being a plain ``async def``.


async def _kind(request, kind: str):
    await asyncio.sleep(0)
    return {"kind": kind}


app.get("/kinds/partial")(functools.partial(_kind, kind="partial"))


class AwaitingCall:
    def __init__(self, kind: str) -> None:
        self.kind = kind

    async def __call__(self, request):
        await asyncio.sleep(0)
        return {"kind": self.kind}


app.get("/kinds/callable")(AwaitingCall("callable"))
app.get("/kinds/partial-callable")(functools.partial(AwaitingCall("partial-callable")))

if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+

    @app.get("/kinds/marked")
    @inspect.markcoroutinefunction
    def marked(request):
        # Its own code has no await; the coroutine it returns does.
        return _kind(request, "marked")

    class MarkedCall:
        @inspect.markcoroutinefunction
        def __call__(self, request):
            return _kind(request, "marked-callable")

    app.get("/kinds/marked-callable")(MarkedCall())


RENDEZVOUS: dict[str, asyncio.Event] = {}


@app.get("/async/wait/{key}")
async def async_wait(request):
    event = RENDEZVOUS.setdefault(request.params["key"], asyncio.Event())
    await event.wait()
    return {"released": True}


@app.get("/async/release/{key}")
async def async_release(request):
    RENDEZVOUS.setdefault(request.params["key"], asyncio.Event()).set()
    return {"released": True}


@app.get("/async/httpx")
async def async_httpx(request):
    async with httpx.AsyncClient(base_url=f"http://{request.host}") as client:
        response = await client.get("/")
    return {"status": response.status_code, "body": response.json()}


# -- errors --------------------------------------------------------------


class TeapotError(Exception):
    pass


class SubTeapotError(TeapotError):
    pass


class AsyncHandledError(Exception):
    pass


class BrokenHandlerError(Exception):
    pass


@app.exception_handler(TeapotError)
def handle_teapot(request, exc):
    return Response.json({"teapot": str(exc), "type": type(exc).__name__}, status=418)


@app.exception_handler(AsyncHandledError)
async def handle_async(request, exc):
    await asyncio.sleep(0)
    return {"handled": "async"}, 409


@app.exception_handler(BrokenHandlerError)
def handle_broken(request, exc):
    raise RuntimeError("the exception handler itself failed")


@app.get("/error/sync")
def error_sync(request):
    raise RuntimeError("sync boom")


@app.get("/error/async")
async def error_async(request):
    await asyncio.sleep(0)
    raise RuntimeError("async boom")


@app.get("/error/async-immediate")
async def error_async_immediate(request):
    raise RuntimeError("immediate boom")


@app.get("/error/exit-sync")
def error_exit_sync(request):
    raise SystemExit(request.query.get("code", "3"))


@app.get("/error/exit-async")
async def error_exit_async(request):
    await asyncio.sleep(0)
    raise SystemExit(3)


@app.get("/error/exit-async-immediate")
async def error_exit_async_immediate(request):
    raise SystemExit(3)


@app.get("/error/interrupt-async")
async def error_interrupt_async(request):
    await asyncio.sleep(0)
    raise KeyboardInterrupt


class ExitInHandlerError(Exception):
    pass


class AsyncExitInHandlerError(Exception):
    pass


@app.exception_handler(ExitInHandlerError)
def handle_by_exiting(request, exc):
    raise SystemExit(3)


@app.exception_handler(AsyncExitInHandlerError)
async def handle_by_interrupting(request, exc):
    await asyncio.sleep(0)
    raise KeyboardInterrupt


@app.get("/error/exit-in-handler")
def error_exit_in_handler(request):
    raise ExitInHandlerError()


@app.get("/error/exit-in-async-handler")
async def error_exit_in_async_handler(request):
    await asyncio.sleep(0)
    raise AsyncExitInHandlerError()


@app.get("/error/teapot")
def error_teapot(request):
    raise SubTeapotError("short and stout")


@app.get("/error/async-handled")
async def error_async_handled(request):
    raise AsyncHandledError()


@app.get("/error/sync-async-handled")
def error_sync_async_handled(request):
    raise AsyncHandledError()


@app.get("/error/broken-handler")
def error_broken_handler(request):
    raise BrokenHandlerError()


@app.get("/error/http")
def error_http(request):
    raise HTTPException(403, "not for you", headers={"X-Reason": "policy"})


@app.get("/error/bad-return")
def error_bad_return(request):
    return object()


# -- blueprints ----------------------------------------------------------

api = Blueprint("/api")
v1 = Blueprint("v1", name="version-one")


@api.get("/")
def api_root(request):
    return {"bp": "api"}


@api.post("/items")
def api_items(request):
    return {"bp": "api", "created": request.json()}


@v1.get("/users/{id}")
def v1_user(request):
    return {"bp": "v1", "id": request.params["id"]}


@v1.delete("/users/{id}")
async def v1_delete(request):
    return {"bp": "v1", "deleted": request.params["id"]}


api.register(v1)
app.register_blueprint(api)


# A finished request object that nobody kept may be reused for the next
# request: these handlers fill every cache a request has, keep some requests,
# and look at what a fresh one sees.
kept_requests: list = []


def _fill(request) -> dict:
    request.set_context("user", request.params["item"])
    return {
        "json": request.json(),
        "query": dict(request.query),
        "mark": request.headers.get("x-mark"),
        "cookies": request.cookies,
        "params": request.params,
        "user": request.get_context("user"),
    }


@app.post("/reuse/fill/{item}")
def reuse_fill(request):
    return _fill(request)


@app.post("/reuse/fill-async/{item}")
async def reuse_fill_async(request):
    return _fill(request)


@app.get("/reuse/peek")
def reuse_peek(request):
    return {
        "body": request.body().decode(),
        "query": dict(request.query),
        "mark": request.headers.get("x-mark"),
        "cookies": request.cookies,
        "params": request.params,
        "user": request.get_context("user"),
        "path": request.path,
    }


@app.get("/reuse/keep")
def reuse_keep(request):
    request.set_context("n", request.query["n"])
    kept_requests.append(request)
    return {"kept": len(kept_requests)}


@app.get("/reuse/kept")
def reuse_kept(request):
    return [
        {
            "path": r.path,
            "query": dict(r.query),
            "mark": r.headers.get("x-mark"),
            "n": r.get_context("n"),
        }
        for r in kept_requests
    ]
