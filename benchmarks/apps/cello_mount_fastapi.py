"""The benchmark's FastAPI app mounted inside a Cello app (door 3).

Run from this directory: ``PORT=8000 python cello_mount_fastapi.py``.
"""

import os

from fastapi_app import app as fastapi_app

from cello import App

app = App()


@app.get("/native")
def native(request):
    return {"served_by": "cello"}


app.mount("", fastapi_app)

if __name__ == "__main__":
    app.run(
        host="127.0.0.1", port=int(os.environ.get("PORT", "8000")), env="production", logs=False
    )
