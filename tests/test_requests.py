"""Request attributes and methods through the live server, including the
unhappy paths: malformed JSON, invalid UTF-8, oversize bodies."""

from __future__ import annotations

import asyncio
import json

import pytest

from cello import BadRequest, Request, UnsupportedMediaType
from cello.testing import TestClient


def test_echo_of_request_attributes(client, door, request):
    response = client.get(
        "/echo?a=1&a=2&empty=&flag&sp=hello+world&u=%C3%A9t%C3%A9",
        headers={
            "X-Custom": "v1",
            "User-Agent": "probe/1",
            "Accept": "application/*",
            "Cookie": "c1=x; c2=y%20z",
        },
    )
    body = response.json()
    assert body["method"] == "GET"
    assert body["path"] == "/echo"
    assert body["query"] == [
        ["a", "1"],
        ["a", "2"],
        ["empty", ""],
        ["flag", ""],
        ["sp", "hello world"],
        ["u", "été"],
    ]
    assert body["query_dict"]["a"] == "2"  # the last repeat wins for single lookups
    host = (
        f"127.0.0.1:{request.getfixturevalue('server').port}" if door == "native" else "testserver"
    )
    assert body["host"] == body["host_call"] == host
    assert body["client_ip"] == "127.0.0.1"
    assert body["scheme"] == "http"
    assert body["url"].startswith(f"http://{host}/echo?a=1&a=2")
    assert body["user_agent"] == "probe/1"
    assert body["cookies"] == {"c1": "x", "c2": "y z"}
    assert body["x_custom"] == "v1"
    assert body["header_via_get"] == "v1"
    assert body["accepts_json"] is True
    assert body["content_type"] is None
    assert body["is_json"] is False


def test_repeated_headers_are_all_kept(client):
    response = client.get("/echo", headers=[("X-Custom", "a"), ("X-Custom", "b")])
    assert response.json()["x_custom_all"] == ["a", "b"]
    assert response.json()["x_custom"] == "a"


def test_forwarding_headers(client):
    body = client.get(
        "/echo",
        headers={
            "X-Forwarded-For": "203.0.113.9, 10.0.0.1",
            "X-Forwarded-Host": "example.com",
            "X-Forwarded-Proto": "https",
            "X-Requested-With": "XMLHttpRequest",
        },
    ).json()
    assert body["client_ip"] == "203.0.113.9"
    assert body["host"] == "example.com"
    assert body["secure"] is True
    assert body["xhr"] is True


def test_json_body(client):
    payload = {"name": "é😀", "n": [1, 2.5, None, True], "nested": {"k": "v"}}
    assert client.post("/json", json=payload).json() == {"received": payload}


def test_async_json_body(client):
    assert client.post("/async-json", json=[1, 2]).json() == {"received": [1, 2]}


@pytest.mark.parametrize("body", [b"{not json", b"", b'{"a": 1', b"[1,]", b"\xff\xfe"])
def test_malformed_json_is_a_400_problem(client, body):
    response = client.post("/json", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "not valid JSON" in response.json()["detail"]


def test_text_body_and_invalid_utf8(client):
    assert client.post("/text", content="héllo".encode()).json() == {"text": "héllo"}
    response = client.post("/text", content=b"\xff\xfeabc")
    assert response.status_code == 400
    assert "UTF-8" in response.json()["detail"]


def test_binary_body_round_trips(client):
    data = bytes(range(256)) * 10
    response = client.post("/body", content=data)
    assert response.content == data
    assert response.headers["content-type"] == "application/octet-stream"


def test_chunked_body_is_read(client):
    def gen():
        yield b"part1-"
        yield b"part2"

    assert client.post("/body", content=gen()).content == b"part1-part2"


def test_form_body(client):
    response = client.post("/form", data={"a": "1", "b": "x y", "c": "é"})
    assert response.json() == {"form": {"a": "1", "b": "x y", "c": "é"}}


def test_body_of_get_is_read_only_when_asked(client):
    assert client.request("GET", "/lazy-body", content=b"12345").json() == {"length": 5}
    assert client.request("GET", "/ignore-body", content=b"x" * 100_000).json() == {"ignored": True}
    # The connection is still usable after an unread body.
    assert client.get("/").status_code == 200


def test_oversize_body_is_413_before_handler(client):
    response = client.post("/json", content=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"


def test_oversize_chunked_body_is_413(client):
    def gen():
        for _ in range(11):
            yield b"x" * (1024 * 1024)

    response = client.post("/body", content=gen())
    assert response.status_code == 413


def test_typed_query_getters(client):
    assert client.get("/typed-query?n=5&f=2.5&b=yes&s=v").json() == {
        "n": 5,
        "f": 2.5,
        "b": True,
        "s": "v",
    }
    assert client.get("/typed-query").json() == {"n": 0, "f": None, "b": False, "s": "default"}


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ("n=abc", 'query parameter "n" is not an integer: "abc"'),
        ("n=1.5", 'query parameter "n" is not an integer: "1.5"'),
        ("f=x", 'query parameter "f" is not a finite number: "x"'),
        ("f=nan", 'query parameter "f" is not a finite number: "nan"'),
        ("b=maybe", 'query parameter "b" is not a boolean'),
    ],
)
def test_typed_query_getter_with_bad_value_is_a_400_problem(client, query, detail):
    response = client.get(f"/typed-query?{query}")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"].startswith(detail)
    assert client.get("/").status_code == 200


