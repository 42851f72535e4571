"""The SSE fan-out table's Cello app: ``GET /sse`` streams the hub's events
with ``Response.sse`` (keepalive on unless ``SSE_KEEPALIVE=0``), each as ``data: {"seq":N}``.

Run directly: ``PORT=8000 .venv/bin/python benchmarks/apps/cello_sse_app.py``.
"""

import os

from cello_app import unavailable
from sse_hub import hub

from cello import App, Response

try:
    from cello import SseEvent
except ImportError:
    unavailable("this build of Cello has no SseEvent")

# SSE_KEEPALIVE=0 measures the stream without the keepalive timer.
KEEPALIVE = float(os.environ.get("SSE_KEEPALIVE", "15"))

app = App()


@app.get("/")
def index():
    return {"ok": True}


@app.get("/sse")
def sse():
    async def events():
        async for seq in hub.follow():
            yield SseEvent({"seq": seq})

    return Response.sse(events(), keepalive=KEEPALIVE)


if __name__ == "__main__":
    app.run(
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "8000")),
        env="production",
        logs=False,
    )
