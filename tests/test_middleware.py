"""Middleware: the order it runs in, its hooks, and how it fails, through
both doors (the native server and the app called as ASGI)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from cello import App, Blueprint
from cello.middleware import RequestId
from cello.testing import TestClient
from tests.live import LiveServer


@pytest.fixture(scope="module")
def middleware_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.middleware:app", "--env", "production") as live:
        yield live


@pytest.fixture
def mw(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    if door == "native":
        server: LiveServer = request.getfixturevalue("middleware_server")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            yield c
    else:
        from tests.apps.middleware import app

        with TestClient(app) as c:
            yield c


@pytest.mark.parametrize("path", ["/", "/async"])
def test_python_middleware_runs_in_registration_order(mw, path):
    response = mw.get(path)
    assert response.status_code == 200
    assert response.json()["trail"] == ["outer", "before", "inner"]
    # On the way out, the innermost runs first.
    assert response.headers.get_list("x-trail") == ["inner", "outer"]
    assert response.headers["x-after"] == "200"


def test_native_layers_run_outside_python_middleware(mw):
    response = mw.get("/", headers={"x-request-id": "abc-123"})
    assert response.json()["request_id"] == "abc-123"
    assert response.headers["x-request-id"] == "abc-123"


def test_a_before_request_hook_can_answer_and_outer_middleware_sees_it(mw):
    response = mw.get("/short")
    assert response.status_code == 200
    assert response.json() == {"short": True, "trail": ["outer", "before"]}
    assert response.headers.get_list("x-trail") == ["outer"]
    assert "x-after" not in response.headers  # registered inside the hook that answered
    assert uuid.UUID(response.headers["x-request-id"]).version == 4


def test_the_framework_404_and_405_pass_through_middleware(mw):
    missing = mw.get("/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "no route for GET /nope"
    assert missing.headers.get_list("x-trail") == ["inner", "outer"]
    assert missing.headers["x-after"] == "404"
    wrong = mw.post("/")
    assert wrong.status_code == 405
    assert wrong.headers["allow"] == "GET, HEAD"
    assert wrong.headers["x-after"] == "405"


def test_a_handler_exception_reaches_middleware_as_its_500(mw):
    response = mw.get("/fails")
    assert response.status_code == 500
    assert response.json()["detail"] == "The server encountered an unexpected error."
    assert response.headers["x-after"] == "500"


def test_a_middleware_exception_is_a_500_problem(mw):
    response = mw.get("/fails-in-middleware")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert "x-request-id" in response.headers


def test_call_next_twice_is_an_error(mw):
    assert mw.get("/calls-twice").status_code == 500


def test_head_and_streams_pass_through_middleware(mw):
    head = mw.head("/")
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["x-after"] == "200"
    stream = mw.get("/stream")
    assert stream.content == b"abc"
    assert stream.headers.get_list("x-trail") == ["inner", "outer"]


def test_a_blueprint_layer_covers_its_prefix_only(mw):
    traced = mw.get("/traced/here", headers={"x-trace-id": "t-1"})
    assert traced.json() == {"trace": "t-1"}
    assert traced.headers["x-trace-id"] == "t-1"
    # Its own missing paths too, but nothing outside it.
    assert "x-trace-id" in mw.get("/traced/nope").headers
    assert "x-trace-id" not in mw.get("/").headers


def test_a_sync_function_is_refused_as_http_middleware():
    app = App()
    with pytest.raises(TypeError, match="async def mw"):

        @app.middleware("http")
        def sync(request, call_next):
            return call_next(request)

    with pytest.raises(TypeError, match="async def mw"):
        app.use(object())
    with pytest.raises(ValueError, match="unknown middleware type"):
        app.middleware("websocket")


def test_request_id_rejects_a_bad_header_name():
    with pytest.raises(ValueError, match="invalid header name"):
        App().use(RequestId("bad header"))
    with pytest.raises(ValueError, match="non-empty"):
        RequestId("")


def test_exception_handler_rejects_what_is_neither_a_class_nor_a_status():
    app = App()
    with pytest.raises(TypeError):
        app.exception_handler("404")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4xx or 5xx"):
        app.exception_handler(200)


def test_a_status_handler_answers_handlers_http_exceptions_and_the_framework_404():
    from cello import HTTPException

    app = App()

    @app.exception_handler(404)
    def missing(request, exc):
        return {"custom": exc.detail}, 404

    @app.get("/gone")
    def gone(request):
        raise HTTPException(404, "it left")

    with TestClient(app) as client:
        assert client.get("/gone").json() == {"custom": "it left"}
        assert client.get("/never").json() == {"custom": "no route for GET /never"}


def test_nested_blueprint_middleware_gets_the_full_prefix():
    app, outer_bp, inner_bp = App(), Blueprint("/a"), Blueprint("/b")

    @inner_bp.middleware("http")
    async def tag(request, call_next):
        response = await call_next(request)
        response.set_header("x-tag", "b")
        return response

    @inner_bp.get("/x")
    def x(request):
        return {}

    @app.get("/b/x")
    def elsewhere(request):
        return {}

    outer_bp.register(inner_bp)
    app.register_blueprint(outer_bp)
    with TestClient(app) as client:
        assert client.get("/a/b/x").headers["x-tag"] == "b"
        assert "x-tag" not in client.get("/b/x").headers


def test_cancelling_the_asgi_call_cancels_the_handler():
    app = App()
    seen: list[str] = []
    started = asyncio.Event()

    @app.get("/slow")
    async def slow(request):
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return {}

    async def scenario() -> None:
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": "/slow", "raw_path": b"/slow",
            "query_string": b"", "root_path": "", "headers": [(b"host", b"t")],
            "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
        }  # fmt: skip

        async def receive():
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message):
            pass

        call = asyncio.create_task(app(scope, receive, send))
        await asyncio.wait_for(started.wait(), 10)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0)

    asyncio.run(scenario())
    assert seen == ["cancelled"]


def test_middleware_added_after_a_first_asgi_call_applies_to_the_next():
    app = App()

    @app.get("/")
    def index(request):
        return {}

    with TestClient(app) as client:
        assert "x-request-id" not in client.get("/").headers
        app.enable_request_id()
        assert "x-request-id" in client.get("/").headers
