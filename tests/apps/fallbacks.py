"""An app that exercises every fast path of ``cello._cello.fast_paths()``,
for tests/test_fast_path.py to run with the fast paths off.

With ``CELLO_TEST_UNFAMILIAR_ASYNCIO=1`` in the environment, asyncio is first
made to look like a version Cello has never seen: a loop iteration that does
something new, a Handle with another field, no eager start and none of the
private task functions. Cello must then find no fast path, and still serve.
"""

import asyncio
import os

if os.environ.get("CELLO_TEST_UNFAMILIAR_ASYNCIO"):
    import asyncio.tasks

    _stock_run_once = asyncio.BaseEventLoop._run_once

    def _run_once(self):
        self._iterations_seen = getattr(self, "_iterations_seen", 0) + 1
        _stock_run_once(self)

    class _Handle(asyncio.Handle):
        __slots__ = ("_new_field",)

    asyncio.BaseEventLoop._run_once = _run_once  # type: ignore[method-assign]
    asyncio.Handle = _Handle  # type: ignore[misc]
    for name in ("eager_task_factory", "_enter_task", "_leave_task"):
        if hasattr(asyncio.tasks, name):
            delattr(asyncio.tasks, name)

from cello import App, _cello

app = App()
ran: list[str] = []


@app.get("/fast-paths")
def fast_paths(request):
    return _cello.fast_paths()


@app.get("/sync")
def sync(request):
    return {"kind": "sync"}


@app.get("/async")
async def async_no_await(request):
    return {"kind": "async"}


async def _background(tag: str) -> None:
    await asyncio.sleep(0)
    ran.append(tag)


@app.get("/awaiting/{tag}")
async def awaiting(request):
    asyncio.get_running_loop().create_task(_background(request.params["tag"]))
    await asyncio.sleep(0.01)  # a timer, then the resumed step
    task = asyncio.current_task()
    return {"name": task.get_name() if task else None}


@app.get("/ran")
def background_ran(request):
    return {"ran": ran}
