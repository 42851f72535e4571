"""The SSE fan-out table's Starlette app: ``GET /sse`` streams the hub's
events through a ``StreamingResponse`` of ``text/event-stream``, the same
bytes per event as the Cello app."""

from sse_hub import hub
from starlette.applications import Starlette
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


async def index(request):
    return JSONResponse({"ok": True})


async def sse(request):
    async def events():
        async for seq in hub.follow():
            yield f'data: {{"seq":{seq}}}\n\n'

    return StreamingResponse(events(), media_type="text/event-stream", headers=HEADERS)


app = Starlette(routes=[Route("/", index), Route("/sse", sse)])
