"""The conformance app for forms: an upload echo (fields and files, sync
and async) and per-call limits that give 413 problems."""

from __future__ import annotations

from cello import App, FormData

app = App()


def describe(form: FormData) -> dict:
    items = []
    for name, value in form.multi_items():
        if isinstance(value, str):
            items.append([name, value])
        else:
            items.append(
                [
                    name,
                    {
                        "filename": value.filename,
                        "content_type": value.content_type,
                        "size": value.size(),
                        "text": value.read().decode("latin-1"),
                    },
                ]
            )
    return {"items": items}


@app.post("/echo")
def echo(request):
    return describe(request.form())


@app.post("/echo-async")
async def echo_async(request):
    return describe(await request.form())


@app.post("/small")
def small(request):
    return describe(request.form(max_file_size=4, max_fields=2, max_files=1))


@app.post("/tiny-body", body_limit=64)
def tiny_body(request):
    return describe(request.form())
