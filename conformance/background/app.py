"""Background tasks and after-response callbacks: the response is the same
through every door, and the work runs after it in each."""

from __future__ import annotations

import asyncio

from cello import App, BackgroundTasks, Response

app = App()
EVENTS: list[str] = []


async def note(text: str) -> None:
    await asyncio.sleep(0)
    EVENTS.append(text)


@app.get("/events")
def events(request):
    return {"events": list(EVENTS)}


@app.get("/queued")
def queued(request):
    tasks = BackgroundTasks()
    tasks.add_task(EVENTS.append, ["sync task"])
    tasks.add_task(note, ["async task"])
    return Response.json({"queued": tasks.pending_count()}, status=202, background=tasks)


@app.get("/hooked")
async def hooked(request):
    request._after_response(lambda: EVENTS.append("callback"))
    return {"hooked": True}


@app.get("/failed")
async def failed(request):
    request._after_response(lambda: EVENTS.append("after the 500"))
    raise RuntimeError("handler failed")
