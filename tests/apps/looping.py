"""Handlers that lean on the event loop while the server runs inside it:
background tasks, timers, threads waking the loop, context variables."""

import asyncio
import contextvars
import threading
import time
import weakref

from cello import App

app = App()
seen: contextvars.ContextVar[str] = contextvars.ContextVar("seen", default="unset")
ran: list[str] = []


async def _background(tag: str) -> None:
    await asyncio.sleep(0)
    ran.append(tag)


@app.post("/background/{tag}")
async def start_background(request):
    # Returns without awaiting: the task must still run promptly, with no
    # other request arriving to wake the loop.
    asyncio.get_running_loop().create_task(_background(request.params["tag"]))
    return {"started": True}


@app.post("/background-from-sync/{tag}")
def start_background_from_sync(request):
    asyncio.get_running_loop().create_task(_background(request.params["tag"]))
    return {"started": True}


@app.get("/background")
def background_ran(request):
    return {"ran": ran}


@app.get("/timer")
async def timer(request):
    started = asyncio.get_running_loop().time()
    await asyncio.sleep(0.05)
    return {"waited": asyncio.get_running_loop().time() - started}


@app.get("/executor")
async def executor(request):
    return {"thread": await asyncio.get_running_loop().run_in_executor(None, _thread_name)}


def _thread_name() -> str:
    return threading.current_thread().name


@app.get("/threadsafe")
async def threadsafe(request):
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    threading.Timer(0.02, loop.call_soon_threadsafe, (future.set_result, "woken")).start()
    return {"result": await future}


@app.get("/timeout")
async def with_timeout(request):
    try:
        async with asyncio.timeout(0.02):
            await asyncio.sleep(10)
    except TimeoutError:
        return {"timed_out": True}
    return {"timed_out": False}


@app.get("/context/set/{value}")
async def context_set_no_await(request):
    before = seen.get()
    seen.set(request.params["value"])
    return {"before": before}


@app.get("/context/set-sync/{value}")
def context_set_sync(request):
    before = seen.get()
    seen.set(request.params["value"])
    return {"before": before}


@app.get("/context/set-awaiting/{value}")
async def context_set_awaiting(request):
    before = seen.get()
    seen.set(request.params["value"])
    await asyncio.sleep(0)
    return {"before": before, "after": seen.get()}


@app.get("/current-task")
async def current_task(request):
    await asyncio.sleep(0)
    task = asyncio.current_task()
    return {"in_task": task is not None, "name": task.get_name() if task else None}


@app.get("/running-loop")
def running_loop(request):
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return {"running": False}
    return {"running": True}


closed_wrongly_judged: list[bool] = []


async def _awaits_though_judged_unable(request):
    try:
        await asyncio.sleep(0)
    finally:
        closed_wrongly_judged.append(True)
    return {"never": "sent"}


# Registered past App's own check, as if it had judged wrongly that the
# handler cannot suspend (see tests/test_loop.py).
app._core.add_route(
    "GET", "/wrongly-judged", _awaits_though_judged_unable, True, [], suspends=False
)


@app.get("/wrongly-judged/closed")
def wrongly_judged_closed(request):
    return {"closed": len(closed_wrongly_judged)}


@app.post("/stop-loop")
def stop_loop(request):
    asyncio.get_running_loop().stop()
    return {"stopping": True}


@app.get("/blocking-sync")
def blocking_sync(request):
    time.sleep(0.3)
    return {"blocked": True}


@app.get("/blocking-async")
async def blocking_async(request):
    time.sleep(0.3)  # in the Task's first step, which the server runs at once
    await asyncio.sleep(0)
    return {"blocked": True}


@app.get("/task-coro")
async def task_coro(request):
    await asyncio.sleep(0)
    task = asyncio.current_task()
    assert task is not None
    coro = task.get_coro()
    return {
        "qualname": coro.__qualname__,
        "handler_code": coro.cr_code is task_coro.__code__,
        "repr": repr(task),
        "stack": [frame.f_code.co_name for frame in task.get_stack()],
    }


made_by_factory: "weakref.WeakSet[asyncio.Task]" = weakref.WeakSet()


def _recording_factory(loop, coro, **kwargs):
    # What tracing integrations do: wrap the coroutine, then make the Task.
    async def traced():
        return await coro

    task = asyncio.Task(traced(), loop=loop, **kwargs)
    made_by_factory.add(task)
    return task


@app.post("/task-factory/{state}")
def set_task_factory(request):
    factory = _recording_factory if request.params["state"] == "on" else None
    asyncio.get_running_loop().set_task_factory(factory)
    return {"factory": factory is not None}


@app.get("/task-factory")
async def made_by_task_factory(request):
    await asyncio.sleep(0)
    task = asyncio.current_task()
    return {"made": task in made_by_factory, "name": task.get_name() if task else None}


# What sync handlers, and async ones that cannot suspend, schedule on the
# loop; with --threads N they run on I/O threads beside the loop's thread.
scheduled: dict[str, str] = {}


async def _record(tag: str) -> None:
    await asyncio.sleep(0)
    scheduled[tag] = f"{threading.current_thread().name} {seen.get()}"


def _record_now(tag: str) -> None:
    scheduled[tag] = f"{threading.current_thread().name} {seen.get()}"


background_tasks: set[asyncio.Task] = set()


@app.post("/schedule/{tag}")
def schedule_from_sync(request):
    tag = request.params["tag"]
    seen.set(tag)  # what the scheduled work must see: the handler's context
    task = asyncio.create_task(_record(f"{tag}-task"), name=f"record {tag}")
    background_tasks.add(task)
    task.add_done_callback(background_tasks.discard)
    loop = asyncio.get_running_loop()
    background_tasks.add(loop.create_task(_record(f"{tag}-loop-task")))
    loop.call_soon(_record_now, f"{tag}-soon")
    loop.call_later(0.01, _record_now, f"{tag}-later")
    return {"task": task.get_name()}


@app.post("/schedule-async/{tag}")
async def schedule_without_await(request):
    tag = request.params["tag"]
    seen.set(tag)
    background_tasks.add(asyncio.create_task(_record(f"{tag}-task")))
    return {"task": True}


@app.get("/scheduled")
def scheduled_so_far(request):
    return scheduled
