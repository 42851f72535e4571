"""An app for the body-limit tests: the app's limit, and routes that raise
or lower it for themselves (sync, async, on a blueprint)."""

from __future__ import annotations

import asyncio

from cello import App, Blueprint

app = App()
app.enable_body_limit(32)


@app.post("/default")
def default(request):
    return {"size": len(request.body())}


@app.post("/upload", body_limit=1024)
def upload(request):
    return {"size": len(request.body())}


@app.post("/upload-async", body_limit=1024)
async def upload_async(request):
    await asyncio.sleep(0)
    return {"size": len(request.body())}


@app.route("/small", methods=["POST", "PUT"], body_limit=4)
def small(request):
    return {"size": len(request.body())}


files = Blueprint("/files")


@files.put("/blob", body_limit=2048)
async def blob(request):
    return {"size": len(await request.body_async())}


app.register_blueprint(files)
