"""Two worker processes counting into one metrics table."""

from __future__ import annotations

import os

from cello import App

RUN_OPTIONS = {"workers": 2}

app = App()
app.enable_prometheus()


@app.get("/pid")
def pid(request):
    return {"pid": os.getpid()}


@app.get("/items/{name}")
def item(request):
    return {"pid": os.getpid(), "name": request.params["name"]}
