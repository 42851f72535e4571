"""Server-sent events: the wire format of ``SseEvent``, ``SseStream``,
``Response.sse`` over every kind of source, keepalive comments,
``Last-Event-ID``, and the source's cleanup when the client leaves, through
the native server (door 1), the app called as ASGI in process and under
uvicorn (door 2)."""

from __future__ import annotations

import json
import socket
import time
import zlib
from collections.abc import Iterator

import httpx
import pytest

import cello
import cello.sse
from cello import Response, SseEvent, SseStream
from cello.testing import TestClient
from conformance.doors import UvicornDoor
from tests.live import LiveServer

SSE_TYPE = "text/event-stream; charset=utf-8"


def parse(stream: str) -> list[dict[str, str]]:
    """Events as a browser's EventSource dispatches them (WHATWG HTML,
    "Interpreting an event stream"), with their id, type and retry."""
    events, data, fields = [], [], {}
    for line in stream.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line:
            if data:
                events.append({**fields, "data": "\n".join(data)})
            data, fields = [], {k: v for k, v in fields.items() if k == "id"}
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            data.append(value)
        elif name in ("id", "event", "retry"):
            fields[name] = value
    return events


# -- the wire format ---------------------------------------------------------------


def test_fields_come_in_the_documented_order():
    event = SseEvent("hello", event="greeting", id="7", retry=1500)
    assert event.encode() == b"id: 7\nevent: greeting\nretry: 1500\ndata: hello\n\n"
    assert bytes(event) == event.encode()


@pytest.mark.parametrize(
    ("data", "lines"),
    [
        ("one", ["one"]),
        ("a\nb", ["a", "b"]),
        ("a\r\nb\rc\nd", ["a", "b", "c", "d"]),
        ("trailing\n", ["trailing", ""]),
        ("", [""]),
        ("\u2028not a line end\x0b", ["\u2028not a line end\x0b"]),
    ],
)
def test_each_line_of_data_is_a_data_line(data, lines):
    wire = SseEvent(data).encode().decode()
    assert wire == "".join(f"data: {line}\n" for line in lines) + "\n"
    # What a client rebuilds: the lines joined with LF.
    assert parse(wire) == [{"data": "\n".join(lines)}]


def test_unicode_is_sent_as_utf8():
    wire = SseEvent("café ☕ 𝄞", event="ünïcode", id="é1").encode()
    assert wire == "id: é1\nevent: ünïcode\ndata: café ☕ 𝄞\n\n".encode()
    assert parse(wire.decode()) == [{"id": "é1", "event": "ünïcode", "data": "café ☕ 𝄞"}]


def test_data_of_other_types():
    assert SseEvent({"n": 1, "s": "é"}).encode() == 'data: {"n":1,"s":"é"}\n\n'.encode()
    assert SseEvent([1, "two"]).encode() == b'data: [1,"two"]\n\n'
    assert SseEvent(42).encode() == b"data: 42\n\n"
    assert SseEvent(b"raw\nbytes").encode() == b"data: raw\ndata: bytes\n\n"
    with pytest.raises(TypeError):
        SseEvent({"a": {1, 2}})  # not JSON: refused when made, not when sent


def test_an_event_without_data():
    assert SseEvent(id="5").encode() == b"id: 5\n\n"
    assert SseEvent(retry=0).encode() == b"retry: 0\n\n"
    assert SseEvent(id=9).id == "9"


def test_data_is_a_constructor_on_the_class_and_the_value_on_an_event():
    event = SseEvent.data("x")
    assert isinstance(event, SseEvent)
    assert event.data == "x"
    assert event.encode() == b"data: x\n\n"
    event.data = {"k": True}
    assert event.data == {"k": True}
    assert event.encode() == b'data: {"k":true}\n\n'
    assert SseEvent.with_event("update", "y") == SseEvent("y", event="update")
    assert SseEvent.with_event("update", "y").encode() == b"event: update\ndata: y\n\n"


def test_comments():
    assert SseEvent.comment("keepalive").encode() == b": keepalive\n\n"
    assert SseEvent.comment("two\nlines").encode() == b": two\n: lines\n\n"
    assert SseEvent.comment().encode() == b":\n\n"
    assert parse(SseEvent.comment("x\ndata: not data").encode().decode()) == []


