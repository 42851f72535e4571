"""The conformance corpus: requests with the response each must produce.

Every case states what it expects (status, and the body as JSON or bytes,
plus any headers that matter); the suite also checks that all doors answer
byte for byte alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

PROBLEM = "application/problem+json"
JSON = "application/json"


@dataclass(frozen=True)
class Case:
    name: str
    method: str
    path: str
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None
    #: Expected JSON body, or exact bytes, or a predicate on the bytes.
    expect: Any = None
    expect_headers: dict[str, str] = field(default_factory=dict)
    #: Header names that must be absent.
    absent: tuple[str, ...] = ()

    def check(self, status: int, headers: dict[str, list[str]], body: bytes) -> None:
        assert status == self.status, f"{self.name}: status {status}, expected {self.status}"
        for name, value in self.expect_headers.items():
            assert value in headers.get(name, []), f"{self.name}: {name} {headers.get(name)}"
        for name in self.absent:
            assert name not in headers, f"{self.name}: unexpected {name}"
        if isinstance(self.expect, bytes):
            assert body == self.expect, f"{self.name}: body {body[:200]!r}"
        elif callable(self.expect):
            assert self.expect(body), f"{self.name}: body {body[:200]!r}"
        elif self.expect is not None:
            assert json.loads(body) == self.expect, f"{self.name}: body {body[:200]!r}"


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


def problem(
    status: int, title: str, instance: str, detail: str | None = None
) -> Callable[[bytes], bool]:
    def check(body: bytes) -> bool:
        data = json.loads(body)
        ok = data["type"] == "about:blank" and data["status"] == status
        ok = ok and data["title"] == title and data["instance"] == instance
        return ok and (detail is None or data.get("detail") == detail)

    return check


def _routing() -> list[Case]:
    cases = [
        Case("root", "GET", "/", 200, expect={"message": "Hello, World!"},
             expect_headers={"content-type": JSON, "content-length": "27"}),
        Case("static beats param", "GET", "/users/me", 200, expect={"route": "me"}),
        Case("param", "GET", "/users/42", 200, expect={"route": "user", "id": "42"}),
        Case("param percent-decoded", "GET", "/users/J%C3%B6rg%20X", 200,
             expect={"route": "user", "id": "Jörg X"}),
        Case("param unicode", "GET", "/users/%E2%9C%93", 200, expect={"route": "user", "id": "✓"}),
        Case("param plus kept", "GET", "/users/a+b", 200, expect={"route": "user", "id": "a+b"}),
        Case("catch-all one", "GET", "/files/a.txt", 200, expect={"path": "a.txt"}),
        Case("catch-all deep", "GET", "/files/a/b/c.txt", 200, expect={"path": "a/b/c.txt"}),
        Case("catch-all empty is 404", "GET", "/files/", 404,
             expect=problem(404, "Not Found", "/files/")),
        Case("int ok", "GET", "/items/12", 200, expect={"id": 12}),
        Case("int negative", "GET", "/items/-3", 200, expect={"id": -3}),
        Case("int rejects letters", "GET", "/items/abc", 404,
             expect=problem(404, "Not Found", "/items/abc")),
        Case("int rejects float", "GET", "/items/1.5", 404),
        Case("uuid ok", "GET", "/uuid/123e4567-e89b-12d3-a456-426614174000", 200,
             expect={"id": "123e4567-e89b-12d3-a456-426614174000"}),
        Case("uuid rejects", "GET", "/uuid/nope", 404),
        Case("regex ok", "GET", "/slug/hello-world", 200, expect={"slug": "hello-world"}),
        Case("regex rejects", "GET", "/slug/Hello", 404),
        Case("two params", "GET", "/two/x/y", 200, expect={"a": "x", "b": "y"}),
        Case("route GET", "GET", "/multi", 200, expect={"method": "GET"}),
        Case("route POST", "POST", "/multi", 200, expect={"method": "POST"}),
        Case("route PUT", "PUT", "/multi", 200, expect={"method": "PUT"}),
        Case("route 405", "DELETE", "/multi", 405,
             expect=problem(405, "Method Not Allowed", "/multi", "DELETE is not allowed on /multi"),
             expect_headers={"allow": "GET, HEAD, POST, PUT"}),
        Case("put json", "PUT", "/things/1", 200, headers=[("content-type", JSON)],
             body=b'{"x":1}', expect={"put": "1", "body": {"x": 1}}),
        Case("patch async", "PATCH", "/things/1", 200, body=b"[1,2]",
             expect={"patch": "1", "body": [1, 2]}),
        Case("delete 204", "DELETE", "/things/1", 204, expect=b"", absent=("content-length",)),
        Case("options explicit", "OPTIONS", "/things/1", 200, expect=b"",
             expect_headers={"allow": "PUT, PATCH, DELETE, OPTIONS"}),
        Case("405 lists methods", "GET", "/things/1", 405,
             expect_headers={"allow": "PUT, PATCH, DELETE, OPTIONS"}),
        Case("options without route", "OPTIONS", "/", 405, expect_headers={"allow": "GET, HEAD"}),
        Case("explicit head", "HEAD", "/explicit-head", 200, expect=b"",
             expect_headers={"x-head": "explicit"}),
        Case("explicit head's get", "GET", "/explicit-head", 200, expect={"get": True}),
        Case("trailing slash route", "GET", "/trailing/", 200, expect={"slash": True}),
        Case("trailing slash significant", "GET", "/trailing", 404),
        Case("no-arg handler", "GET", "/noargs", 200, expect={"noargs": True}),
        Case("404", "GET", "/nope", 404,
             expect=problem(404, "Not Found", "/nope", "no route for GET /nope"),
             expect_headers={"content-type": PROBLEM}),
        Case("404 deep", "GET", "/a/b/c/d", 404),
        Case("404 post", "POST", "/nope", 404),
        Case("405 post on get", "POST", "/users/1", 405, expect_headers={"allow": "GET, HEAD"}),
        Case("405 put on root", "PUT", "/", 405),
        Case("405 patch", "PATCH", "/users/me", 405),
        Case("blueprint root", "GET", "/api/", 200, expect={"bp": "api"}),
        Case("nested blueprint", "GET", "/api/v1/users/5", 200, expect={"bp": "v1", "id": "5"}),
        Case("blueprint without slash", "GET", "/api", 404),
        Case("custom method 405", "PURGE", "/", 405),
    ]  # fmt: skip
    heads = ["/", "/users/42", "/ret/dict", "/resp/text", "/resp/no-content", "/nope",
             "/resp/stream-sync", "/ret/bytes", "/api/"]  # fmt: skip
    for path in heads:
        status = 404 if path == "/nope" else (204 if path == "/resp/no-content" else 200)
        cases.append(Case(f"HEAD {path}", "HEAD", path, status, expect=b""))
    return cases


def _query() -> list[Case]:
    def echo(query: str, pairs: list[list[str]]) -> Case:
        return Case(
            f"query {query or '(none)'}",
            "GET",
            f"/echo/query?{query}" if query else "/echo/query",
            200,
            expect=lambda b, p=pairs: json.loads(b)["pairs"] == p,
        )

    return [
        echo("", []),
        echo("a=1", [["a", "1"]]),
        echo("a=1&a=2", [["a", "1"], ["a", "2"]]),
        echo("a=1&b=2&a=3", [["a", "1"], ["b", "2"], ["a", "3"]]),
        echo("empty=", [["empty", ""]]),
        echo("flag", [["flag", ""]]),
        echo("a=&b", [["a", ""], ["b", ""]]),
        echo("sp=hello+world", [["sp", "hello world"]]),
        echo("pct=%20%2B%26%3D", [["pct", " +&="]]),
        echo("u=%C3%A9t%C3%A9", [["u", "été"]]),
        echo("bad=%FF", [["bad", "\ufffd"]]),
        echo("k%20ey=v", [["k ey", "v"]]),
        echo("a=1&&b=2", [["a", "1"], ["b", "2"]]),
        echo("=v", [["", "v"]]),
        echo("x=a=b", [["x", "a=b"]]),
        Case("query raw kept", "GET", "/echo/query?z=%41&y", 200,
             expect=lambda b: json.loads(b)["raw"] == "z=%41&y"),
        Case("query last wins", "GET", "/echo/query?k=1&k=2", 200,
             expect=lambda b: json.loads(b)["last"] == {"k": "2"}),
        Case("typed query", "GET", "/echo/typed?n=5&f=2.5&b=yes", 200,
             expect={"n": 5, "f": 2.5, "b": True}),
        Case("typed query defaults", "GET", "/echo/typed", 200,
             expect={"n": 0, "f": None, "b": False}),
        Case("typed query bad int", "GET", "/echo/typed?n=x", 400,
             expect=problem(400, "Bad Request", "/echo/typed",
                            'query parameter "n" is not an integer: "x"')),
        Case("typed query bad float", "GET", "/echo/typed?f=1e999", 400,
             expect=problem(400, "Bad Request", "/echo/typed",
                            'query parameter "f" is not a finite number: "1e999"')),
        Case("typed query bad bool", "GET", "/echo/typed?b=perhaps", 400,
             expect=problem(400, "Bad Request", "/echo/typed")),
        Case("query on post", "POST", "/echo/query?a=1", 200,
             expect=lambda b: json.loads(b)["pairs"] == [["a", "1"]]),
    ]  # fmt: skip


def _headers_and_bodies() -> list[Case]:
    return [
        Case("repeated header", "GET", "/echo/headers", 200,
             headers=[("x-test", "a"), ("x-test", "b")],
             expect=lambda b: json.loads(b)["x_test"] == ["a", "b"]),
        Case("request cookies", "GET", "/echo/headers", 200, headers=[("cookie", "a=1; b=x%20y")],
             expect=lambda b: json.loads(b)["cookies"] == {"a": "1", "b": "x y"}),
        Case("accept", "GET", "/echo/headers", 200, headers=[("accept", "text/*")],
             expect=lambda b: json.loads(b)["accepts_html"] is True),
        Case("xhr", "GET", "/echo/headers", 200, headers=[("x-requested-with", "XMLHttpRequest")],
             expect=lambda b: json.loads(b)["xhr"] is True),
        Case("json content type", "POST", "/echo/headers", 200,
             headers=[("content-type", "application/json")], body=b"{}",
             expect=lambda b: json.loads(b)["is_json"] is True),
        Case("form content type", "POST", "/echo/headers", 200,
             headers=[("content-type", "application/x-www-form-urlencoded")], body=b"a=1",
             expect=lambda b: json.loads(b)["is_form"] is True),
        Case("host with port", "GET", "/echo/headers", 200, headers=[("host", "example.com:8080")]),
        Case("host invalid", "GET", "/echo/headers", 400, headers=[("host", "a b")],
             expect=problem(400, "Bad Request", "/echo/headers",
                            'the Host header "a b" is not a valid host[:port]'),
             expect_headers={"connection": "close"}),
        Case("host with userinfo", "GET", "/echo/headers", 400, headers=[("host", "u@h")]),
        Case("json object", "POST", "/echo/json", 200, body=b'{"a": [1, 2.5, null, true]}',
             expect={"json": {"a": [1, 2.5, None, True]}}),
        Case("json array", "POST", "/echo/json", 200, body=b"[1, 2]", expect={"json": [1, 2]}),
        Case("json scalar", "POST", "/echo/json", 200, body=b'"s"', expect={"json": "s"}),
        Case("json unicode", "POST", "/echo/json", 200, body='{"t": "é😀"}'.encode(),
             expect={"json": {"t": "é😀"}}),
        Case("json escapes", "POST", "/echo/json", 200, body=b'{"t": "\\u00e9\\n"}',
             expect={"json": {"t": "é\n"}}),
        Case("json big number", "POST", "/echo/json", 200, body=b"[1e300, -1, 18446744073709551615]",
             expect={"json": [1e300, -1, 18446744073709551615]}),
        Case("json nested", "POST", "/echo/json", 200, body=b'{"a": {"b": {"c": []}}}',
             expect={"json": {"a": {"b": {"c": []}}}}),
        Case("json async", "POST", "/echo/json-async", 200, body=b'{"k": 1}',
             expect={"json": {"k": 1}}),
        Case("json malformed", "POST", "/echo/json", 400,
             body=b"{not json", expect=problem(400, "Bad Request", "/echo/json")),
        Case("json truncated", "POST", "/echo/json", 400, body=b'{"a": 1'),
        Case("json trailing comma", "POST", "/echo/json", 400, body=b"[1,]"),
        Case("json empty body", "POST", "/echo/json", 400, body=b""),
        Case("json invalid utf8", "POST", "/echo/json", 400, body=b'"\xff"'),
        Case("json async malformed", "POST", "/echo/json-async", 400, body=b"{"),
        Case("text body", "POST", "/echo/text", 200, body="héllo".encode(), expect={"text": "héllo"}),
        Case("text empty", "POST", "/echo/text", 200, body=b"", expect={"text": ""}),
        Case("text invalid utf8", "POST", "/echo/text", 400, body=b"\xff\xfe"),
        Case("binary body", "POST", "/echo/body", 200, body=bytes(range(256)),
             expect=bytes(range(256)),
             expect_headers={"content-type": "application/octet-stream"}),
        Case("empty body", "POST", "/echo/body", 200, body=b"", expect=b""),
        Case("put body", "PUT", "/echo/body", 200, body=b"put", expect=b"put"),
        Case("patch body", "PATCH", "/echo/body", 200, body=b"patch", expect=b"patch"),
        Case("delete body read when asked", "DELETE", "/echo/body", 200, body=b"del", expect=b"del"),
        Case("large body", "POST", "/echo/body", 200, body=b"x" * 1_000_000,
             expect=b"x" * 1_000_000),
        Case("form", "POST", "/echo/form", 200,
             headers=[("content-type", "application/x-www-form-urlencoded")],
             body=b"a=1&b=x+y&c=%C3%A9&a=2", expect={"form": {"a": "2", "b": "x y", "c": "é"}}),
        Case("form empty", "POST", "/echo/form", 200, body=b"", expect={"form": {}}),
        Case("form multipart", "POST", "/echo/form", 200,
             headers=[("content-type", "multipart/form-data; boundary=b")],
             body=b'--b\r\ncontent-disposition: form-data; name="a"\r\n\r\n1\r\n--b--\r\n',
             expect={"form": {"a": "1"}}),
        Case("form json 415", "POST", "/echo/form", 415,
             headers=[("content-type", "application/json")], body=b'{"a": 1}',
             expect=problem(415, "Unsupported Media Type", "/echo/form")),
        Case("413 by length", "POST", "/echo/body", 413, body=b"x" * (10 * 1024 * 1024 + 1),
             expect=problem(413, "Payload Too Large", "/echo/body"),
             expect_headers={"connection": "close"}),
        Case("path echo", "GET", "/echo/path/a%2Fb/c", 200,
             expect={"path": "/echo/path/a/b/c", "rest": "a/b/c"}),
        Case("context", "GET", "/context", 200, expect={"items": [["a", 1], ["b", "two"]]}),
    ]  # fmt: skip


def _responses() -> list[Case]:
    return [
        Case("json status", "GET", "/resp/json-status", 201, expect={"created": True},
             expect_headers={"x-extra": "1", "content-type": JSON}),
        Case("text", "GET", "/resp/text", 200, expect="plain é".encode(),
             expect_headers={"content-type": "text/plain; charset=utf-8"}),
        Case("html", "GET", "/resp/html", 200, expect=b"<h1>hi</h1>",
             expect_headers={"content-type": "text/html; charset=utf-8"}),
        Case("binary", "GET", "/resp/binary", 200, expect=bytes(range(256)),
             expect_headers={"content-type": "application/x-test", "content-length": "256"}),
        Case("file", "GET", "/resp/file", 200, expect=b"hello from a file\n",
             expect_headers={"content-disposition": 'attachment; filename="hello.txt"'}),
        Case("redirect", "GET", "/resp/redirect", 302, expect=b"",
             expect_headers={"location": "/"}),
        Case("redirect permanent", "GET", "/resp/redirect-permanent", 301,
             expect_headers={"location": "/"}),
        Case("redirect 307", "GET", "/resp/redirect-307", 307,
             expect_headers={"location": "/target?x=1"}),
        Case("no content", "GET", "/resp/no-content", 204, expect=b"", absent=("content-length",)),
        Case("created", "POST", "/resp/created", 201, expect={"id": 7},
             expect_headers={"location": "/things/7"}),
        Case("xml", "GET", "/resp/xml", 200,
             expect=b'<?xml version="1.0" encoding="UTF-8"?><root><user><name>A &amp; B</name>'
                    b"<tags><item>x</item><item>y</item></tags></user></root>"),
        Case("xml string", "GET", "/resp/xml-str", 200, expect=b"<ok/>",
             expect_headers={"content-type": "application/xml; charset=utf-8"}),
        Case("custom", "GET", "/resp/custom", 202, expect=b"custom body",
             expect_headers={"content-type": "text/x-custom", "x-one": "2", "x-many": "b"}),
        Case("cookies", "GET", "/resp/cookies", 200, expect={"ok": True},
             expect_headers={"set-cookie": "theme=dark; Path=/; SameSite=Strict"}),
        Case("cookie expires", "GET", "/resp/cookie-expires", 200,
             expect_headers={
                 "set-cookie": "at=1; Expires=Mon, 06 May 2030 07:08:07 GMT; Path=/app; "
                               "Domain=example.com; SameSite=Lax",
                 "x-refused": "expires",
             }),
        Case("cookie expires string", "GET", "/resp/cookie-expires", 200,
             expect_headers={"set-cookie": "fixed=2; Expires=Sun, 06 Nov 1994 08:49:37 GMT; Path=/"}),
        Case("stream sync", "GET", "/resp/stream-sync", 200, expect=b"chunk0;chunk1;chunk2;",
             absent=("content-length",)),
        Case("stream async", "GET", "/resp/stream-async", 200, expect=b"a0;a1;a2;"),
        Case("stream list", "GET", "/resp/stream-list", 200, expect=b"xyz"),
        Case("stream empty", "GET", "/resp/stream-empty", 200, expect=b""),
    ]  # fmt: skip


_RETURNS: dict[str, tuple[int, str, Any]] = {
    "dict": (200, JSON, {"a": 1, "b": [1, 2.5, None, True]}),
    "list": (200, JSON, [1, "two", {"three": 3}]),
    "str": (200, JSON, "hello"),
    "bytes": (200, "application/octet-stream", b"raw\x00bytes"),
    "none": (200, JSON, b"null"),
    "int": (200, JSON, 42),
    "float": (200, JSON, 1.5),
    "bool": (200, JSON, b"false"),
    "tuple2": (201, JSON, {"created": True}),
    "tuple3": (201, JSON, {"created": True}),
    "tuple-response": (418, "text/plain; charset=utf-8", b"teapot"),
    "dataclass": (200, JSON, b'{"x":1,"y":2,"label":"p"}'),
    "pydantic": (200, JSON, b'{"name":"Ada","age":36,"joined":"1843-01-01"}'),
    "datetime": (200, JSON, b'{"at":"2024-05-06T07:08:09.000123+00:00"}'),
    "uuid": (200, JSON, b'{"id":"00000000-0000-0000-0000-000000000001"}'),
    "enum": (200, JSON, b'{"color":"red"}'),
    "unicode": (200, JSON, '{"text":"é😀\\n\\"\\\\"}'.encode()),
    "floats": (200, JSON, b"[1e+16,1.5e-7,0.1,-0.0,null]"),
    "empty-dict": (200, JSON, b"{}"),
    "empty-list": (200, JSON, b"[]"),
    "large": (200, JSON, _json({"items": [{"id": i, "name": f"item-{i}"} for i in range(2000)]})),
}


def _returns() -> list[Case]:
    cases = []
    for prefix in ("/ret", "/ret-async"):
        for kind, (status, content_type, expected) in _RETURNS.items():
            cases.append(
                Case(f"return {kind} via {prefix}", "GET", f"{prefix}/{kind}", status,
                     expect=expected, expect_headers={"content-type": content_type})
            )  # fmt: skip
    cases.append(Case("return tuple headers", "GET", "/ret/tuple3", 201,
                      expect_headers={"x-tuple": "yes"}))  # fmt: skip
    cases.append(Case("unknown return kind", "GET", "/ret/zzz", 404,
                      expect=problem(404, "Not Found", "/ret/zzz", "no return kind zzz")))  # fmt: skip
    return cases


def _errors() -> list[Case]:
    generic = "The server encountered an unexpected error."
    return [
        Case("sync exception", "GET", "/error/sync", 500,
             expect=problem(500, "Internal Server Error", "/error/sync", generic)),
        Case("async exception", "GET", "/error/async", 500,
             expect=problem(500, "Internal Server Error", "/error/async", generic)),
        Case("http exception", "GET", "/error/http", 403,
             expect=problem(403, "Forbidden", "/error/http", "not for you"),
             expect_headers={"x-reason": "policy"}),
        Case("exception handler", "GET", "/error/teapot", 418, expect={"teapot": "short and stout"}),
        Case("bad return", "GET", "/error/bad-return", 500),
        Case("unserializable", "GET", "/error/unserializable", 500),
        Case("header injection refused", "GET", "/error/header-injection", 500,
             absent=("x-evil", "set-cookie")),
        Case("server survives", "GET", "/", 200, expect={"message": "Hello, World!"}),
    ]  # fmt: skip


CASES: list[Case] = (
    _routing() + _query() + _headers_and_bodies() + _responses() + _returns() + _errors()
)

_dupes = {c.name for c in CASES if [d.name for d in CASES].count(c.name) > 1}
assert not _dupes, f"case names must be unique: {_dupes}"
