"""ETags, 304 Not Modified, and a JSON access log, the same in every door.

Run it with::

    python examples/caching_headers.py        # on 127.0.0.1:8000
    uvicorn examples.caching_headers:app      # or under any ASGI server

then::

    curl -i http://127.0.0.1:8000/article                    # note the ETag
    curl -i -H 'If-None-Match: "<that tag>"' http://127.0.0.1:8000/article   # 304
    curl -i -H 'If-Modified-Since: Wed, 02 Jul 2025 00:00:00 GMT' \\
         http://127.0.0.1:8000/feed                           # 304: not changed since
    curl -i http://127.0.0.1:8000/health                     # answered, not logged

Each request but /health prints one JSON line on standard output: time,
client, method, target, status, bytes sent, duration and request ID.
"""

from cello import App, Response

app = App()
app.enable_request_id()
app.enable_etag()
app.enable_logging(format="json")


@app.get("/article")
def article(request):
    return Response.text(
        "Conditional requests save bandwidth.\n", headers={"Cache-Control": "max-age=60"}
    )


@app.get("/feed")
def feed(request):
    async def entries():
        for n in range(3):
            yield f"entry {n}\n"

    # A stream has no whole body to hash; its date still answers If-Modified-Since.
    return Response.stream(
        entries(),
        content_type="text/plain",
        headers={"Last-Modified": "Tue, 01 Jul 2025 12:00:00 GMT"},
    )


@app.get("/health")
def health(request):
    return {"status": "ok"}


if __name__ == "__main__":
    app.run()