@pytest.mark.parametrize(
    "kwargs",
    [
        {"event": "a\nb"},
        {"event": "a\r"},
        {"id": "1\r\n2"},
        {"id": "nul\0"},
        {"retry": -1},
        {"retry": 1.5},
        {"retry": "10"},
        {"retry": True},
    ],
)
def test_field_injection_and_bad_retry_are_refused(kwargs):
    with pytest.raises(ValueError):
        SseEvent("x", **kwargs)
    event = SseEvent("x")
    name, value = next(iter(kwargs.items()))
    with pytest.raises(ValueError):
        setattr(event, name, value)
    assert event.encode() == b"data: x\n\n"


def test_sse_stream():
    stream = SseStream()
    assert stream.is_empty() and stream.len() == 0 and len(stream) == 0
    assert stream.add(SseEvent("a")) is stream
    stream.add_data("b").add_event("kind", "c").add({"d": 1})
    assert stream.len() == len(stream) == 4
    assert not stream.is_empty()
    assert [e.data for e in stream] == ["a", "b", "c", {"d": 1}]
    assert [e.event for e in stream] == [None, None, "kind", None]
    assert stream.encode() == b'data: a\n\ndata: b\n\nevent: kind\ndata: c\n\ndata: {"d":1}\n\n'


def test_exports():
    assert cello.SseEvent is cello.sse.SseEvent is SseEvent
    assert cello.SseStream is cello.sse.SseStream is SseStream
    assert {"SseEvent", "SseStream"} <= set(cello.__all__)


# -- Response.sse, in process ---------------------------------------------------------


def test_response_sse_headers():
    response = Response.sse(SseStream().add_data("x"))
    assert response.headers["content-type"] == SSE_TYPE
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.status == 200


@pytest.mark.parametrize("source", ["text", b"bytes", {"a": 1}, 42, SseEvent("one")])
def test_a_source_that_is_not_a_stream_of_events_is_refused(source):
    with pytest.raises(TypeError, match=r"Response\.sse"):
        Response.sse(source)


@pytest.mark.parametrize("keepalive", [-1, -0.5])
def test_a_negative_keepalive_is_refused(keepalive):
    with pytest.raises(ValueError, match="keepalive"):
        Response.sse([], keepalive=keepalive)


# -- through the doors ---------------------------------------------------------------


@pytest.fixture(scope="module")
def sse_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.sse:app", "--env", "production") as live:
        yield live


@pytest.fixture(scope="module")
def sse_uvicorn() -> Iterator[str]:
    door = UvicornDoor("tests.apps.sse:app")
    door.start()
    try:
        yield str(door.client.base_url).rstrip("/")
    finally:
        door.stop()


@pytest.fixture
def client(request: pytest.FixtureRequest, door: str) -> Iterator[httpx.Client]:
    """A client of tests/apps/sse.py: natively, or as ASGI in process."""
    if door == "native":
        server: LiveServer = request.getfixturevalue("sse_server")
        with httpx.Client(base_url=server.url, timeout=10) as c:
            yield c
    else:
        from tests.apps.sse import app

        with TestClient(app) as c:
            yield c


@pytest.fixture(params=["native", "uvicorn"])
def live_url(request: pytest.FixtureRequest) -> str:
    """The base URL of the app on a socket: natively, or under uvicorn."""
    if request.param == "native":
        return request.getfixturevalue("sse_server").url
    return request.getfixturevalue("sse_uvicorn")


def _events(client: httpx.Client, path: str, **kwargs) -> tuple[httpx.Response, list[dict]]:
    response = client.get(path, **kwargs)
    return response, parse(response.text)


def test_a_returned_sse_stream(client, door):
    response, events = _events(client, "/sse/stream")
    assert response.status_code == 200
    assert response.headers["content-type"] == SSE_TYPE
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-length" not in response.headers
    if door == "native":
        assert response.headers["transfer-encoding"] == "chunked"
    assert response.content == (
        b"id: 1\nevent: greeting\ndata: hello\n\n"
        b"data: two\ndata: lines\n\n"
        b'event: json\ndata: {"n":3,"word":"caf\xc3\xa9"}\n\n'
    )
    assert events == [
        {"id": "1", "event": "greeting", "data": "hello"},
        {"id": "1", "data": "two\nlines"},
        {"id": "1", "event": "json", "data": '{"n":3,"word":"café"}'},
    ]


def test_an_empty_stream(client):
    response = client.get("/sse/empty")
    assert response.status_code == 200
    assert response.headers["content-type"] == SSE_TYPE
    assert response.content == b""


