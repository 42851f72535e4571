"""An app whose handlers hand ``BackgroundTasks`` to their responses, and
report through ``/events`` what the tasks did."""

from __future__ import annotations

import asyncio
import threading

from cello import App, BackgroundTasks, Response

app = App()
EVENTS: list[str] = []


def record(first: str, second: str) -> None:
    EVENTS.append(f"record({first}, {second})")


async def record_async(word: str, suffix: str = "") -> None:
    await asyncio.sleep(0)
    EVENTS.append(f"record_async({word}{suffix})")


def where() -> None:
    on_main = threading.current_thread() is threading.main_thread()
    EVENTS.append("main thread" if on_main else "worker thread")


@app.get("/events")
def events(request):
    return {"events": list(EVENTS)}


@app.post("/reset")
def reset(request):
    EVENTS.clear()
    return {"events": []}


@app.get("/documented")
def documented(request):
    tasks = BackgroundTasks()
    tasks.add_task(record, ["a", "b"])
    tasks.add_task(record_async, ["c"])
    EVENTS.append(f"pending {tasks.pending_count()}")
    return Response.json({"queued": len(tasks)}, status=202, background=tasks)


@app.get("/starlette")
async def starlette_form(request):
    tasks = BackgroundTasks()
    tasks.add_task(record_async, "x", suffix="!")
    tasks.add_task(record, "y", second="z")
    return Response("queued", background=tasks)


@app.get("/attribute")
def attribute(request):
    tasks = BackgroundTasks()
    tasks.add_task(record, "from", "attribute")
    response = Response.text("queued")
    response.background = tasks
    return response


@app.get("/tuple")
def in_a_tuple(request):
    tasks = BackgroundTasks()
    tasks.add_task(record, "from", "tuple")
    return Response.json({"ok": True}, background=tasks), 201


@app.get("/function")
def plain_function(request):
    return Response.json({"ok": True}, background=lambda: EVENTS.append("a plain function"))


@app.get("/failing")
def failing(request):
    def explode() -> None:
        raise RuntimeError("task exploded")

    tasks = BackgroundTasks()
    tasks.add_task(explode)
    tasks.add_task(record, "after", "failure")
    return Response.json({"ok": True}, background=tasks)


@app.get("/thread")
async def thread(request):
    tasks = BackgroundTasks()
    tasks.add_task(where)
    return Response.json({"ok": True}, background=tasks)


@app.get("/bad-arguments")
def bad_arguments(request):
    tasks = BackgroundTasks()
    try:
        tasks.add_task(record, "only one")
    except TypeError as exc:
        return {"error": str(exc)}
    return {"error": None}


@app.get("/bad-background")
def bad_background(request):
    try:
        Response.json({}, background="not callable")
    except TypeError as exc:
        return {"error": str(exc)}
    return {"error": None}


# -- made while the handler runs, never handed over (the documented use) --------


@app.post("/users")
def create_user(request):
    data = request.json()
    user = {"id": 1, "name": data["name"], "email": data["email"]}
    tasks = BackgroundTasks()
    tasks.add_task(record, [data["email"], data["name"]])
    return {"created": True, "user": user}


def queue_from_a_helper(word: str) -> None:
    tasks = BackgroundTasks()
    tasks.add_task(record_async, [word])


@app.get("/helper")
async def helper(request):
    await asyncio.sleep(0)
    queue_from_a_helper("from a helper")
    return {"ok": True}


@app.get("/no-request")
async def without_the_request():
    # Takes nothing, suspends once: the tasks still belong to this request.
    await asyncio.sleep(0)
    BackgroundTasks().add_task(record_async, ["from a handler without the request"])
    return {"ok": True}


@app.get("/both")
def both(request):
    tasks = BackgroundTasks()
    tasks.add_task(record, "handed", "over")
    return Response.json({"ok": True}, background=tasks)


@app.get("/spawned")
async def spawned(request):
    async def on_its_own() -> BackgroundTasks:
        tasks = BackgroundTasks()
        tasks.add_task(record, "never", "attached")
        return tasks

    tasks = await asyncio.create_task(on_its_own())
    EVENTS.append(f"spawned task's tasks pending: {tasks.pending_count()}")
    return {"ok": True}


@app.get("/guarded-error")
def guarded_error(request):
    tasks = BackgroundTasks()
    tasks.add_task(record, "after", "the error")
    raise ValueError("handler failed after queueing")
