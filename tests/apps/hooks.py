"""An app with startup and shutdown hooks that record their order."""

import asyncio

from cello import App

app = App()
events: list[str] = []


@app.on_event("startup")
def startup_sync():
    events.append("startup-sync")


@app.on_event("startup")
async def startup_async():
    await asyncio.sleep(0)
    events.append("startup-async")


@app.on_event("shutdown")
def shutdown_sync():
    print("shutdown-sync", flush=True)


@app.on_event("shutdown")
async def shutdown_async():
    await asyncio.sleep(0)
    print("shutdown-async", flush=True)


@app.get("/events")
def get_events(request):
    return events
