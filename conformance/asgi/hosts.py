"""A Cello app hosting both conformance apps (door 3, mounted)."""

from cello import App
from conformance.asgi.fastapi_app import api
from conformance.asgi.starlette_app import app as starlette_app

app = App()
app.mount("/fastapi", api)
app.mount("/starlette", starlette_app)
