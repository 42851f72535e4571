"""Every example app starts and answers as its docstring says."""

from __future__ import annotations

import httpx

from tests.live import LiveServer


def test_hello_example():
    with LiveServer("examples.hello:app") as live:
        assert httpx.get(live.url + "/").json() == {"message": "Hello, World!"}
        assert httpx.get(live.url + "/hello/Ada").json() == {"message": "Hello, Ada!"}
