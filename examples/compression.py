"""Compression: JSON, HTML and a live event stream, compressed with zstd,
brotli or gzip as each client accepts, the same through every door.

Run it with::

    python examples/compression.py              # on 127.0.0.1:8000
    uvicorn examples.compression:app            # or under any ASGI server

then::

    curl -i --compressed http://127.0.0.1:8000/products            # curl picks the coding
    curl -s -H 'Accept-Encoding: gzip' http://127.0.0.1:8000/products | gunzip | head -c 200
    curl -sI -H 'Accept-Encoding: br' http://127.0.0.1:8000/page   # Content-Encoding: br
    curl -i -H 'Accept-Encoding: identity' http://127.0.0.1:8000/products  # as it is
    curl -i -H 'Accept-Encoding: gzip' http://127.0.0.1:8000/tiny  # under 1 KiB: as it is
    curl -N --compressed http://127.0.0.1:8000/clock               # one event a second
"""

import asyncio
import time

from cello import App, Response
from cello.middleware import CompressionConfig

app = App()
# The defaults (app.enable_compression() is the same with min_size=1024),
# spelled out: zstd, then brotli, then gzip when a client weighs them equally.
app.use(CompressionConfig(min_size=1024, gzip_level=6, brotli_level=4, zstd_level=3))

PRODUCTS = [
    {"id": i, "name": f"Product {i}", "price": round(9.99 + i * 0.5, 2), "in_stock": i % 3 != 0}
    for i in range(500)
]


@app.get("/products")
def products():
    return {"products": PRODUCTS}


@app.get("/page")
def page():
    rows = "".join(f"<tr><td>{p['name']}</td><td>{p['price']}</td></tr>" for p in PRODUCTS)
    return Response.html(f"<!doctype html><table>{rows}</table>")


@app.get("/tiny")
def tiny():
    return {"small": "bodies are not worth compressing"}


@app.get("/clock")
def clock(request):
    count = int(request.query.get("count", "10"))

    async def ticks():
        # Each event is compressed and flushed as it is sent: the client
        # sees it at once, not when the stream ends.
        for n in range(count):
            yield f"id: {n}\ndata: {time.time():.3f}\n\n"
            await asyncio.sleep(1)

    return Response.stream(ticks(), content_type="text/event-stream")


if __name__ == "__main__":
    app.run()
