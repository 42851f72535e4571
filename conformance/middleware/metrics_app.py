"""An app behind ``enable_prometheus()``: templated routes, a refusal, a
stream, and a mounted Starlette app, so every door counts the same series."""

from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from cello import App, Response

app = App()
app.enable_prometheus()


@app.get("/items/{item_id:int}")
def item(request):
    return {"item": int(request.params["item_id"])}


@app.post("/items")
def create(request):
    return {"created": request.json()}, 201


@app.get("/feed")
def feed(request):
    async def parts():
        yield b"a;"
        yield b"bc;"

    return Response.stream(parts(), content_type="text/plain")


async def plain(request):
    return PlainTextResponse("from starlette")


app.mount("/star", Starlette(routes=[Route("/plain", plain)]))
