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


def test_static_files_example():
    from cello.testing import TestClient
    from examples.static_files import app
    from tests.test_static_files import raw_get

    hello = (ROOT / "examples" / "static" / "hello.txt").read_bytes()
    with (
        LiveServer("examples.static_files:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            index = client.get("/static/")
            assert index.status_code == 200
            assert index.headers["content-type"] == "text/html; charset=utf-8"
            assert b"Served from Rust" in index.content
            file = client.get("/static/hello.txt")
            assert file.content == hello
            assert file.headers["cache-control"] == "public, max-age=3600"
            assert file.headers["x-content-type-options"] == "nosniff"
            part = client.get("/static/hello.txt", headers={"range": "bytes=0-4"})
            assert (part.status_code, part.content) == (206, hello[:5])
            cached = client.get(
                "/static/hello.txt", headers={"if-none-match": file.headers["etag"]}
            )
            assert (cached.status_code, cached.content) == (304, b"")
            assert client.get("/static/css/site.css").headers["content-type"].startswith("text/css")
            assert client.get("/static/version").json() == {"version": 1}
            assert client.get("/static/%2e%2e/static_files.py").status_code == 404
        # What the docstring's `curl --path-as-is` sends: the climb itself.
        status, body = raw_get(live.port, "/static/../static_files.py")
        assert status == 404 and b"StaticFilesConfig" not in body
