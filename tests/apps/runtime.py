"""An app for server-runtime tests: PIDs, slow requests, failures on demand."""

import asyncio
import os
import threading
import time

from cello import App, LimitsConfig, TimeoutConfig

app = App()
started = 0

RUN_OPTIONS = {
    "timeout": TimeoutConfig(read_header=1, read_body=1, idle=2, handler=2, write=5),
    "limits": LimitsConfig(max_body_size=1024, max_header_size=4096, max_requests_per_connection=3),
}


@app.get("/pid")
def pid(request):
    return {"pid": os.getpid()}


@app.get("/loop-thread")
async def loop_thread(request):
    await asyncio.sleep(0)  # an awaiting handler runs as a Task on the loop
    return {"thread": threading.get_ident(), "main": threading.main_thread().ident}


@app.get("/sync-thread")
def sync_thread(request):
    return {"thread": threading.get_ident()}


@app.get("/slow")
async def slow(request):
    global started
    started += 1
    await asyncio.sleep(float(request.query.get("s", "1")))
    return {"pid": os.getpid(), "done": True}


@app.get("/started")
def get_started(request):
    return {"pid": os.getpid(), "started": started}


@app.get("/too-slow")
async def too_slow(request):
    await asyncio.sleep(10)
    return {"never": True}


@app.get("/blocking")
def blocking(request):
    time.sleep(float(request.query.get("s", "0.2")))
    return {"blocked": True}


@app.get("/read-body")
def read_body(request):
    return {"size": len(request.body())}


@app.get("/ignore-body")
def ignore_body(request):
    return {"ignored": True}


@app.get("/read-body-async")
async def read_body_async(request):
    await asyncio.sleep(0)
    return {"size": len(await request.body_async())}


@app.get("/ignore-body-async")
async def ignore_body_async(request):
    await asyncio.sleep(0)
    return {"ignored": True}


@app.post("/upload")
def upload(request):
    return {"size": len(request.body())}


@app.get("/exit")
def hard_exit(request):
    os._exit(17)