def test_a_list_of_events_strings_and_dicts(client):
    response = client.get("/sse/list")
    assert response.content == b'data: a\n\ndata: b\n\ndata: {"c":[1,2]}\n\n: note\n\n'


def test_a_sync_generator(client):
    response, events = _events(client, "/sse/sync")
    assert response.headers["content-type"] == SSE_TYPE
    assert events == [{"id": str(i), "data": f"tick {i}"} for i in range(3)]


def test_an_async_generator(client):
    _, events = _events(client, "/sse/async")
    assert events == [{"event": "tick", "data": str(i)} for i in range(3)]


def test_status_headers_and_retry(client):
    response = client.get("/sse/options")
    assert response.status_code == 201
    assert response.headers["x-stream"] == "yes"
    # A header given replaces the default of the same name.
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.content == b"retry: 2500\ndata: x\n\n"


def test_last_event_id(client):
    assert client.get("/sse/last-event-id").json() == {"last_event_id": None}
    sent = client.get("/sse/last-event-id", headers={"Last-Event-ID": "42"})
    assert sent.json() == {"last_event_id": "42"}
    # A reconnecting client gets the events after the last one it saw.
    assert [e["data"] for e in _events(client, "/sse/resume")[1]] == [
        "event 1",
        "event 2",
        "event 3",
    ]
    resumed = _events(client, "/sse/resume", headers={"Last-Event-ID": "2"})[1]
    assert resumed == [{"id": "3", "data": "event 3"}]


def test_head_sends_the_headers_only(client):
    response = client.head("/sse/stream")
    assert response.status_code == 200
    assert response.headers["content-type"] == SSE_TYPE
    assert response.content == b""
    assert client.get("/sse/empty").status_code == 200  # the connection still serves


@pytest.mark.parametrize("what", ["str", "bytes", "dict", "int"])
def test_a_bad_source_is_a_type_error_in_the_handler(client, what):
    refused = client.get(f"/sse/refused/{what}").json()["refused"]
    assert refused is not None and "Response.sse()" in refused


def test_an_unhandled_bad_source_is_a_500(client):
    response = client.get("/sse/unhandled-bad-source")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"


def test_injection_is_refused_in_a_handler(client):
    assert client.get("/sse/injection").json() == {"refused": 8}


def test_a_generator_failing_mid_stream_drops_the_connection(client, door):
    # The client sees an incomplete response, not one that looks complete.
    expected = httpx.RemoteProtocolError if door == "native" else RuntimeError
    with pytest.raises(expected):
        with client.stream("GET", "/sse/fails") as response:
            response.read()
    assert client.get("/sse/empty").status_code == 200


def test_a_generator_failing_mid_stream_under_uvicorn(sse_uvicorn):
    with httpx.Client(base_url=sse_uvicorn, timeout=10) as client:
        received = b""
        with pytest.raises(httpx.RemoteProtocolError):
            with client.stream("GET", "/sse/fails") as response:
                for chunk in response.iter_raw():
                    received += chunk
        assert received == b"data: before\n\n"


# -- held streams: events as they happen, keepalive, cleanup --------------------------


def _name(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "-").replace("]", "")


def _wait_closed(url: str, name: str) -> bool:
    """Polls the app's record of ``name``'s cleanup, for up to 10 s."""
    for _ in range(500):
        if httpx.get(url + "/sse/closed").json().get(name):
            return True
        time.sleep(0.02)
    return False


def test_events_arrive_as_they_are_sent(live_url, request):
    name = _name(request)
    with (
        httpx.Client(base_url=live_url, timeout=10) as client,
        client.stream("GET", f"/sse/held/{name}") as response,
    ):
        chunks = response.iter_raw()
        seen = b""
        # The second event is only made on release: the first is already here.
        while b"\n\n" not in seen:
            seen += next(chunks)
        assert seen == b"id: 1\ndata: first\n\n"
        assert httpx.post(f"{live_url}/sse/release/{name}").json() == {"released": True}
        for chunk in chunks:
            seen += chunk
    assert seen == b"id: 1\ndata: first\n\nid: 2\ndata: second\n\n"
    assert _wait_closed(live_url, name)