def test_typed_query_bool_spellings(client):
    for value, expected in [("ON", True), ("1", True), ("off", False), ("0", False), ("", False)]:
        assert client.get(f"/typed-query?b={value}").json()["b"] is expected


def test_typed_path_param_with_bad_value_is_a_400_problem(client):
    assert client.get("/typed-param/12").json() == {"id": 12}
    response = client.get("/typed-param/twelve")
    assert response.status_code == 400
    assert response.json()["detail"] == 'path parameter "id" is not an integer: "twelve"'


def test_form_reads_multipart_text_fields(client):
    response = client.post("/form", files={"a": (None, b"1")}, data={"b": "2"})
    assert response.status_code == 200
    assert response.json() == {"form": {"a": "1", "b": "2"}}


def test_form_refuses_other_content_types_with_a_415_problem(client):
    response = client.post("/form", json={"a": "1"})
    assert response.status_code == 415
    assert response.json()["detail"] == (
        "request.form() reads application/x-www-form-urlencoded or multipart/form-data bodies, "
        'not "application/json"'
    )


def test_form_without_content_type_is_read_as_urlencoded(client):
    assert client.post("/form", content=b"a=1&b=2").json() == {"form": {"a": "1", "b": "2"}}
    charset = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
    assert client.post("/form", content=b"a=%C3%A9", headers=charset).json() == {"form": {"a": "é"}}


def test_context_is_dict_like_and_per_request(client):
    body = client.get("/context").json()
    assert body == {
        "items": [["a", 1], ["b", 2], ["c", 3]],
        "has_a": True,
        "via_get": 2,
        "as_string": "3",
        "missing": None,
    }
    assert client.get("/context").json() == body


class TestRequestConstructor:
    """``Request(...)`` builds requests for unit-testing handlers directly."""

    def test_fields(self):
        req = Request(
            "post",
            "/users/42?x=1",
            params=[("id", "42")],
            headers={"Content-Type": "application/json", "X-A": "b"},
            body=b'{"k": [1]}',
        )
        assert req.method == "POST"
        assert req.path == "/users/42"
        assert req.params == {"id": "42"}
        assert req.query["x"] == "1"
        assert req.headers["content-type"] == "application/json"
        assert req.headers["X-A"] == "b"
        assert "x-a" in req.headers
        assert req.json() == {"k": [1]}
        assert req.is_json()
        assert req.content_type == "application/json"
        assert req.content_type() == "application/json"

    def test_query_mapping(self):
        req = Request("GET", "/", query={"a": "1", "b": "two words"})
        assert req.query.get("b") == "two words"
        assert req.query.get("zz", "d") == "d"
        assert list(req.query) == ["a", "b"]
        assert len(req.query) == 2
        with pytest.raises(KeyError):
            req.query["zz"]

    def test_bad_json_raises_bad_request_which_is_a_value_error(self):
        req = Request("POST", "/", body=b"{")
        with pytest.raises(BadRequest) as info:
            req.json()
        assert isinstance(info.value, ValueError)
        assert info.value.status_code == 400

    def test_invalid_method(self):
        with pytest.raises(ValueError, match="invalid HTTP method"):
            Request("GE T", "/")

    def test_typed_getter_errors_are_bad_requests(self):
        req = Request("GET", "/?n=x&f=inf&b=2", params=[("id", "y")])
        for read in (
            lambda: req.get_query_int("n"),
            lambda: req.get_query_float("f"),
            lambda: req.get_query_bool("b"),
            lambda: req.get_param_int("id"),
        ):
            with pytest.raises(BadRequest) as info:
                read()
            assert isinstance(info.value, ValueError)
            assert info.value.status_code == 400

    def test_form_on_multipart_reads_the_fields(self):
        req = Request(
            "POST",
            "/",
            headers={"Content-Type": "multipart/form-data; boundary=xyz"},
            body=b'--xyz\r\nContent-Disposition: form-data; name="a"\r\n\r\n1\r\n--xyz--\r\n',
        )
        assert req.form() == {"a": "1"}

    def test_form_on_json_raises_unsupported_media_type(self):
        req = Request("POST", "/", headers={"Content-Type": "application/json"}, body=b"{}")
        with pytest.raises(UnsupportedMediaType, match="application/json") as info:
            req.form()
        assert info.value.status_code == 415


