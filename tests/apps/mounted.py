"""A Cello app with a FastAPI app and a raw ASGI app mounted inside it."""

import asyncio

from cello import App
from conformance.asgi.fastapi_app import api
from conformance.asgi.protocol_app import app as protocol_app

app = App()


@app.get("/")
def index(request):
    return {"framework": "cello"}


@app.get("/legacy-sibling")
def sibling(request):
    return {"sibling": True}


async def raw_asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            await send({"type": f"{message['type']}.complete"})
            if message["type"] == "lifespan.shutdown":
                return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"text/plain"),
                (b"x-root", scope["root_path"].encode()),
                (b"x-task", asyncio.current_task().get_name().encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": scope["path"].encode()})


async def exiting_asgi(scope, receive, send):
    if scope["type"] == "lifespan":
        return  # no lifespan support, which ASGI allows
    await asyncio.sleep(0)
    raise SystemExit(3)


app.mount("/legacy", api)
app.mount("/raw", raw_asgi)
app.mount("/protocol", protocol_app)
app.mount("/exits", exiting_asgi)
