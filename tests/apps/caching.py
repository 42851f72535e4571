"""Apps with the response cache: every handler counts its calls (read at
``/calls``, which is not cached), so tests can tell a hit from a miss by
more than its header."""

from __future__ import annotations

import os
from collections import Counter

from cello import App, Response, cache

EXCLUDED = ["/health", "/metrics", "/calls"]


def _counting(app: App) -> Counter[str]:
    calls: Counter[str] = Counter()

    def count(request) -> int:
        key = request.path + ("?" + request.query_string if request.query_string else "")
        calls[key] += 1
        return calls[key]

    @app.get("/calls")
    def read_calls(request):
        return dict(calls)

    @app.get("/page")
    def page(request):
        return {"page": request.query_string, "call": count(request)}

    @app.get("/health")
    def health(request):
        return {"call": count(request)}

    @app.get("/missing")
    def missing(request):
        return {"call": count(request)}, 404

    @app.get("/created")
    def created(request):
        return {"call": count(request)}, 201

    @app.get("/no-store")
    def no_store(request):
        return Response.json({"call": count(request)}, headers={"Cache-Control": "no-store"})

    @app.get("/private")
    def private(request):
        return Response.json({"call": count(request)}, headers={"Cache-Control": "private"})

    @app.get("/own-cache-control")
    def own(request):
        return Response.json(
            {"call": count(request)}, headers={"Cache-Control": "public, max-age=120"}
        )

    @app.get("/cookie")
    def cookie(request):
        response = Response.json({"call": count(request)})
        response.set_cookie("seen", "1")
        return response

    @app.get("/lang")
    def lang(request):
        language = request.headers.get("accept-language", "none")
        return Response.text(f"{language} {count(request)}", headers={"Vary": "Accept-Language"})

    @app.get("/stream")
    def stream(request):
        count(request)

        async def chunks():
            yield b"streamed"

        return Response.stream(chunks(), content_type="text/plain")

    @app.get("/short")
    @cache(ttl=1)
    def short(request):
        return {"call": count(request)}

    @app.get("/users")
    @cache(ttl=60, tags=["users", "lists"])
    async def users(request):
        return {"users": ["ada"], "call": count(request)}

    @app.get("/text")
    @cache(tags=["text"])
    def text(request):
        return f"text {count(request)}"

    @app.get("/bytes")
    @cache(ttl=30)
    def raw(request):
        return f"bytes {count(request)}".encode()

    @app.post("/invalidate")
    def invalidate(request):
        tags = request.query_params.get_all("tag")
        app.invalidate_cache(tags=tags)
        return {"invalidated": tags}

    return calls


app = App()
app.enable_caching(ttl=300, exclude_paths=EXCLUDED)
calls = _counting(app)

# The same app with ETags: hits pass back out through the ETag layer.
with_etag = App()
with_etag.enable_etag()
with_etag.enable_caching(ttl=300, exclude_paths=EXCLUDED)
with_etag_calls = _counting(with_etag)

# No enable_caching(): @cache caches its own routes and nothing else.
implicit = App()


@implicit.get("/plain")
def implicit_plain(request):
    return {"pid": os.getpid()}


@implicit.get("/decorated")
@cache(ttl=60)
def implicit_decorated(request):
    return {"pid": os.getpid()}


# Two workers: each has its own cache, an invalidation reaches both.
workers = App()
workers.enable_caching(ttl=300)


@workers.get("/pid")
@cache(tags=["pid"])
def worker_pid(request):
    return {"pid": os.getpid()}


@workers.post("/invalidate")
def worker_invalidate(request):
    workers.invalidate_cache(["pid"])
    return {"invalidated": ["pid"]}


# Compression and Python middleware around the cache.
compressed = App()
compressed.enable_compression(min_size=100)
compressed.enable_caching(ttl=300)
after_calls = {"count": 0}


@compressed.after_request
def stamp(request, response):
    after_calls["count"] += 1
    response.set_header("X-After", str(after_calls["count"]))


@compressed.get("/big")
def big(request):
    return Response.text("cached and compressed " * 200)