@pytest.mark.parametrize("fill", ["/reuse/fill", "/reuse/fill-async"])
def test_no_request_state_reaches_the_next_request(client, fill):
    """Door 1 reuses a finished sync request's object when nothing kept it:
    nothing of the request before may show through."""
    for item in ("7", "8"):
        filled = client.post(
            f"{fill}/{item}?q={item}",
            json={"a": item},
            headers={"x-mark": item, "cookie": f"c={item}"},
        ).json()
        assert filled == {
            "json": {"a": item},
            "query": {"q": item},
            "mark": item,
            "cookies": {"c": item},
            "params": {"item": item},
            "user": item,
        }
        assert client.get("/reuse/peek").json() == {
            "body": "",
            "query": {},
            "mark": None,
            "cookies": {},
            "params": {},
            "user": None,
            "path": "/reuse/peek",
        }


def test_a_request_kept_by_the_handler_keeps_its_own_data(client):
    start = len(client.get("/reuse/kept").json())
    for n in ("1", "2"):
        client.get(f"/reuse/keep?n={n}", headers={"x-mark": f"m{n}"})
        for _ in range(3):
            client.get("/reuse/peek", headers={"x-mark": "other"})
    assert client.get("/reuse/kept").json()[start:] == [
        {"path": "/reuse/keep", "query": {"n": "1"}, "mark": "m1", "n": "1"},
        {"path": "/reuse/keep", "query": {"n": "2"}, "mark": "m2", "n": "2"},
    ]


def asgi_answer(scope_headers: list[tuple[bytes, bytes]], http_version: str = "1.1"):
    """Status, headers and body of a GET / given to the app as a bare ASGI
    scope, as a server that does not check the head itself would send it."""
    from tests.apps.core import app

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": http_version,
        "method": "GET", "scheme": "http", "path": "/", "raw_path": b"/", "query_string": b"",
        "root_path": "", "headers": scope_headers, "client": ("127.0.0.1", 1), "server": None,
    }  # fmt: skip
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    headers = {k.decode(): v.decode() for k, v in sent[0]["headers"]}
    return sent[0]["status"], headers, sent[1]["body"]


@pytest.mark.parametrize(
    ("headers", "http_version", "detail"),
    [
        ([], "1.1", "an HTTP/1.1 request must have a Host header"),
        ([(b"host", b"a"), (b"host", b"a")], "1.1", "the request has more than one Host header"),
        ([(b"host", b"a"), (b"host", b"b")], "2", "the request has more than one Host header"),
        ([(b"host", b"a/b")], "1.1", 'the Host header "a/b" is not a valid host[:port]'),
    ],
)
def test_asgi_scope_with_bad_host_is_a_400_problem(headers, http_version, detail):
    status, response_headers, body = asgi_answer(headers, http_version)
    assert status == 400
    assert response_headers["content-type"] == "application/problem+json"
    assert response_headers["connection"] == "close"
    assert json.loads(body)["detail"] == detail


@pytest.mark.parametrize("http_version", ["1.0", "2"])
def test_asgi_scope_without_host_is_fine_where_host_is_optional(http_version):
    assert asgi_answer([], http_version)[0] == 200


def test_asgi_scope_with_a_transfer_coding_other_than_chunked_is_501():
    status, _, body = asgi_answer([(b"host", b"h"), (b"transfer-encoding", b"gzip, chunked")])
    assert status == 501
    assert json.loads(body)["detail"] == (
        'transfer coding "gzip" is not supported; only chunked is'
    )


def test_test_client_requests_with_bad_host_are_400():
    from tests.apps.core import app

    with TestClient(app) as client:
        assert client.get("/", headers={"Host": "a b"}).status_code == 400
        twice = client.get("/", headers=[("Host", "a"), ("Host", "a")])
        assert twice.json()["detail"] == "the request has more than one Host header"
        assert client.get("/", headers={"Host": "example.com:8000"}).status_code == 200
