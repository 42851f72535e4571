"""Apps for the compression tests: every kind of body the layer decides on
(whole, streamed, server-sent events, a file, a mounted Starlette app's),
and a second app that compresses one blueprint only."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import random
import tempfile
from pathlib import Path

from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from cello import App, Blueprint, Response
from cello.middleware import CompressionConfig

ITEMS = {"items": [{"id": i, "name": f"item {i}", "tags": ["red", "blue"]} for i in range(300)]}
TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog\n" for i in range(200))
LINES = [f"chunk {i}: {'abc' * 40}\n" for i in range(30)]


def big_json() -> bytes:
    """About 1 MiB of varied JSON, the same in every process."""
    rng = random.Random(1234)
    rows = [
        {"id": i, "score": rng.random(), "word": "".join(rng.choices("abcdefghij", k=12))}
        for i in range(16_000)
    ]
    return json.dumps(rows).encode()


def file_for_streaming() -> Path:
    """A 171 kB text file (several of the server's read chunks), written
    where each process that imports this module finds the same bytes."""
    path = Path(tempfile.gettempdir()) / "cello-compression-test.txt"
    content = "".join(f"{i:06d} a file served in chunks, compressed as it streams\n"
                      for i in range(3000))  # fmt: skip
    if not path.exists() or path.read_text() != content:
        staging = path.with_suffix(f".{os.getpid()}")
        staging.write_text(content)
        staging.replace(path)
    return path


BIG = big_json()
FILE = file_for_streaming()

app = App()
app.enable_compression()

# Set by POST /release: the event stream sends its second event only then,
# so a test can prove the first one reached it before.
released = asyncio.Event()


@app.get("/json")
def items():
    return ITEMS


@app.get("/small")
def small():
    return {"ok": True}


@app.get("/sized/{n}")
def sized(request):
    return Response.text("x" * int(request.params["n"]))


@app.get("/png")
def png():
    return Response.binary(b"\x89PNG\r\n\x1a\n" + bytes(4000), content_type="image/png")


@app.get("/encoded")
def encoded():
    return Response(gzip.compress(TEXT.encode(), mtime=0), content_type="text/plain",
                    headers={"content-encoding": "gzip"})  # fmt: skip


@app.get("/no-transform")
def no_transform():
    return Response.text(TEXT, headers={"cache-control": "public, no-transform"})


@app.get("/partial")
def partial():
    return Response(TEXT[:3000], status=206, content_type="text/plain",
                    headers={"content-range": f"bytes 0-2999/{len(TEXT)}"})  # fmt: skip


@app.get("/vary")
def vary():
    return Response.json(ITEMS, headers={"vary": "Origin"})


@app.get("/etag")
def etag():
    return Response.json(ITEMS, headers={"etag": '"items-v1"'})


@app.get("/big")
def big():
    return Response(BIG, content_type="application/json")


@app.get("/stream")
def stream():
    return Response.stream(iter(LINES), content_type="text/plain")


@app.get("/stream-bytes")
def stream_bytes():
    return Response.stream(iter([b"\x00\x01" * 1000] * 3), content_type="application/octet-stream")


@app.get("/async-stream")
async def async_stream():
    async def lines():
        for line in LINES:
            yield line

    return Response.stream(lines(), content_type="text/plain")


@app.get("/file")
def file():
    return Response.file(FILE, content_type="text/plain")


@app.get("/events")
def events():
    async def source():
        yield "data: first\n\n"
        await released.wait()
        released.clear()
        yield "data: second\n\n"

    return Response.stream(source(), content_type="text/event-stream")


@app.post("/release")
def release():
    released.set()
    return {"released": True}


async def starlette_json(request):
    return JSONResponse(ITEMS)


async def starlette_stream(request):
    async def lines():
        for line in LINES:
            yield line

    return StreamingResponse(lines(), media_type="text/plain")


async def starlette_events(request):
    async def source():
        yield "data: first\n\n"
        await released.wait()
        released.clear()
        yield "data: second\n\n"

    return StreamingResponse(source(), media_type="text/event-stream")


async def starlette_small(request):
    return JSONResponse({"ok": True})


starlette = Starlette(
    routes=[
        Route("/json", starlette_json),
        Route("/stream", starlette_stream),
        Route("/events", starlette_events),
        Route("/small", starlette_small),
    ]
)
app.mount("/star", starlette)


# Compression for one blueprint only, with settings of its own.
scoped = App()
reports = Blueprint("/reports")
reports.use(CompressionConfig(min_size=100, encodings=["gzip"]))


@reports.get("/daily")
def daily():
    return ITEMS


@scoped.get("/plain")
def plain():
    return ITEMS


scoped.register_blueprint(reports)
