"""An app whose startup hook fails."""

from cello import App

app = App()


@app.on_event("startup")
def connect():
    raise RuntimeError("database unreachable")


@app.get("/")
def index(request):
    return {}
