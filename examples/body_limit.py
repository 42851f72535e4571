"""Request-body limits: small for most routes, larger where uploads belong.

Run it with::

    python examples/body_limit.py

then::

    curl -i -d '{"user": "ada"}' http://127.0.0.1:8000/notes          # 201
    head -c 2000 /dev/zero | curl -i --data-binary @- http://127.0.0.1:8000/notes
                                                    # 413: over the app's 1 KiB
    head -c 200000 /dev/zero | curl -i --data-binary @- http://127.0.0.1:8000/upload
                                                    # 200: this route takes 1 MiB
"""

from cello import App

app = App()
app.enable_body_limit(1024)


@app.post("/notes")
def add_note(request):
    return {"stored": len(request.body())}, 201


@app.post("/upload", body_limit=1024 * 1024)
async def upload(request):
    return {"received": len(await request.body_async())}


if __name__ == "__main__":
    app.run()
