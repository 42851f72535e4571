"""Response constructors and handler return values, on the wire."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import httpx
import orjson
import pytest

from cello import Response
from conformance.doors import UvicornDoor, pipelined


def test_json_with_status_and_headers(client):
    response = client.get("/resp/json-status")
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-extra"] == "1"
    assert response.content == b'{"created":true}'


@pytest.mark.parametrize(
    ("path", "content_type", "body"),
    [
        ("/resp/text", "text/plain; charset=utf-8", "plain é".encode()),
        ("/resp/html", "text/html; charset=utf-8", b"<h1>hi</h1>"),
        ("/resp/binary", "image/x-test", b"\x00\x01\xff"),
        ("/resp/xml-str", "application/xml; charset=utf-8", b"<ok/>"),
    ],
)
def test_typed_constructors(client, path, content_type, body):
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.headers["content-length"] == str(len(body))
    assert response.content == body


def test_xml_from_data_is_escaped(client):
    assert client.get("/resp/xml").text == (
        '<?xml version="1.0" encoding="UTF-8"?><root><user><name>A &amp; B</name>'
        "<tags><item>x</item><item>y</item></tags></user></root>"
    )


def test_file_download(client):
    response = client.get("/resp/file")
    assert response.content == b"hello from a file\n"
    assert response.headers["content-type"] == "text/plain"
    assert response.headers["content-disposition"] == 'attachment; filename="hello.txt"'
    named = client.get("/resp/file-named")
    assert named.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%2Etxt"
    )


def test_missing_file_is_a_500_problem_and_server_survives(client):
    response = client.get("/resp/missing-file")
    assert response.status_code == 500
    assert client.get("/").status_code == 200


@pytest.mark.parametrize(
    ("path", "status"),
    [("/resp/redirect", 302), ("/resp/redirect-permanent", 301), ("/resp/redirect-307", 307)],
)
def test_redirects(client, path, status):
    response = client.get(path)
    assert response.status_code == status
    assert response.headers["location"] == "/"
    assert client.get(path, follow_redirects=True).json() == {"message": "Hello, World!"}


def test_no_content_has_no_body_or_length(client):
    response = client.get("/resp/no-content")
    assert response.status_code == 204
    assert response.content == b""
    assert "content-length" not in response.headers


def test_created(client):
    response = client.post("/resp/created")
    assert response.status_code == 201
    assert response.headers["location"] == "/things/7"
    assert response.json() == {"id": 7}


def test_custom_response_headers(client):
    response = client.get("/resp/custom")
    assert response.status_code == 202
    assert response.headers["content-type"] == "text/x-custom"
    assert response.headers["x-one"] == "2"  # set_header replaces, case-insensitively
    assert response.headers.get_list("x-many") == ["a", "b"]
    assert response.text == "custom body"


def test_cookies(client):
    cookies = client.get("/resp/cookies").headers.get_list("set-cookie")
    assert cookies == [
        "session=abc%20123%3Bx; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax",
        "theme=dark; Path=/; SameSite=Strict",
        "old=; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Path=/; SameSite=Lax",
    ]


def test_cookie_round_trip(client):
    value = client.get("/resp/cookies").cookies["session"]
    echoed = client.get("/echo", headers={"Cookie": f"session={value}"}).json()
    assert echoed["cookies"]["session"] == "abc 123;x"


def test_header_injection_is_rejected(client):
    assert client.get("/resp/header-injection").json() == {"rejected": 6}
    response = client.get("/resp/injection-unhandled")
    assert response.status_code == 500
    assert "evil" not in response.headers.get("set-cookie", "")


def test_sync_generator_streams(client, door):
    with client.stream("GET", "/resp/stream-sync") as response:
        assert "content-length" not in response.headers
        if door == "native":
            assert response.headers.get("transfer-encoding") == "chunked"
        assert response.read() == b"chunk0;chunk1;chunk2;"


def test_async_generator_streams_chunk_by_chunk(server):
    # Each chunk arrives as its own chunked-encoding frame.
    with (
        httpx.Client(base_url=server.url) as client,
        client.stream("GET", "/resp/stream-async") as response,
    ):
        chunks = list(response.iter_raw())
    assert b"".join(chunks) == b"a0;a1;a2;"
    assert len(chunks) == 3


def test_large_stream_with_backpressure(client):
    with client.stream("GET", "/resp/stream-big") as response:
        total = sum(len(c) for c in response.iter_bytes())
    assert total == 64 * 65536


@pytest.fixture(scope="module")
def under_uvicorn() -> Iterator[UvicornDoor]:
    """tests/apps/core.py as an ASGI app under uvicorn (door 2 on a socket)."""
    door = UvicornDoor("tests.apps.core:app")
    door.start()
    yield door
    door.stop()


@pytest.mark.parametrize("where", ["native", "uvicorn"])
def test_a_client_leaving_an_idle_stream_closes_its_generator(request, where):
    if where == "native":
        url = request.getfixturevalue("server").url
    else:
        url = str(request.getfixturevalue("under_uvicorn").client.base_url).rstrip("/")
    port = httpx.URL(url).port
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"GET /resp/stream-idle HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b""
        while b"data: first" not in received:
            received += sock.recv(4096)
    # The generator now waits an hour for its next event: only noticing the
    # client's departure can close it.
    for _ in range(250):
        if httpx.get(url + "/resp/streams-closed").json().get("idle"):
            break
        time.sleep(0.02)
    assert httpx.get(url + "/resp/streams-closed").json().get("idle") is True


def test_a_streamed_response_is_held_to_its_declared_length(server):
    second = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    longer, _ = pipelined(
        server.port, b"GET /resp/stream-declared/60 HTTP/1.1\r\nHost: x\r\n\r\n", second
    )
    # The surplus is cut at the declared length: the next response is the real one.
    assert b"\r\n\r\nhelloHTTP/1.1 200 OK\r\ncontent-type: application/json" in longer
    assert b"injected" not in longer
    shorter, closed = pipelined(
        server.port, b"GET /resp/stream-declared/4 HTTP/1.1\r\nHost: x\r\n\r\n", second
    )
    assert closed and shorter.endswith(b"\r\n\r\nhell")  # incomplete, then closed


def test_failing_stream_drops_the_connection(client, door):
    # Natively the connection is dropped; through ASGI the app raises after
    # starting the response, which tells the server to do the same.
    expected = httpx.RemoteProtocolError if door == "native" else RuntimeError
    with pytest.raises(expected):
        with client.stream("GET", "/resp/stream-fails") as response:
            response.read()
    assert client.get("/").status_code == 200


RETURN_CASES = {
    "dict": (200, "application/json", orjson.dumps({"a": 1, "b": [1, 2.5, None, True]})),
    "list": (200, "application/json", b'[1,"two",{"three":3}]'),
    "str": (200, "application/json", b'"hello"'),
    "bytes": (200, "application/octet-stream", b"raw\x00bytes"),
    "none": (200, "application/json", b"null"),
    "int": (200, "application/json", b"42"),
    "float": (200, "application/json", b"1.5"),
    "bool": (200, "application/json", b"false"),
    "tuple2": (201, "application/json", b'{"created":true}'),
    "tuple3": (201, "application/json", b'{"created":true}'),
    "tuple-response": (418, "text/plain; charset=utf-8", b"teapot"),
    "dataclass": (200, "application/json", b'{"x":1,"y":2,"label":"p"}'),
    "pydantic": (200, "application/json", b'{"name":"Ada","age":36,"joined":"1843-01-01"}'),
    "datetime": (200, "application/json", b'{"at":"2024-05-06T07:08:09.000123+00:00"}'),
    "uuid": (200, "application/json", b'{"id":"00000000-0000-0000-0000-000000000001"}'),
    "enum": (200, "application/json", b'{"color":"red"}'),
    "unicode": (200, "application/json", '{"text":"é😀\\n\\"\\\\"}'.encode()),
}


@pytest.mark.parametrize("prefix", ["/ret", "/ret-async"])
@pytest.mark.parametrize("kind", sorted(RETURN_CASES))
def test_return_values(client, prefix, kind):
    status, content_type, body = RETURN_CASES[kind]
    response = client.get(f"{prefix}/{kind}")
    assert response.status_code == status
    assert response.headers["content-type"] == content_type
    assert response.content == body


def test_tuple_with_headers(client):
    assert client.get("/ret/tuple3").headers["x-tuple"] == "yes"


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("unserializable", "Type is not JSON serializable: set"),
        ("huge-int", "Integer exceeds 64-bit range"),
        ("nonstr-key", "Dict key must be str"),
    ],
)
def test_unserializable_return_is_a_500_naming_the_problem(debug_server, kind, message):
    response = httpx.get(f"{debug_server.url}/ret/{kind}")
    assert response.status_code == 500
    assert response.json()["detail"] == f"TypeError: {message}"


class TestResponseObject:
    def test_defaults_and_accessors(self):
        resp = Response("hi")
        assert resp.status == 200
        assert resp.body() == b"hi"
        assert resp.content_type() == "text/plain; charset=utf-8"
        assert resp.content_length() == 2
        assert resp.headers == {"content-type": "text/plain; charset=utf-8"}

    def test_status_is_writable_and_checked(self):
        resp = Response.json([])
        resp.status = 404
        assert resp.status == 404
        with pytest.raises(ValueError, match="invalid HTTP status"):
            resp.status = 1000
        with pytest.raises(ValueError, match="invalid HTTP status"):
            Response("x", status=42)

    def test_body_must_be_text_or_bytes(self):
        with pytest.raises(TypeError, match=r"use Response\.json"):
            Response({"a": 1})

    def test_redirect_validation(self):
        with pytest.raises(ValueError, match="3xx"):
            Response.redirect("/", status=200)
        with pytest.raises(ValueError, match="CR, LF or NUL"):
            Response.redirect("/x\r\nSet-Cookie: a=b")

    def test_stream_needs_an_iterable(self):
        with pytest.raises(TypeError, match="iterable"):
            Response.stream(42)

    def test_cookie_validation(self):
        resp = Response()
        with pytest.raises(ValueError, match="invalid cookie name"):
            resp.set_cookie("bad name", "v")
        with pytest.raises(ValueError, match="samesite"):
            resp.set_cookie("a", "v", samesite="sometimes")
        with pytest.raises(ValueError, match="invalid cookie Path"):
            resp.set_cookie("a", "v", path="/;evil")

    @staticmethod
    def cookie(**attributes) -> str:
        resp = Response()
        resp.set_cookie("c", "v", **attributes)
        return resp.headers["set-cookie"]

    @pytest.mark.parametrize(
        ("attributes", "message"),
        [
            ({"expires": "Thu, 01 Jan 1970 00:00:00 GMT; Domain=evil.example"}, "HTTP date"),
            ({"expires": "tomorrow"}, "HTTP date"),
            ({"expires": "Fri, 01 Jan 1970 00:00:00 GMT"}, "HTTP date"),  # wrong weekday
            ({"expires": "Thu, 01 Jan 1970 00:00:00 GMT\r\nX-Evil: 1"}, "HTTP date"),
            ({"expires": [1]}, "expires must be"),
            ({"expires": True}, "expires must be"),
            ({"expires": float("nan")}, "expires must be"),
            ({"expires": 1e300}, "expires"),
            ({"max_age": "60; Domain=evil"}, "max_age must be"),
            ({"max_age": 1.5}, "max_age must be"),
            ({"max_age": True}, "max_age must be"),
            ({"path": "/a\x01b"}, "invalid cookie Path"),
            ({"path": "/a\x7fb"}, "invalid cookie Path"),
            ({"path": "/é"}, "invalid cookie Path"),
            ({"domain": "a.example; Secure"}, "invalid cookie Domain"),
            ({"domain": "a.example\tb"}, "invalid cookie Domain"),
            ({"domain": "exämple.com"}, "invalid cookie Domain"),
            ({"domain": ""}, "invalid cookie Domain"),
            ({"samesite": "Lax; Secure"}, "samesite must be"),
            ({"samesite": "None"}, "secure=True"),
        ],
    )
    def test_cookie_attributes_are_validated(self, attributes, message):
        with pytest.raises(ValueError, match=message):
            self.cookie(**attributes)

    @pytest.mark.parametrize("name", ["a b", "a;b", "a=b", "a\x00", "é", ""])
    def test_cookie_names_must_be_tokens(self, name):
        with pytest.raises(ValueError, match="invalid cookie name"):
            Response().set_cookie(name, "v")

    def test_cookie_values_are_encoded_not_injected(self):
        resp = Response()
        resp.set_cookie("c", "a; Domain=evil\r\nX: y é")
        assert resp.headers["set-cookie"] == (
            "c=a%3B%20Domain=evil%0D%0AX:%20y%20%C3%A9; Path=/; SameSite=Lax"
        )

    def test_expires_from_a_datetime(self):
        aware = datetime(2030, 5, 6, 9, 8, 7, tzinfo=timezone(timedelta(hours=2)))
        assert "; Expires=Mon, 06 May 2030 07:08:07 GMT;" in self.cookie(expires=aware)
        naive_is_utc = datetime(2030, 5, 6, 7, 8, 7)
        assert "; Expires=Mon, 06 May 2030 07:08:07 GMT;" in self.cookie(expires=naive_is_utc)

    def test_expires_from_seconds_from_now(self):
        header = self.cookie(expires=3600)
        sent = header.split("Expires=")[1].split(";")[0]
        expected = datetime.now(UTC) + timedelta(seconds=3600)
        assert abs(parsedate_to_datetime(sent) - expected) < timedelta(minutes=5)
        assert "Expires=" in self.cookie(expires=-1.5)

    def test_expires_from_an_http_date_string(self):
        date = "Sun, 06 Nov 1994 08:49:37 GMT"
        assert self.cookie(expires=date) == f"c=v; Expires={date}; Path=/; SameSite=Lax"

    def test_valid_attributes(self):
        assert (
            self.cookie(
                max_age=0, path="/a b/~x", domain=".Example-1.com", samesite="none", secure=True
            )
            == "c=v; Max-Age=0; Path=/a b/~x; Domain=.Example-1.com; Secure; SameSite=None"
        )
