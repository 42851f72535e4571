"""An app that counts the Python calls made while it serves requests.

``/profile/start`` installs a profiler on the thread that runs it (with one
I/O thread, the only thread, which runs sync and async handlers alike; with
more, the sync and async endpoints reach the I/O and event-loop threads).
``/profile/stop`` removes it and reports every Python function called
meanwhile, as ``module.qualname: count``.
"""

import asyncio
import gc
import sys
from collections import Counter

from cello import App

app = App()
calls: Counter[str] = Counter()


def _profile(frame, event, arg):
    if event == "call":
        calls[f"{frame.f_globals.get('__name__')}.{frame.f_code.co_qualname}"] += 1


def _start():
    calls.clear()
    sys.setprofile(_profile)
    return {"profiling": True}


def _stop():
    sys.setprofile(None)
    # The stop handler's own call was counted on the way in.
    return {name: n for name, n in calls.items() if not name.endswith("_stop")}


@app.get("/profile/start")
def start_sync(request):
    return _start()


@app.get("/profile/stop")
def stop_sync(request):
    return _stop()


@app.get("/profile/start-async")
async def start_async(request):
    return _start()


@app.get("/profile/stop-async")
async def stop_async(request):
    return _stop()


@app.get("/")
def index(request):
    return {"message": "Hello, World!"}


@app.get("/async")
async def index_async(request):
    return {"message": "Hello, World!"}


@app.get("/async-sleep")
async def index_async_sleep(request):
    await asyncio.sleep(0)
    return {"message": "Hello, World!"}


@app.get("/blocks")
def blocks(request):
    gc.collect()
    return {"blocks": sys.getallocatedblocks()}


armed: list[asyncio.TimerHandle] = []


@app.post("/arm-timer")
def arm_timer(request):
    # What every worker process has: a timer always pending (its parent watch).
    armed.append(asyncio.get_running_loop().call_later(3600, armed.clear))
    return {"armed": len(armed)}


def allow(request):
    return True


@app.get("/guarded", guards=[allow])
def index_guarded(request):
    return {"message": "Hello, World!"}
