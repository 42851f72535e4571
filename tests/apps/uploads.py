"""An app for the upload tests: forms echoed back (sync and async), limits
set per call, a large upload on a route whose body limit is raised, files
saved, and the server's peak memory."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cello import App, FormData, UploadedFile

app = App()

MiB = 1024 * 1024


def describe(form: FormData) -> dict:
    def value(v: str | UploadedFile) -> object:
        if isinstance(v, str):
            return v
        return {
            "filename": v.filename,
            "content_type": v.content_type,
            "size": v.size(),
            "extension": v.extension(),
            "content": v.read().decode("latin-1") if v.size < 4096 else None,
            "on_disk": os.path.isfile(v.temp_path),
        }

    return {
        "items": [[k, value(v)] for k, v in form.multi_items()],
        "fields": form.field_names(),
        "files": form.file_names(),
        "counts": [form.field_count(), form.file_count()],
    }


@app.post("/echo")
def echo(request):
    return describe(request.form())


@app.post("/echo-async")
async def echo_async(request):
    return describe(await request.form())


@app.get("/echo-lazy")
async def echo_lazy(request):
    """A GET body stays on the socket until asked for (docs/requests.md)."""
    return describe(await request.form())


@app.post("/limited")
def limited(request):
    limits = {k: int(v) for k, v in request.query.items()}
    return describe(request.form(**limits))


@app.post("/files")
async def files(request):
    found = await request.files()
    return {
        "by_name": {name: [f.filename for f in found.getlist(name)] for name in found.keys()},
        "in_order": [f.filename for f in found],
        "last_a": found["a"].filename if "a" in found else None,
        "items": [[name, f.filename] for name, f in found.items()],
    }


@app.post("/text")
def text(request):
    return {"text": request.form().get_file("doc").read_text()}


@app.post("/save")
def save(request):
    upload = request.form().get_file("doc")
    target = Path(os.environ.get("UPLOADS_SAVE_DIR", "/nonexistent")) / "saved.bin"
    saved = upload.save(target)
    return {"saved": str(saved), "size": saved.stat().st_size, "client_said": upload.filename}


KEPT: list[UploadedFile] = []


@app.post("/keep")
def keep(request):
    """Keeps the upload past the request, as a careless handler might."""
    upload = request.form().get_file("doc")
    KEPT.append(upload)
    return {"temp_path": upload.temp_path}


@app.get("/kept")
def kept(request):
    return {"exists": [os.path.exists(f.temp_path) for f in KEPT]}


@app.post("/fails")
def fails(request):
    request.form()
    raise RuntimeError("the handler failed after reading the form")


@app.post("/big", body_limit=30 * MiB)
def big(request):
    form = request.form(max_file_size=25 * MiB)
    upload = form.get_file("blob")
    digest = hashlib.sha256()
    with open(upload.temp_path, "rb") as f:
        while chunk := f.read(64 * 1024):
            digest.update(chunk)
    return {"size": upload.size(), "sha256": digest.hexdigest()}


@app.post("/raw", body_limit=30 * MiB)
def raw(request):
    """The raw body of a (spooled) multipart request, then its form."""
    body = request.body()
    form = request.form()
    return {
        "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest(),
        "file_size": form.get_file("blob").size(),
    }


@app.get("/peak-memory")
def peak_memory(request):
    """The process's peak resident memory (VmHWM) in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return {"kib": int(line.split()[1])}
    return {"kib": None}


# The same routes behind a Python middleware that reads the form first.
wrapped = App()


@wrapped.middleware("http")
async def count_files(request, call_next):
    form = await request.form() if request.is_multipart() else {}
    response = await call_next(request)
    response.set_header("x-files", str(sum(isinstance(v, UploadedFile) for v in form.values())))
    return response


wrapped.post("/echo")(echo)
wrapped.post("/fails")(fails)
