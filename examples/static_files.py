"""Static files: the folder ``examples/static/`` served from Rust under
``/static``, beside an ordinary route, the same through every door.

Run it with::

    python examples/static_files.py            # on 127.0.0.1:8000
    uvicorn examples.static_files:app          # or under any ASGI server

then::

    curl -i http://127.0.0.1:8000/static/                  # index.html
    curl -i http://127.0.0.1:8000/static/hello.txt         # ETag, Last-Modified, Cache-Control
    curl -i -H 'Range: bytes=0-4' http://127.0.0.1:8000/static/hello.txt      # 206
    curl -i -H 'If-None-Match: *' http://127.0.0.1:8000/static/hello.txt      # 304
    curl -i --path-as-is http://127.0.0.1:8000/static/../static_files.py      # 404
    curl -i http://127.0.0.1:8000/static/version           # a route under the prefix
"""

from pathlib import Path

from cello import App, StaticFilesConfig

app = App()
app.enable_static_files(
    StaticFilesConfig("/static", Path(__file__).parent / "static")
    .cache_str("1h")
    .header("X-Content-Type-Options", "nosniff")
)


# A path with no file under the prefix falls through to the routes.
@app.get("/static/version")
def version():
    return {"version": 1}


if __name__ == "__main__":
    app.run()
