"""Every example app starts and answers as its docstring says."""

from __future__ import annotations

import signal
import subprocess
import sys

import httpx

from tests.live import ROOT, LiveServer


def test_hello_example():
    with LiveServer("examples.hello:app") as live:
        assert httpx.get(live.url + "/").json() == {"message": "Hello, World!"}
        assert httpx.get(live.url + "/hello/Ada").json() == {"message": "Hello, Ada!"}


def test_production_example_runs_two_workers():
    with subprocess.Popen(
        [sys.executable, "examples/production.py", "--port", "0"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert "with 2 workers" in line
            url = line.split("running on ", 1)[1].split()[0]
            workers = set()
            for _ in range(200):
                with httpx.Client() as client:
                    workers.add(client.get(url + "/").json()["worker"])
                if len(workers) == 2:
                    break
            assert len(workers) == 2
            assert httpx.post(url + "/echo", json={"a": 1}).json() == {"received": {"a": 1}}
            assert httpx.post(url + "/echo", content=b"x" * 70_000).status_code == 413
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    assert process.returncode == 0


def test_middleware_example():
    from cello.testing import TestClient
    from examples.middleware import app

    with (
        LiveServer("examples.middleware:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            index = client.get("/", headers={"x-request-id": "abc"})
            assert index.json() == {"hello": "world", "request_id": "abc"}
            assert index.headers["x-request-id"] == "abc"
            assert index.headers["server-timing"].startswith("app;dur=")
            denied = client.get("/admin/stats")
            assert denied.status_code == 401
            assert denied.headers["www-authenticate"] == "Bearer"
            allowed = client.get("/admin/stats", headers={"authorization": "Bearer s3cret"})
            assert allowed.json() == {"requests": "many"}
            missing = client.get("/nowhere")
            assert missing.status_code == 404
            body = missing.json()
            assert body["path"] == "/nowhere"
            assert body["request_id"] == missing.headers["x-request-id"]
            assert "server-timing" in missing.headers


def test_compression_example():
    import brotli

    from cello.testing import TestClient
    from examples.compression import app

    with (
        LiveServer("examples.compression:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            products = client.get("/products", headers={"accept-encoding": "gzip, br, zstd"})
            assert products.headers["content-encoding"] == "zstd"
            assert products.headers["vary"] == "Accept-Encoding"
            assert len(products.json()["products"]) == 500
            with client.stream("GET", "/page", headers={"accept-encoding": "br"}) as page:
                raw = b"".join(page.iter_raw())
            assert page.headers["content-encoding"] == "br"
            assert brotli.decompress(raw).startswith(b"<!doctype html><table><tr>")
            plain = client.get("/products", headers={"accept-encoding": "identity"})
            assert "content-encoding" not in plain.headers
            assert plain.json() == products.json()
            tiny = client.get("/tiny", headers={"accept-encoding": "gzip"})
            assert "content-encoding" not in tiny.headers
            clock = client.get("/clock?count=2", headers={"accept-encoding": "gzip"})
            assert clock.headers["content-encoding"] == "gzip"
            assert clock.text.startswith("id: 0\ndata: ")
            assert clock.text.count("\n\n") == 2
