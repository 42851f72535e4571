"""A FastAPI app exercising what ASGI servers must get right, for door 3."""

from __future__ import annotations

import asyncio
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import BackgroundTasks, Depends, FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, StreamingResponse
from pydantic import BaseModel

TASKS: list[str] = []


@asynccontextmanager
async def lifespan(app: FastAPI):
    yield {"db": "connected", "started": 1}


api = FastAPI(lifespan=lifespan)


class Item(BaseModel):
    name: str
    price: float
    tags: list[str] = []


class Teapot(Exception):
    pass


@api.exception_handler(Teapot)
async def teapot_handler(request: Request, exc: Teapot):
    return JSONResponse({"teapot": True}, status_code=418)


def common(q: str | None = None, limit: int = 10):
    return {"q": q, "limit": limit}


@api.get("/")
async def root():
    return {"framework": "fastapi"}


@api.get("/items/{item_id}")
async def read_item(item_id: int, params: dict = Depends(common)):
    return {"item_id": item_id, **params}


@api.post("/items")
async def create_item(item: Item):
    return {"created": item.model_dump()}


@api.get("/state")
async def state(request: Request):
    return {"db": request.state.db, "started": request.state.started}


@api.get("/url")
async def url(request: Request):
    return {
        "url_for": str(request.url_for("read_item", item_id=3)),
        "root_path": request.scope.get("root_path"),
        "path": request.url.path,
    }


@api.post("/background")
async def background(tasks: BackgroundTasks):
    tasks.add_task(TASKS.append, "done")
    return {"scheduled": True}


@api.get("/background/count")
async def background_count():
    # The task runs in a worker thread after the previous response was sent,
    # so on a fast server this request can arrive first: wait for it a while.
    for _ in range(200):
        if TASKS:
            break
        await asyncio.sleep(0.01)
    return {"count": len(TASKS)}


@api.get("/stream")
async def stream():
    async def chunks():
        for i in range(3):
            await asyncio.sleep(0)
            yield f"part{i};"

    return StreamingResponse(chunks(), media_type="text/plain")


@api.get("/file")
async def file():
    return FileResponse(Path(__file__).parent.parent / "http" / "hello.txt")


@api.get("/http-error")
async def http_error():
    raise HTTPException(status_code=404, detail="nothing here")


@api.get("/teapot")
async def teapot():
    raise Teapot()


@api.get("/crash")
async def crash():
    raise RuntimeError("fastapi handler failed")


@api.post("/echo-stream")
async def echo_stream(request: Request):
    # Only the total: how the body is cut into chunks is the transport's business.
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
    return {"size": size}


@api.get("/disconnected")
async def disconnected(request: Request):
    return {"disconnected": await request.is_disconnected()}


@api.get("/text")
async def text():
    return PlainTextResponse("plain")
