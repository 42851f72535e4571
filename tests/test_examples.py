"""Every example app starts and answers as its docstring says."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import time

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


def test_caching_headers_example():
    with LiveServer("examples.caching_headers:app") as live:
        first = httpx.get(live.url + "/article", headers={"x-request-id": "ex-1"})
        assert first.status_code == 200
        tag = first.headers["etag"]
        again = httpx.get(live.url + "/article", headers={"if-none-match": tag})
        assert (again.status_code, again.content) == (304, b"")
        since = {"if-modified-since": "Wed, 02 Jul 2025 00:00:00 GMT"}
        assert httpx.get(live.url + "/feed", headers=since).status_code == 304
        assert httpx.get(live.url + "/feed").text == "entry 0\nentry 1\nentry 2\n"
        assert httpx.get(live.url + "/health").json() == {"status": "ok"}
        httpx.get(live.url + "/article", headers={"x-request-id": "ex-last"})
        for _ in range(500):
            if any("ex-last" in line for line in live.output):
                break
            time.sleep(0.01)
        entries = [json.loads(line) for line in live.output if line.startswith("{")]
        assert [(e["target"], e["status"]) for e in entries] == [
            ("/article", 200),
            ("/article", 304),
            ("/feed", 304),
            ("/feed", 200),
            ("/article", 200),
        ], "one line per request, /health skipped"
        assert entries[0]["request_id"] == "ex-1"
        assert entries[3]["size"] == len("entry 0\nentry 1\nentry 2\n")


def test_cors_example():
    from cello.testing import TestClient
    from examples.cors import app

    front = "https://app.example.com"
    with (
        LiveServer("examples.cors:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            preflight = client.options(
                "/api/notes",
                headers={
                    "origin": front,
                    "access-control-request-method": "POST",
                    "access-control-request-headers": "content-type, x-csrf-token",
                },
            )
            assert preflight.status_code == 204
            assert preflight.headers["access-control-allow-origin"] == front
            assert preflight.headers["access-control-allow-credentials"] == "true"
            assert preflight.headers["access-control-max-age"] == "3600"
            refused = client.options(
                "/api/notes",
                headers={
                    "origin": "https://app.example.com.evil.net",
                    "access-control-request-method": "POST",
                },
            )
            assert refused.status_code == 403
            assert refused.json()["detail"] == "CORS origin not allowed"
            assert "access-control-allow-origin" not in refused.headers
            notes = client.get("/api/notes", headers={"origin": front})
            assert notes.json()[:2] == [
                {"id": 1, "text": "buy milk"},
                {"id": 2, "text": "call home"},
            ]
            assert notes.headers["access-control-allow-origin"] == front
            assert notes.headers["access-control-expose-headers"] == "x-total"
            assert notes.headers["vary"] == "Origin"
            assert notes.headers["strict-transport-security"] == (
                "max-age=31536000; includeSubDomains"
            )
            assert notes.headers["content-security-policy"] == (
                "default-src 'self'; img-src 'self' data:; frame-ancestors 'self'; "
                "upgrade-insecure-requests"
            )
            assert notes.headers["permissions-policy"] == (
                "camera=(), microphone=(), geolocation=(self)"
            )
            embed = client.get("/embed")
            assert embed.headers["x-frame-options"] == "SAMEORIGIN"
            assert embed.headers["x-content-type-options"] == "nosniff"
            assert "access-control-allow-origin" not in embed.headers


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


def test_body_limit_example():
    from cello.testing import TestClient
    from examples.body_limit import app

    with (
        LiveServer("examples.body_limit:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            assert client.post("/notes", content=b"x" * 1024).status_code == 201
            refused = client.post("/notes", content=b"x" * 1025)
            assert refused.status_code == 413
            assert refused.json()["detail"] == "request body exceeds the limit of 1024 bytes"
            upload = client.post("/upload", content=b"x" * 200_000)
            assert upload.json() == {"received": 200_000}
            assert client.post("/upload", content=b"x" * (1024 * 1024 + 1)).status_code == 413


def test_rate_limit_example():
    from cello.testing import TestClient
    from examples.rate_limit import app

    # The live server runs the example with its two workers (RUN_OPTIONS).
    with (
        LiveServer("examples.rate_limit:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            statuses = [client.get("/api/quote").status_code for _ in range(6)]
            assert statuses == [200] * 5 + [429]
            refused = client.get("/api/quote")
            assert refused.json()["detail"] == "Rate limit exceeded. Please try again later."
            assert int(refused.headers["retry-after"]) >= 1
            health = client.get("/health")
            assert health.status_code == 200 and "x-ratelimit-limit" not in health.headers
            report = client.get("/reports/monthly", headers={"x-api-key": "k1"})
            assert report.json()["budget"]["remaining"] == 0
            assert client.get("/reports/monthly", headers={"x-api-key": "k1"}).status_code == 429
            assert client.get("/reports/monthly", headers={"x-api-key": "k2"}).status_code == 200


def test_caching_example():
    from cello.testing import TestClient
    from examples.caching import app

    with (
        LiveServer("examples.caching:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            first = client.get("/products")
            assert (first.headers["x-cache"], first.headers["cache-control"]) == (
                "MISS",
                "max-age=300",
            )
            hit = client.get("/products")
            assert hit.headers["x-cache"] == "HIT"
            assert hit.json() == first.json()
            not_modified = client.get("/products", headers={"if-none-match": first.headers["etag"]})
            assert not_modified.status_code == 304
            product = client.get("/products/1")
            assert product.headers["x-cache-tags"] == "products"
            assert product.headers["cache-control"] == "max-age=60"
            assert client.get("/products/1").json() == product.json()
            assert client.put("/products/1?price=12").json()["price"] == 12
            updated = client.get("/products/1")
            assert updated.headers["x-cache"] == "MISS"
            assert updated.json()["price"] == 12
            missing = client.get("/products/9")
            assert (missing.status_code, missing.headers["x-cache"]) == (404, "BYPASS")
            assert "x-cache" not in client.get("/health").headers


def test_auth_example():
    from cello.testing import TestClient
    from examples.auth import app

    with (
        LiveServer("examples.auth:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            wrong = client.post("/login", json={"username": "ada", "password": "nope"})
            assert wrong.status_code == 401
            login = client.post("/login", json={"username": "ada", "password": "lovelace"})
            assert login.status_code == 200, login.text
            bearer = {"authorization": f"Bearer {login.json()['access_token']}"}
            assert client.get("/me", headers=bearer).json() == {"sub": "ada", "roles": ["admin"]}
            assert client.get("/admin", headers=bearer).json() == {"admin": True}
            missing = client.get("/me")
            assert missing.status_code == 401
            assert missing.headers["www-authenticate"] == "Bearer"
            assert missing.json()["detail"] == "Missing authentication token"
            key = {"x-api-key": "svc-0f3c9a7e51"}
            assert client.get("/service/status", headers=key).json() == {"caller": "billing"}
            assert client.get("/service/status").json()["detail"] == "Missing API key"
            ops = client.get("/ops/stats", auth=("ops", "correct-horse"))
            assert ops.json() == {"operator": "ops"}
            refused = client.get("/ops/stats", auth=("ops", "wrong"))
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == 'Basic realm="Operations"'


def test_guards_example():
    from cello.testing import TestClient
    from examples.guards import app

    def claims(**values: object) -> dict[str, str]:
        return {"x-user": json.dumps(values)}

    with (
        LiveServer("examples.guards:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            assert client.get("/articles").status_code == 200
            assert client.post("/articles").json()["detail"] == "Authentication required"
            reader = client.post("/articles", headers=claims(sub="ann", roles=["reader"]))
            assert reader.status_code == 403
            assert reader.json()["detail"] == "Requires one of roles: editor, admin"
            editor = client.post("/articles", headers=claims(sub="bo", roles="editor"))
            assert (editor.status_code, editor.json()["by"]) == (201, "bo")
            suspended = client.get("/articles", headers=claims(sub="x", suspended=True))
            assert (suspended.status_code, suspended.json()["detail"]) == (403, "Account suspended")
            assert client.get("/signup").status_code == 200
            assert client.get("/signup", headers=claims(sub="ann")).status_code == 403
            auditor = claims(sub="cy", roles=["admin"], permissions=["audit:read"])
            assert client.get("/admin/audit", headers=auditor).json() == {"entries": []}
            refused = client.get("/admin/audit", headers=claims(sub="cy", roles=["admin"]))
            assert refused.json()["detail"] == "Missing required permissions: audit:read"
            for _ in range(5):
                assert client.get("/search?fail=1").status_code == 500
            tripped = client.get("/search")
            assert tripped.status_code == 503
            assert tripped.json()["detail"] == "Service temporarily unavailable"
            assert 1 <= int(tripped.headers["retry-after"]) <= 30


def test_sessions_example():
    import re

    from cello.testing import TestClient
    from examples.sessions import app

    def remember(jar: dict[str, str], response: httpx.Response) -> None:
        # The cookies are Secure, which an httpx jar keeps off plain HTTP.
        for cookie in response.headers.get_list("set-cookie"):
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                jar.pop(name, None)
            else:
                jar[name] = value

    def send(client, jar, method, path, headers=None, **kwargs):
        cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
        headers = {**(headers or {}), "cookie": cookie}
        response = client.request(method, path, headers=headers, **kwargs)
        remember(jar, response)
        return response

    with (
        LiveServer("examples.sessions:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            jar: dict[str, str] = {}
            home = send(client, jar, "GET", "/")
            token = jar["_csrf"]
            assert f'name="_csrf" value="{token}"' in home.text
            assert f'<meta name="csrf-token" content="{token}">' in home.text
            login = {"username": "ada", "password": "lovelace"}
            refused = send(client, jar, "POST", "/login", data=login)
            assert refused.status_code == 403
            assert refused.json()["detail"] == "CSRF token validation failed"
            wrong = send(
                client, jar, "POST", "/login", data={**login, "password": "x", "_csrf": token}
            )
            assert wrong.status_code == 401
            assert "session_id" not in jar
            # A planted session id is not adopted, and login moves to a new one anyway.
            jar["session_id"] = "planted"
            done = send(client, jar, "POST", "/login", data={**login, "_csrf": token})
            assert done.status_code == 303 and done.headers["location"] == "/"
            assert re.fullmatch(r"[A-Za-z0-9_-]{43}\.[A-Za-z0-9_-]{43}", jar["session_id"])
            assert "Hello, ada (visit 1)" in send(client, jar, "GET", "/").text
            assert "Hello, ada (visit 2)" in send(client, jar, "GET", "/").text
            assert send(client, jar, "GET", "/api/me").json() == {
                "user": "ada",
                "csrf_token": token,
            }
            note = send(client, jar, "POST", "/api/notes", json={"text": "hi"},
                        headers={"x-csrf-token": token})  # fmt: skip
            assert note.json() == {"notes": ["hi"]}
            out = send(client, jar, "POST", "/logout", data={"_csrf": token})
            assert out.status_code == 303
            assert "session_id" not in jar
            assert send(client, jar, "GET", "/api/me").json()["user"] is None


def test_uploads_example(tmp_path, monkeypatch):
    from cello.testing import TestClient
    from examples import uploads

    native_dir, asgi_dir = tmp_path / "native", tmp_path / "asgi"
    monkeypatch.setattr(uploads, "STORE", asgi_dir)
    with (
        LiveServer("examples.uploads:app", env={"UPLOADS_DIR": str(native_dir)}) as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(uploads.app) as asgi,
    ):
        for client, store in ((native, native_dir), (asgi, asgi_dir)):
            sent = client.post(
                "/documents", data={"title": "Notes"}, files={"doc": ("../../note.TXT", b"hello")}
            )
            assert sent.status_code == 201, sent.text
            doc = sent.json()
            assert doc["title"] == "Notes" and doc["filename"] == "../../note.TXT"
            assert doc["size"] == 5
            assert (store / f"{doc['id']}.txt").read_bytes() == b"hello"
            assert client.get("/documents").json() == [doc]
            big = client.post(
                "/documents", files={"doc": ("big.txt", b"x" * (2 * 1024 * 1024 + 1))}
            )
            assert big.status_code == 413
            assert big.json()["detail"] == 'file "doc" exceeds the limit of 2097152 bytes per file'
            wrong = client.post("/documents", files={"doc": ("run.sh", b"#!/bin/sh")})
            assert wrong.status_code == 415
            assert client.post("/documents", data={"title": "x"}).status_code == 400
        assert [p.name for p in native_dir.iterdir()] == [
            f"{native.get('/documents').json()[0]['id']}.txt"
        ]


def test_background_tasks_example():
    from cello.testing import TestClient
    from examples.background_tasks import app

    def outbox(client: httpx.Client, expected: dict[str, list[str]]) -> dict[str, list[str]]:
        # The tasks run after the response: wait for them (bounded, not timed).
        for _ in range(3000):
            seen = client.get("/outbox").json()
            if seen == expected:
                break
            time.sleep(0.01)
        return seen

    with (
        LiveServer("examples.background_tasks:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            signup = client.post("/signup", json={"email": "ada@example.com"})
            assert (signup.status_code, signup.json()) == (
                202,
                {"status": "pending", "email": "ada@example.com"},
            )
            done = {"sent": ["Welcome, ada@example.com!"], "audit": ["signup ada@example.com"]}
            assert outbox(client, done) == done
            again = client.post("/signup", json={"email": "ada@example.com"})
            assert again.status_code == 409
            assert again.headers["content-type"] == "application/problem+json"
            assert again.json() == {
                "type": "/errors/conflict",
                "title": "Conflict",
                "status": 409,
                "detail": "ada@example.com has already signed up.",
                "instance": "/signup",
            }
            invalid = client.post("/signup", json={"email": "nope"})
            assert invalid.status_code == 422
            assert invalid.json()["errors"] == [{"field": "email", "message": "needs an @"}]
            assert client.post("/signup", content=b"{").json()["type"] == "/errors/bad-request"
            assert outbox(client, done) == done


def test_items_api_example():
    from cello.testing import TestClient
    from examples.items_api import app

    key = {"X-API-Key": "secret"}

    def changes(client: httpx.Client, expected: list[str]) -> list[str]:
        # The change log is written after the response: wait for it (bounded, not timed).
        for _ in range(3000):
            seen = client.get("/changes").json()["changes"]
            if seen == expected:
                break
            time.sleep(0.01)
        return seen

    with (
        LiveServer("examples.items_api:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            lamp = client.post("/items", json={"name": "lamp", "price": 25, "tags": ["home"]},
                               headers=key)  # fmt: skip
            assert lamp.status_code == 200
            item = lamp.json()
            assert item == {"name": "lamp", "price": 25.0, "tags": ["home"], "id": item["id"]}
            assert "supplier_cost" not in lamp.text
            item_id = item["id"]
            assert client.get(f"/items/{item_id}").json() == item
            assert client.get("/items?tag=home&limit=1").json()[0]["name"] == "lamp"
            assert client.get("/items?limit=0").status_code == 422
            bad = client.get("/items/abc")
            assert bad.status_code == 422
            assert bad.json()["detail"][0]["loc"] == ["path", "item_id"]
            assert client.get("/items/999999").status_code == 404
            invalid = client.post("/items", json={"name": "", "price": -1}, headers=key)
            assert [e["loc"] for e in invalid.json()["detail"]] == [
                ["body", "name"],
                ["body", "price"],
            ]
            assert client.post("/items", json={"name": "x", "price": 1}).status_code == 401
            put = client.put(f"/items/{item_id}", json={"name": "desk lamp", "price": 30},
                             headers=key)  # fmt: skip
            assert put.json()["name"] == "desk lamp"
            assert client.delete(f"/items/{item_id}").status_code == 401
            assert client.delete(f"/items/{item_id}", headers=key).status_code == 204
            assert client.get(f"/items/{item_id}").status_code == 404
            expected = [f"created {item_id}", f"replaced {item_id}", f"deleted {item_id}"]
            assert changes(client, expected)[-3:] == expected


def _activity(client: httpx.Client, done) -> dict[str, list[str]]:
    """The Bookshelf's /activity once ``done(activity)`` holds: what it
    shows runs after the responses (bounded, not timed)."""
    for _ in range(3000):
        seen = client.get("/activity").json()
        if done(seen):
            break
        time.sleep(0.01)
    return seen


def _a_book_id(client: httpx.Client) -> int:
    """A book on the Bookshelf (the in-process app may have served other
    tests, which remove books too)."""
    return client.get("/books", params={"limit": 1}).json()[0]["id"]


PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))


def test_openapi_api_example(tmp_path, monkeypatch):
    from openapi_spec_validator import validate

    from cello.testing import TestClient
    from examples.openapi_api import app

    native_dir, asgi_dir = tmp_path / "native", tmp_path / "asgi"
    with LiveServer("tests.apps.catalogue:app") as catalogue:
        monkeypatch.setenv("BOOKSHELF_CATALOG_URL", catalogue.url)
        monkeypatch.setenv("BOOKSHELF_COVERS_DIR", str(asgi_dir))
        env = {"BOOKSHELF_CATALOG_URL": catalogue.url, "BOOKSHELF_COVERS_DIR": str(native_dir)}
        with (
            LiveServer("examples.openapi_api:app", env=env) as live,
            httpx.Client(base_url=live.url) as native,
            TestClient(app) as asgi,
        ):
            doors = ((native, native_dir), (asgi, asgi_dir))
            for client, covers in doors:
                _exercise_bookshelf(client, covers, validate)
            # The catalogue is gone: a 502 problem.
            catalogue.stop()
            for client, _ in doors:
                book_id = _a_book_id(client)
                failed = client.get(f"/books/{book_id}/lookup")
                assert failed.status_code == 502
                assert failed.headers["content-type"] == "application/problem+json"
                assert failed.json() == {
                    "type": "/problems/catalogue",
                    "title": "Catalogue failed",
                    "status": 502,
                    "detail": "ClientConnectionError",
                    "instance": f"/books/{book_id}/lookup",
                }


def _exercise_bookshelf(client: httpx.Client, covers, validate) -> None:
    document = client.get("/openapi.json").json()
    validate(document)
    assert document["info"]["title"] == "Bookshelf"
    assert set(document["paths"]) == {
        "/",
        "/activity",
        "/books",
        "/books/{book_id}",
        "/books/{book_id}/cover",
        "/books/{book_id}/lookup",
        "/admin/books/{book_id}",
    }
    upload = document["paths"]["/books/{book_id}/cover"]["post"]
    assert list(upload["requestBody"]["content"]) == ["multipart/form-data"]
    assert {"201", "400", "404", "413", "415"} <= set(upload["responses"])
    assert client.get("/docs").status_code == 200
    assert client.get("/redoc").status_code == 200
    books = client.get("/books", params={"author": "Octavia E. Butler"}).json()
    assert [b["title"] for b in books] == ["Kindred"]
    assert client.get("/books", params={"limit": 0}).status_code == 422

    # Adding a book: 201, then (after the response) its announcement, a
    # background task, and its session committed, a generator dependency.
    new = {"title": "Parable of the Sower", "author": "Octavia E. Butler", "year": 1993}
    # The sessions so far (the in-process app may have served other tests):
    # this request's shows as a change of the list, its newest entry.
    before = client.get("/activity").json()["sessions"]
    added = client.post("/books", json=new)
    assert added.status_code == 201
    book = added.json()
    assert added.headers["location"] == f"/books/{book['id']}"
    assert client.get(f"/books/{book['id']}").json() == book
    announced = "New on the shelf: Parable of the Sower by Octavia E. Butler"
    seen = _activity(client, lambda a: announced in a["announcements"] and a["sessions"] != before)
    assert announced in seen["announcements"]
    assert seen["sessions"][-1].endswith(" committed")

    # The same title again: a 409 problem, and that session rolled back.
    before = seen["sessions"]
    again = client.post("/books", json={**new, "title": "parable of the sower"})
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json() == {
        "type": "/problems/duplicate-title",
        "title": "Duplicate title",
        "status": 409,
        "detail": f"'Parable of the Sower' is on the shelf already, as book {book['id']}",
        "instance": "/books",
        "existing": f"/books/{book['id']}",
    }
    rolled_back = _activity(client, lambda a: a["sessions"] != before)
    assert rolled_back["sessions"][-1].endswith(" rolled back (ProblemDetails)")
    assert rolled_back["announcements"].count(announced) == 1

    # The HTML page escapes what clients send.
    script = {"title": "<script>alert(1)</script>", "author": "Mallory", "year": 2024}
    hostile = client.post("/books", json=script).json()
    page = client.get("/")
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<cite>Parable of the Sower</cite>" in page.text
    assert "<cite>&lt;script&gt;alert(1)&lt;&#x2f;script&gt;</cite>" in page.text
    assert "<script>" not in page.text

    # A cover: checked by content, saved under the book's id.
    cover_url = f"/books/{book['id']}/cover"
    stored = client.post(cover_url, files={"image": ("../../x.txt", PNG, "text/plain")})
    assert stored.status_code == 201, stored.text
    assert stored.json() == {"book_id": book["id"], "media_type": "image/png", "size": len(PNG)}
    assert (covers / f"{book['id']}.png").read_bytes() == PNG
    big = client.post(cover_url, files={"image": ("big.png", PNG + bytes(512 * 1024))})
    assert big.status_code == 413
    assert big.json()["detail"] == 'file "image" exceeds the limit of 524288 bytes per file'
    text = client.post(cover_url, files={"image": ("cover.png", b"not an image", "image/png")})
    assert text.status_code == 415
    assert text.headers["content-type"] == "application/problem+json"
    assert text.json()["detail"] == "A cover must be a PNG or a JPEG image."
    assert client.post(cover_url, files={"picture": ("c.png", PNG)}).status_code == 400
    assert client.post(cover_url, json={"image": "x"}).status_code == 415
    assert client.post("/books/1000000/cover", files={"image": ("c.png", PNG)}).status_code == 404
    assert [p.name for p in covers.iterdir()] == [f"{book['id']}.png"]

    # The catalogue, through AsyncClient: an entry, and one it lacks.
    entry = client.get(f"/books/{book['id']}/lookup")
    assert entry.json() == {
        "isbn": "978-0-941423-99-2",
        "publisher": "Four Walls Eight Windows",
        "pages": 299,
    }
    unknown = client.get(f"/books/{hostile['id']}/lookup")
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "The catalogue does not know '<script>alert(1)</script>'"
    assert client.get("/books/1000000/lookup").status_code == 404
    garbled = client.post("/books", json={"title": "Garbled", "author": "A", "year": 1}).json()
    unusable = client.get(f"/books/{garbled['id']}/lookup")
    assert unusable.status_code == 502
    assert unusable.json()["detail"] == "Unusable answer: 3 validation errors for CatalogueEntry"

    # The librarian removes the books again.
    for added_id in (book["id"], hostile["id"], garbled["id"]):
        assert client.delete(f"/admin/books/{added_id}").status_code == 401
        key = {"X-API-Key": "librarian-key"}
        assert client.delete(f"/admin/books/{added_id}", headers=key).status_code == 204
        missing = client.get(f"/books/{added_id}")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/problem+json"


def test_openapi_api_example_without_a_catalogue(monkeypatch):
    from cello.testing import TestClient
    from examples.openapi_api import app

    monkeypatch.delenv("BOOKSHELF_CATALOG_URL", raising=False)
    with (
        LiveServer("examples.openapi_api:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            book_id = _a_book_id(client)
            refused = client.get(f"/books/{book_id}/lookup")
            assert refused.status_code == 503
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json() == {
                "type": "/problems/catalogue",
                "title": "No catalogue",
                "status": 503,
                "detail": "Set BOOKSHELF_CATALOG_URL to look books up.",
                "instance": f"/books/{book_id}/lookup",
            }


def test_openapi_api_example_with_a_silent_catalogue(monkeypatch):
    from cello.testing import TestClient
    from examples.openapi_api import app

    # It listens (the kernel completes the connection) and never answers.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        env = {
            "BOOKSHELF_CATALOG_URL": f"http://127.0.0.1:{silent.getsockname()[1]}",
            "BOOKSHELF_CATALOG_TIMEOUT": "0.2",
        }
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        with (
            LiveServer("examples.openapi_api:app", env=env) as live,
            httpx.Client(base_url=live.url) as native,
            TestClient(app) as asgi,
        ):
            for client in (native, asgi):
                book_id = _a_book_id(client)
                late = client.get(f"/books/{book_id}/lookup")
                assert late.status_code == 504
                assert late.headers["content-type"] == "application/problem+json"
                assert late.json() == {
                    "type": "/problems/catalogue",
                    "title": "Catalogue timeout",
                    "status": 504,
                    "detail": "No answer in time.",
                    "instance": f"/books/{book_id}/lookup",
                }


# -- templates and the outgoing HTTP client (issue 20) --------------------------------


def test_templates_example(monkeypatch):
    from cello.testing import TestClient
    from examples.templates_app import NOTES, app

    # Each door starts from the one example note (the native server is
    # another process; the in-process app gets a fresh list).
    monkeypatch.setattr("examples.templates_app.NOTES", list(NOTES))
    with (
        LiveServer("examples.templates_app:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            home = client.get("/")
            assert home.status_code == 200
            assert home.headers["content-type"] == "text/html; charset=utf-8"
            assert "<h1>1 note</h1>" in home.text
            assert "<strong>Ada</strong>: Templates render in Rust." in home.text
            token = client.cookies["_csrf"]
            assert f'<input type="hidden" name="_csrf" value="{token}">' in home.text
            assert f'<meta name="csrf-token" content="{token}">' in home.text
            assert client.post("/notes", data={"author": "x", "text": "y"}).status_code == 403
            empty = client.post("/notes", data={"author": "", "text": "", "_csrf": token})
            assert empty.status_code == 422
            added = client.post(
                "/notes", data={"author": "bob", "text": "<script>x</script>", "_csrf": token}
            )
            assert added.status_code == 303
            page = client.get("/").text
            assert "<h1>2 notes</h1>" in page
            assert "&lt;script&gt;x&lt;&#x2f;script&gt;" in page
            assert "<script>" not in page
            assert client.get("/notes/1.txt").text == "bob wrote: <script>x</script>"
            assert client.get("/notes/9.txt").status_code == 404
            about = client.get("/about").text
            assert 'href="&#x2f;about" aria-current="page"' in about


def test_http_client_example(monkeypatch):
    from cello.testing import TestClient
    from examples.http_client import app

    expected = [{"name": "Ada", "orders_total": 42.5}, {"name": "Grace", "orders_total": 7.25}]
    with LiveServer("examples.http_client:app") as live:
        # Door 1: the app calls itself through its own server.
        assert httpx.get(live.url + "/dashboard").json() == expected
        # Door 2: in process, calling the live server as its backend.
        monkeypatch.setenv("BACKEND_URL", live.url)
        with TestClient(app) as asgi:
            assert asgi.get("/dashboard").json() == expected
    # The backend is gone now: a 502 problem.
    with TestClient(app) as asgi:
        failed = asgi.get("/dashboard")
        assert failed.status_code == 502
        assert failed.headers["content-type"] == "application/problem+json"
        assert failed.json()["detail"] == "the backend did not answer: ClientConnectionError"


# -- server-sent events (issue 21) -------------------------------------------------


def test_sse_example():
    from cello.testing import TestClient
    from examples.sse import app
    from tests.test_sse import parse

    with LiveServer("examples.sse:app") as live, httpx.Client(base_url=live.url) as client:
        with client.stream("GET", "/chat/feed") as feed:
            assert feed.headers["content-type"] == "text/event-stream; charset=utf-8"
            chunks = feed.iter_text()
            seen = ""
            while "retry: 2000" not in seen:
                seen += next(chunks)
            assert seen.startswith(": 0 messages so far\n\n")
            posted = client.post("/chat", json={"who": "ada", "text": "hello\nworld"})
            assert posted.json() == {"id": 1}
            while "data: " not in seen:
                seen += next(chunks)
            while not seen.endswith("\n\n"):
                seen += next(chunks)
        assert parse(seen)[-1] == {
            "id": "1",
            "event": "message",
            "data": '{"who":"ada","text":"hello\\nworld"}',
        }
        assert client.post("/chat", json={"who": "bob", "text": "hi"}).json() == {"id": 2}
        # A reconnecting client that saw event 1 gets event 2 only.
        with client.stream("GET", "/chat/feed", headers={"Last-Event-ID": "1"}) as feed:
            seen = ""
            chunks = feed.iter_text()
            while "data: " not in seen or not seen.endswith("\n\n"):
                seen += next(chunks)
        assert [e["data"] for e in parse(seen)] == ['{"who":"bob","text":"hi"}']
    with TestClient(app) as asgi:
        ticks = parse(asgi.get("/clock?ticks=2").text)
        assert [json.loads(t["data"])["n"] for t in ticks] == [1, 2]
        assert {t["event"] for t in ticks} == {"tick"}


# -- WebSocket (issue 21) ---------------------------------------------------------


def test_websocket_chat_example():
    from cello.testing import TestClient
    from examples.websocket_chat import app

    with TestClient(app) as client:
        # The documented chat: each message reaches the other clients only.
        with client.websocket_connect("/ws/chat") as a, client.websocket_connect("/ws/chat") as b:
            assert a.receive_text() == "Welcome!"
            assert b.receive_text() == "Welcome!"
            a.send_text("hello")
            assert b.receive_text() == "User: hello"
            b.send_text("hi")
            assert a.receive_text() == "User: hi"
        # Rooms: joins, messages (to every member) and leaves, as JSON.
        with client.websocket_connect("/rooms/lobby?name=ada") as ada:
            with client.websocket_connect("/rooms/lobby?name=bob") as bob:
                assert ada.receive_json() == {"event": "joined", "who": "bob"}
                assert client.get("/rooms/lobby").json() == {"room": "lobby", "members": 2}
                bob.send_text("hey")
                assert ada.receive_json() == {"event": "message", "who": "bob", "text": "hey"}
                assert bob.receive_json() == {"event": "message", "who": "bob", "text": "hey"}
            assert ada.receive_json() == {"event": "left", "who": "bob"}
        with client.websocket_connect("/rooms/other?name=cy") as cy:
            cy.send_text("alone")
            assert cy.receive_json() == {"event": "message", "who": "cy", "text": "alone"}


def test_websocket_hosted_example():
    import asyncio

    import websockets

    with LiveServer("examples.websocket_hosted:app") as live:
        assert httpx.get(live.url + "/").json() == {"websocket": "/live/echo"}

        async def talk() -> list[str]:
            url = live.url.replace("http://", "ws://") + "/live/echo"
            async with websockets.connect(url) as ws:
                replies = []
                for word in ("hello", "cello"):
                    await ws.send(word)
                    replies.append(str(await ws.recv()))
                return replies

        assert asyncio.run(asyncio.wait_for(talk(), 20)) == ["HELLO", "CELLO"]


def test_health_example():
    with LiveServer("examples.health:app") as live, httpx.Client(base_url=live.url) as client:
        live_probe = client.get("/health/live")
        assert live_probe.status_code == 200
        assert live_probe.json()["status"] == "UP"
        assert client.get("/health/startup").json()["started"] is True
        report = client.get("/health").json()
        assert (report["status"], report["version"]) == ("UP", "1.4.2")
        assert report["checks"]["database"]["details"] == {"pool": {"size": 10, "idle": 9}}
        key = {"X-API-Key": "demo-key"}
        assert client.post("/queue/fill").status_code == 401  # the API is keyed
        assert client.post("/queue/fill", headers=key).json() == {"depth": 3}
        degraded = _until(lambda: client.get("/health"), lambda r: r.json()["status"] != "UP")
        assert (degraded.status_code, degraded.json()["status"]) == (200, "DEGRADED")
        assert degraded.json()["checks"]["queue"]["details"] == {"depth": 3}
        assert client.post("/db/stop", headers=key).status_code == 200
        ready = _until(lambda: client.get("/health/ready"), lambda r: r.status_code != 200)
        assert (ready.status_code, ready.json()["ready"]) == (503, False)
        assert ready.json()["checks"]["database"]["message"] == "no connection"
        assert client.get("/liveness").status_code == 200


def _until(get, done, deadline: float = 20):
    """``get()`` again until ``done`` says yes (the example caches results 1 s)."""
    stop = time.monotonic() + deadline
    while not done(answer := get()) and time.monotonic() < stop:
        time.sleep(0.1)
    return answer


# -- OpenTelemetry tracing (issue 22) -----------------------------------------------


def test_telemetry_example():
    from tests.otlp import HttpReceiver

    with HttpReceiver() as receiver:
        env = {"OTLP_ENDPOINT": receiver.endpoint + "/v1/traces"}
        with LiveServer("examples.telemetry:app", env=env) as live:
            answer = httpx.get(live.url + "/checkout/42", timeout=10)
            assert answer.json() == {"order": {"id": "42", "items": 3}, "traced": True}
            assert httpx.get(live.url + "/health").json() == {"status": "ok"}
            assert live.stop() == 0  # the graceful stop exports what is pending
        spans = {(s.name, s.kind): s for s in receiver.received.spans}
        assert set(spans) == {
            ("GET /checkout/{order_id}", "SERVER"),
            ("GET", "CLIENT"),
            ("GET /orders/{order_id}", "SERVER"),
            ("load-order", "INTERNAL"),
        }
        assert len({s.trace_id for s in spans.values()}) == 1
        assert spans["GET /orders/{order_id}", "SERVER"].parent_span_id == (
            spans["GET", "CLIENT"].span_id
        )
        assert spans["load-order", "INTERNAL"].resource["service.name"] == "orders-example"


def test_https_example(tmp_path):
    import ssl

    import trustme

    ca = trustme.CA()
    issued = ca.issue_cert("127.0.0.1")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    with subprocess.Popen(
        [sys.executable, "examples/https.py", "--port", "0", "--no-logs",
         "--tls-cert", str(cert), "--tls-key", str(key)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    ) as process:  # fmt: skip
        try:
            assert process.stdout is not None
            url = process.stdout.readline().split("running on ", 1)[1].split()[0]
            assert url.startswith("https://")
            context = ssl.create_default_context()
            ca.configure_trust(context)
            with httpx.Client(verify=context, http2=True) as client:
                response = client.get(url + "/")
            assert response.http_version == "HTTP/2"
            assert response.json() == {"scheme": "https", "http_version": "2", "client_cert": None}
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(30)
    assert process.returncode == 0


# -- HTTP/3 (issue 22) -------------------------------------------------------------


def test_http3_example(tmp_path):
    from tests.h3client import get, make_certs

    certs = make_certs(tmp_path)
    env = {"CELLO_CERT": str(certs.cert), "CELLO_KEY": str(certs.key)}
    with LiveServer("examples.http3:app", env=env) as live:
        # TCP is HTTPS from the same certificate.
        trust = ssl.create_default_context(cafile=str(certs.ca))
        over_tcp = httpx.get(live.url + "/", verify=trust)
        assert over_tcp.json() == {"hello": "world", "http_version": "1.1"}
        assert over_tcp.headers["alt-svc"] == f'h3=":{live.port}"; ma=86400'
        over_h3 = get(live.port, certs.ca, "/")
        assert over_h3.json() == {"hello": "world", "http_version": "3"}
        posted = get(live.port, certs.ca, "/echo", method="POST", body=b"12345")
        assert posted.json() == {"received": 5}


def test_metrics_example():
    from prometheus_client.parser import text_string_to_metric_families

    from cello.testing import TestClient
    from examples.metrics import app

    # The live server runs the example with its two workers (RUN_OPTIONS).
    with (
        LiveServer("examples.metrics:app") as live,
        httpx.Client(base_url=live.url) as native,
        TestClient(app) as asgi,
    ):
        for client in (native, asgi):
            assert client.get("/orders/17").json() == {"order": 17, "status": "shipped"}
            assert client.get("/orders/18").status_code == 200
            assert client.post("/orders", json={"sku": "a"}).status_code == 201
            assert client.get("/no/such/page").status_code == 404
            assert client.get("/health").status_code == 200
            scrape = client.get("/metrics")
            assert scrape.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
            counts = {
                (s.labels["method"], s.labels["path"], s.labels["status"]): s.value
                for family in text_string_to_metric_families(scrape.text)
                for s in family.samples
                if s.name == "cello_http_requests_total"
            }
            assert counts == {
                ("GET", "/orders/{order_id}", "200"): 2,
                ("POST", "/orders", "201"): 1,
                ("GET", "<unmatched>", "404"): 1,
            }


def test_websocket_compression_example():
    import asyncio
    import json

    import websockets

    with LiveServer("examples.websocket_compression:app") as live:
        url = live.url.replace("http://", "ws://") + "/ws/prices?count=3"

        async def talk() -> tuple[str | None, list[int]]:
            async with websockets.connect(url) as ws:
                ticks = []
                for _ in range(3):
                    snapshot = json.loads(await ws.recv())
                    assert len(snapshot["rows"]) == 30
                    ticks.append(snapshot["tick"])
                    await ws.send("next")
                return ws.response.headers.get("Sec-WebSocket-Extensions"), ticks

        extension, ticks = asyncio.run(asyncio.wait_for(talk(), 20))
        assert extension == "permessage-deflate"
        assert ticks == [0, 1, 2]