def test_keepalive_comments_while_the_source_is_idle(live_url, request):
    name = _name(request)
    with (
        httpx.Client(base_url=live_url, timeout=10) as client,
        client.stream("GET", f"/sse/held/{name}?keepalive=0.05") as response,
    ):
        chunks = response.iter_raw()
        seen = b""
        while seen.count(b": keepalive\n\n") < 2:
            seen += next(chunks)
        assert seen.startswith(b"id: 1\ndata: first\n\n: keepalive\n\n")
        assert httpx.post(f"{live_url}/sse/release/{name}").json() == {"released": True}
        for chunk in chunks:
            seen += chunk
    # The source was waited on, not restarted: its second event follows.
    assert seen.endswith(b"id: 2\ndata: second\n\n")
    assert [e["data"] for e in parse(seen.decode())] == ["first", "second"]


def _tasks(url: str) -> int:
    return httpx.get(url + "/sse/tasks").json()["tasks"]


@pytest.mark.parametrize("keepalive", ["15", "0"])
def test_a_client_leaving_closes_the_generator_and_leaks_no_task(live_url, request, keepalive):
    name = _name(request)
    port = httpx.URL(live_url).port
    before = _tasks(live_url)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        path = f"/sse/held/{name}?keepalive={keepalive}"
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while b"data: first" not in received:
            received += sock.recv(4096)
        assert httpx.get(live_url + "/sse/closed").json()[name] is False
    # The generator waits for a release that never comes: only noticing the
    # client's departure can run its finally.
    assert _wait_closed(live_url, name)
    for _ in range(500):
        if _tasks(live_url) <= before:
            break
        time.sleep(0.02)
    assert _tasks(live_url) <= before


def test_the_native_server_sends_the_keepalive_without_a_python_task(sse_server, request):
    """Door 1 times the keepalive in Rust: a held stream with keepalive on
    runs as many asyncio tasks as one without (under uvicorn a pull task
    and a timer do it)."""
    url = sse_server.url
    held: dict[str, int] = {}
    for keepalive in ("0", "0.05"):
        name = f"{_name(request)}-{keepalive}"
        before = _tasks(url)
        with (
            httpx.Client(base_url=url, timeout=10) as client,
            client.stream("GET", f"/sse/held/{name}?keepalive={keepalive}") as response,
        ):
            chunks = response.iter_raw()
            seen = b""
            wanted = b"data: first" if keepalive == "0" else b": keepalive\n\n"
            while wanted not in seen:
                seen += next(chunks)
            held[keepalive] = _tasks(url) - before
            httpx.post(f"{url}/sse/release/{name}")
            for chunk in chunks:
                seen += chunk
        assert seen.endswith(b"id: 2\ndata: second\n\n")
    assert held["0.05"] == held["0"]


def test_a_client_leaving_closes_a_sync_generator(live_url, request):
    name = _name(request)
    port = httpx.URL(live_url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(f"GET /sse/held-sync/{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = b""
        while b"data: first" not in received:
            received += sock.recv(4096)
    assert _wait_closed(live_url, name)


# -- behind compression ------------------------------------------------------------


@pytest.fixture(scope="module")
def compressed_server() -> Iterator[LiveServer]:
    with LiveServer("tests.apps.sse:compressed", "--env", "production") as live:
        yield live


@pytest.fixture(scope="module")
def compressed_uvicorn() -> Iterator[str]:
    door = UvicornDoor("tests.apps.sse:compressed")
    door.start()
    try:
        yield str(door.client.base_url).rstrip("/")
    finally:
        door.stop()


@pytest.mark.parametrize("where", ["native", "uvicorn"])
def test_compressed_events_still_arrive_one_by_one(request, where):
    if where == "native":
        url = request.getfixturevalue("compressed_server").url
    else:
        url = request.getfixturevalue("compressed_uvicorn")
    name = _name(request)
    decoder = zlib.decompressobj(wbits=31)
    with (
        httpx.Client(base_url=url, timeout=10) as client,
        client.stream("GET", f"/sse/held/{name}", headers={"accept-encoding": "gzip"}) as response,
    ):
        assert response.headers["content-encoding"] == "gzip"
        assert response.headers["content-type"] == SSE_TYPE
        chunks = response.iter_raw()
        seen = b""
        # Were the first event held in the compressor, this would time out.
        while b"\n\n" not in seen:
            seen += decoder.decompress(next(chunks))
        assert seen == b"id: 1\ndata: first\n\n"
        assert httpx.post(f"{url}/sse/release/{name}").json() == {"released": True}
        for chunk in chunks:
            seen += decoder.decompress(chunk)
    assert seen == b"id: 1\ndata: first\n\nid: 2\ndata: second\n\n"
    assert json.loads(httpx.get(url + "/sse/closed").content)[name] is True
