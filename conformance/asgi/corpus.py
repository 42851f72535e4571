"""Requests for the hosted FastAPI and Starlette apps, with expected statuses."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class HostedCase:
    name: str
    method: str
    path: str
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None


FASTAPI = [
    HostedCase("root", "GET", "/", 200),
    HostedCase("path and query params", "GET", "/items/5?q=x&limit=3", 200),
    HostedCase("dependency defaults", "GET", "/items/5", 200),
    HostedCase("path validation error", "GET", "/items/abc", 422),
    HostedCase("query validation error", "GET", "/items/5?limit=x", 422),
    HostedCase("body model", "POST", "/items", 200, [("content-type", "application/json")],
               b'{"name": "a", "price": 1.5, "tags": ["x"]}'),
    HostedCase("body validation error", "POST", "/items", 422, [("content-type", "application/json")],
               b'{"name": "a", "price": "x"}'),
    HostedCase("malformed json body", "POST", "/items", 422, [("content-type", "application/json")],
               b'{"name"'),
    HostedCase("missing body", "POST", "/items", 422),
    HostedCase("lifespan state", "GET", "/state", 200),
    HostedCase("url_for and root_path", "GET", "/url", 200),
    HostedCase("background task", "POST", "/background", 200),
    HostedCase("background task ran", "GET", "/background/count", 200),
    HostedCase("streaming response", "GET", "/stream", 200),
    HostedCase("file response", "GET", "/file", 200),
    HostedCase("http exception", "GET", "/http-error", 404),
    HostedCase("exception handler", "GET", "/teapot", 418),
    # uvicorn closes the connection after an app raises, even once its 500 is
    # sent; asking for the close keeps the next request off a dying connection.
    HostedCase("unhandled exception", "GET", "/crash", 500, [("connection", "close")]),
    HostedCase("unknown path", "GET", "/nope", 404),
    HostedCase("wrong method", "DELETE", "/", 405),
    HostedCase("request body streaming", "POST", "/echo-stream", 200, body=b"x" * 200_000),
    HostedCase("empty streamed body", "POST", "/echo-stream", 200, body=b""),
    HostedCase("is_disconnected", "GET", "/disconnected", 200),
    HostedCase("plain text", "GET", "/text", 200),
    HostedCase("head", "HEAD", "/text", 405),
    HostedCase("openapi schema", "GET", "/openapi.json", 200),
    HostedCase("swagger ui", "GET", "/docs", 200),
    HostedCase("redoc", "GET", "/redoc", 200),
    HostedCase("percent-encoded path", "GET", "/items/%35", 200),
    HostedCase("repeated query", "GET", "/items/1?q=a&q=b", 200),
]  # fmt: skip

STARLETTE = [
    HostedCase("root with lifespan state", "GET", "/", 200),
    HostedCase("path param", "GET", "/users/ada", 200),
    HostedCase("unicode path param", "GET", "/users/J%C3%B6rg", 200),
    HostedCase("echo get", "GET", "/echo?b=2&a=1&a=3", 200, [("x-test", "1"), ("x-test", "2")]),
    HostedCase("echo post body", "POST", "/echo", 200, body=b"hello" * 1000),
    HostedCase("echo put empty", "PUT", "/echo", 200, body=b""),
    HostedCase("method not allowed", "DELETE", "/echo", 405),
    HostedCase("streaming", "GET", "/stream", 200),
    HostedCase("url_for and root_path", "GET", "/url", 200),
    HostedCase("http exception", "GET", "/forbidden", 403),
    HostedCase("nested mount", "GET", "/sub/inner", 200),
    HostedCase("unknown", "GET", "/missing", 404),
    HostedCase("trailing slash redirect", "GET", "/users/ada/", 307),
]  # fmt: skip
